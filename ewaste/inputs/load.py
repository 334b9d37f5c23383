"""Loading and saving scenario grids: a scenario file, a bundled scenario's name or a saved NetCDF grid."""

from __future__ import annotations

import hashlib
from pathlib import Path

import xarray as xr

from ..errors import InputError
from ..files import atomic_write
from .catalogue import resolve
from .scenario import load_scenario
from .validate import validate


def load_grid(path: str | Path) -> xr.Dataset:
    """Load a scenario grid from a scenario file (.toml), a saved grid (.nc) or a bundled scenario's
    name ("default", "wang2024", ...), validated."""
    path = resolve(str(path))
    if path.suffix.lower() == ".toml":
        return load_scenario(path)
    if not path.exists():
        raise InputError(str(path), None, "file not found")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            grid = ds.load()
    except Exception as exc:  # netCDF4 raises OSError, ValueError, RuntimeError for bad files
        raise InputError(str(path), None, f"not a readable NetCDF file ({exc.__class__.__name__})") from None
    grid.attrs["grid_file"] = path.name
    grid.attrs["grid_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return validate(grid, str(path))


def save_grid(grid: xr.Dataset, path: str | Path, overwrite: bool = False) -> None:
    """Write a scenario grid to NetCDF (claimed, written to a temporary file, then renamed).

    Raises InputError if `path` is not a .nc name, exists (without `overwrite`), its folder does
    not exist, another run is writing it, or the write fails (no space left, no permission).
    """
    if Path(path).suffix.lower() != ".nc":
        raise InputError(str(path), None, "a grid is saved as NetCDF: use a .nc file name")
    atomic_write(path, lambda tmp: grid.to_netcdf(tmp, engine="netcdf4"), overwrite)
