"""Writers: results and grids to files, never leaving a half-written or overwritten file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import xarray as xr

from .errors import InputError

FORMATS = (".nc", ".csv")


def atomic_write(path: str | Path, write: Callable[[str], None], overwrite: bool = False) -> None:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(str(path), None, "exists; pass --overwrite to replace it")
    if not path.parent.is_dir():
        raise InputError(str(path), None, "the folder does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise InputError(str(path), None, f"cannot write here ({exc.strerror or exc.__class__.__name__})") from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # as an ordinary new file would be, not mkstemp's 0600
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(str(path), None, f"cannot write here ({exc.strerror or exc.__class__.__name__})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_results(results: xr.Dataset, path: str | Path, overwrite: bool = False) -> None:
    """Write results as NetCDF (.nc, everything) or CSV (.csv, the annual table in long form)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(str(path), None, f"unknown output format {suffix!r}; use one of {', '.join(FORMATS)}")
    if suffix == ".nc":
        atomic_write(path, lambda tmp: results.to_netcdf(tmp, engine="netcdf4"), overwrite)
    else:
        atomic_write(path, lambda tmp: _write_csv(results, tmp), overwrite)


def _write_csv(results: xr.Dataset, tmp: str) -> None:
    """The annual table, after '#' lines carrying the provenance (read with comment='#')."""
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        for key, value in results.attrs.items():
            f.write(f"# {key}: {' '.join(str(value).split())}\n")
        annual_table(results).to_csv(f, index=False)


def annual_table(results: xr.Dataset):
    """The annual variables as one long table: grid coordinates, year, variable, value, units."""
    import pandas as pd  # noqa: PLC0415 - pandas comes with xarray

    frames = []
    for name, da in results.data_vars.items():
        if "year" not in da.dims:
            continue
        df = da.to_dataframe(name="value").reset_index()
        df.insert(0, "variable", name)
        df["units"] = da.attrs.get("units", "")
        frames.append(df)
    return pd.concat(frames, ignore_index=True, sort=False)
