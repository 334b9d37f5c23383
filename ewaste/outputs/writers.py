"""Writers of results: NetCDF (everything), CSV (one long table, provenance in a sidecar JSON), Excel
(one sheet per table) and IAMC (.csv or .xlsx, for pyam); every file claimed, staged and renamed.

The output's suffix chooses the writer; `format="iamc"` turns a .csv or .xlsx into the IAMC long
format. A CSV's provenance goes to `NAME.csv.json` beside it (or, with `comments`, to leading
`# key: value` lines). Numbers in CSV files carry 12 significant digits; NetCDF keeps full precision.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import xarray as xr

from ..errors import InputError
from ..files import atomic_write, claim, staging, write_failure
from .provenance import attributes
from .tables import check_year, long_table

SUFFIXES = (".nc", ".csv", ".xlsx")  # written from results in memory
STREAMED = ".zarr"  # written chunk by chunk by ewaste.scale
FORMATS = ("auto", "iamc")  # auto: the suffix decides
FLOAT_FORMAT = "%.12g"  # in CSV files: no representation noise such as 19999.99999999998


def sidecar(path: str | Path) -> Path:
    """The provenance file of a CSV: `results.csv` -> `results.csv.json`."""
    return Path(f"{path}.json")


def output_files(path: str | Path, comments: bool = False) -> list[Path]:
    """The files a write of `path` makes: the file, and a CSV's sidecar unless `comments`."""
    path = Path(path)
    return [path, sidecar(path)] if path.suffix.lower() == ".csv" and not comments else [path]


def check_output(path: str | Path, format: str | None = None, year: int | None = None, comments: bool = False) -> None:
    """Refuse, before any work, an output that cannot be written as asked.

    Raises InputError (naming the file and the option) for an unknown suffix or `format`, an IAMC
    table that is not .csv or .xlsx, `year` for a .nc or .zarr file (they hold every year), or
    `comments` for anything but a CSV in ewaste's layout.
    """
    path = Path(path)
    suffix, fmt = path.suffix.lower(), format or "auto"
    if fmt not in FORMATS:
        raise InputError(str(path), "--format", f"unknown format {format!r}; use {' or '.join(FORMATS)}")
    if suffix not in (*SUFFIXES, STREAMED):
        known = ", ".join((*SUFFIXES, STREAMED))
        raise InputError(str(path), "--out", f"unknown output format {suffix!r}; use one of {known}")
    if fmt == "iamc" and suffix not in (".csv", ".xlsx"):
        raise InputError(str(path), "--format", "an IAMC table is written as .csv or .xlsx")
    if year is not None and suffix in (".nc", STREAMED):
        raise InputError(str(path), "--year", "a NetCDF or Zarr file holds every year; --year is for .csv and .xlsx")
    if comments and (suffix != ".csv" or fmt == "iamc"):
        raise InputError(str(path), "--comments", "'#' lines go only into a CSV in ewaste's layout")


def write_results(
    results: xr.Dataset,
    path: str | Path,
    overwrite: bool = False,
    *,
    format: str | None = None,
    year: int | None = None,
    comments: bool = False,
    grid: xr.Dataset | None = None,
) -> None:
    """Write results to `path`: .nc (everything, NetCDF-4), .csv (every quantity by year as one long
    table, `ewaste.outputs.tables.long_table`, with its provenance in `PATH.json`), .xlsx (one sheet
    per table, `ewaste.outputs.xlsx`), or, with `format="iamc"`, an IAMC table as .csv or .xlsx
    (`ewaste.outputs.iamc`). `year`: only that year's rows (tables only); `comments`: a CSV's
    provenance as leading `# key: value` lines instead of the sidecar; `grid`: the scenario grid,
    whose parameters fill the spreadsheet's inputs sheet (else it lists the sources only).

    Every file is claimed, written beside its target and renamed into place; none is renamed unless
    all were written (`ewaste.files`).
    Raises InputError for an unknown suffix or format, a .zarr store (`ewaste.run` streams those), a
    year the results do not hold, an existing file (without `overwrite`, the sidecar included), a
    missing folder, another run writing a file, a sheet over Excel's row limit, or a failed write
    (no space left, no permission).
    """
    path = Path(path)
    check_output(path, format, year, comments)
    suffix, iamc = path.suffix.lower(), format == "iamc"
    if suffix == STREAMED:
        raise InputError(str(path), "--out", "a .zarr store is written chunk by chunk: ewaste.run(scenario, out)")
    if suffix != ".nc":
        check_year(results, year, str(path))
    if suffix == ".nc":
        atomic_write(path, lambda tmp: results.to_netcdf(tmp, engine="netcdf4"), overwrite)
        return
    files: dict[Path, Callable[[str], None]] = {}
    if iamc:
        from . import iamc as iamc_writer  # noqa: PLC0415 - only for IAMC tables

        files[path] = lambda tmp: iamc_writer.write_iamc(results, tmp, suffix, year, FLOAT_FORMAT)
    elif suffix == ".xlsx":
        from .xlsx import write_xlsx  # noqa: PLC0415 - openpyxl only for spreadsheets

        files[path] = lambda tmp: write_xlsx(results, tmp, year, grid)
    else:
        files[path] = lambda tmp: _write_csv(results, tmp, year, comments)
    if len(output_files(path, comments)) > 1:
        files[sidecar(path)] = lambda tmp: _write_sidecar(results, tmp)
    write_files(files, overwrite)


def write_files(files: dict[Path, Callable[[str], None]], overwrite: bool = False) -> None:
    """Claim every path, call each writer on a temporary file beside its path, then rename them all
    into place (in the order given) once every one is written: a failed write leaves none.

    Raises InputError as `ewaste.files.atomic_write`, naming the file that failed.
    """
    with ExitStack() as stack:
        for path in files:
            stack.enter_context(claim(path))
        for path in files:
            if path.exists() and not overwrite:
                raise InputError(str(path), None, "exists; pass --overwrite to replace it")
        staged: dict[Path, Path] = {}
        current = next(iter(files))
        try:
            for current, write in files.items():
                staged[current] = staging(current)
                write(str(staged[current]))
            for current, tmp in staged.items():
                os.replace(tmp, current)
        except InputError as exc:  # a writer's refusal (a sheet too long): named after the file
            if exc.source is not None:
                raise
            raise InputError(str(current), exc.field, exc.message) from None
        except Exception as exc:
            message = write_failure(exc, current.parent)
            if message is None:
                raise
            raise InputError(str(current), None, message) from None
        finally:
            for tmp in staged.values():
                if tmp.exists():
                    tmp.unlink()


def _write_csv(results: xr.Dataset, tmp: str, year: int | None, comments: bool) -> None:
    """The long table, after '# key: value' lines carrying the provenance if `comments`."""
    frame = long_table(results, year)
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        if comments:
            for key, value in results.attrs.items():
                f.write(f"# {key}: {' '.join(str(value).split())}\n")
        frame.to_csv(f, index=False, float_format=FLOAT_FORMAT)


def _write_sidecar(results: xr.Dataset, tmp: str) -> None:
    """The results' attributes as one JSON object (JSON-valued attributes decoded)."""
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(attributes(results), f, indent=1, ensure_ascii=False)
        f.write("\n")


def write_table(ds: xr.Dataset, path: str | Path, overwrite: bool = False) -> None:
    """Write a small dataset of indices or figures: .nc as it is, .csv as a long table (one row per
    coordinate combination, a column per variable), .json as a list of such rows with the attributes.

    Raises InputError as `write_results`.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".nc", ".csv", ".json"):
        raise InputError(str(path), None, f"unknown output format {suffix!r}; use .nc, .csv or .json")
    frame = ds.to_dataframe().reset_index() if suffix != ".nc" else None
    if suffix == ".nc":
        atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine="netcdf4"), overwrite)
    elif suffix == ".csv":
        atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.6g"), overwrite)
    else:
        body = {"attributes": {k: str(v) for k, v in ds.attrs.items()}, "rows": frame.to_dict("records")}
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(body, indent=1, default=float)), overwrite)
