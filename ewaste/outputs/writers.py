"""Writers of results: NetCDF (everything) and CSV (the annual table)."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from ..errors import InputError
from ..files import atomic_write

FORMATS = (".nc", ".csv")


def write_results(results: xr.Dataset, path: str | Path, overwrite: bool = False) -> None:
    """Write results as NetCDF (.nc, everything) or CSV (.csv, the annual table in long form),
    claimed, to a temporary file renamed into place (`ewaste.files.atomic_write`).

    Raises InputError for an unknown suffix, an existing file (without `overwrite`), a missing
    folder, another run writing `path`, or a failed write (no space left, no permission).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(str(path), None, f"unknown output format {suffix!r}; use one of {', '.join(FORMATS)}")
    if suffix == ".nc":
        atomic_write(path, lambda tmp: results.to_netcdf(tmp, engine="netcdf4"), overwrite)
    else:
        atomic_write(path, lambda tmp: _write_csv(results, tmp), overwrite)


def write_table(ds: xr.Dataset, path: str | Path, overwrite: bool = False) -> None:
    """Write a small dataset of indices or figures: .nc as it is, .csv as a long table (one row per
    coordinate combination, a column per variable), .json as a list of such rows with the attributes.

    Raises InputError as `write_results`.
    """
    import json  # noqa: PLC0415

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
