"""Reading saved results back (`ewaste summary`, reports, exports): NetCDF or Zarr, checked to be
results of this version of ewaste, not a grid or another file."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from ..errors import InputError
from ..version import __version__


def load_results(path: str | Path) -> xr.Dataset:
    """Results saved by `ewaste run --out` (.nc or .zarr), loaded lazily.

    Raises InputError for a missing or unreadable file, a scenario grid given where results are
    expected, or results written by another version of ewaste.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), None, "file not found")
    if path.suffix.lower() in (".csv", ".xlsx", ".json"):
        raise InputError(str(path), None, "a table for spreadsheets; results are read back from .nc or .zarr")
    try:
        if path.suffix.lower() == ".zarr" or path.is_dir():
            ds = xr.open_zarr(path)
        else:
            ds = xr.open_dataset(path, engine="netcdf4")
    except Exception as exc:  # netCDF4 and zarr raise many kinds for a file that is not theirs
        raise InputError(str(path), None, f"not a readable results file ({exc.__class__.__name__})") from None
    if "ewaste_grid_version" in ds.attrs:
        raise InputError(str(path), None, "a scenario grid, not results: run it first (ewaste run FILE --out r.nc)")
    version = ds.attrs.get("ewaste_version")
    if version is None or "target_year" not in ds.attrs:
        raise InputError(str(path), None, "not results of ewaste (no ewaste_version attribute)")
    if version != __version__:
        raise InputError(str(path), None, f"results of ewaste {version}; this is {__version__}: run the scenario again")
    return ds


def is_results_file(source: str | Path) -> bool:
    """Whether `source` names a saved results file: a .zarr store, or a .nc that is not a scenario grid
    (attribute ewaste_grid_version). A .nc that is not NetCDF counts as results, so that reading it as
    results names the problem (`load_results`)."""
    path = Path(str(source))
    if path.suffix.lower() == ".zarr":
        return True
    if path.suffix.lower() != ".nc" or not path.exists():
        return False
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return "ewaste_grid_version" not in ds.attrs
    except Exception:  # noqa: BLE001 - netCDF4 raises many kinds for a file that is not theirs
        return True
