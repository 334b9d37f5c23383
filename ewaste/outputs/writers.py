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
