"""Defaults for what a grid leaves out: sourced values from the variables table and recycling yields,
recorded with their source and where they applied (results' `defaults_used`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..inputs.catalogue import recycling_yields
from ..inputs.variables import table

OTHER = "other"


def fill_defaults(grid: xr.Dataset) -> tuple[xr.Dataset, dict[str, dict]]:
    """Give every optional variable a value; return the grid and which defaults were used where."""
    grid = grid.copy()
    used: dict[str, dict] = {}
    _default_composition(grid, used)
    for name, var in table().items():
        if var.default is None:
            continue
        if var.extra_dim in ("material", "metal"):
            _default_yields(grid, name, var.extra_dim, used)
            continue
        if name not in grid:
            if var.read_by == "history":
                continue  # no fleet has an inflow history: nothing to fill
            grid[name] = xr.DataArray(var.default)
            used[name] = _record(var.default, var.units, var.source, var.status, "all")
        elif bool(grid[name].isnull().any()):
            where = "all"
            if "fleet" in grid[name].dims:
                where = [str(f) for f in grid["fleet"].values if bool(grid[name].sel(fleet=f).isnull().any())]
            used[name] = _record(var.default, var.units, var.source, var.status, where)
            grid[name] = grid[name].fillna(var.default)
    return grid, used


def _record(value: Any, units: str, source: str | None, status: str | None, where: Any) -> dict:
    """One entry of the results' `defaults_used`: a default, its source and where it applied."""
    return {"value": value, "units": units, "source": source, "status": status, "where": where}


def _default_composition(grid: xr.Dataset, used: dict) -> None:
    """Composition with 'other' as the rest; all 'other' where a fleet gives none."""
    comp = (
        grid["composition"]
        if "composition" in grid
        else xr.DataArray([1.0], dims="material", coords={"material": [OTHER]})
    )
    bare = "all"
    if "composition" in grid:
        bare = [str(f) for f in grid["fleet"].values if "fleet" in comp.dims and bool(comp.sel(fleet=f).isnull().all())]
    if bare:
        used["composition"] = _record(
            {OTHER: 1.0}, "1", "mass not split by material unless a composition is given", "-", bare
        )
    if OTHER not in comp["material"].values:
        comp = xr.concat([comp, xr.zeros_like(comp.isel(material=0)).expand_dims(material=[OTHER])], "material")
    named = comp.fillna(0.0).where(comp["material"] != OTHER, 0.0)
    grid["composition"] = xr.where(comp["material"] == OTHER, 1.0 - named.sum("material"), named)


def _default_yields(grid: xr.Dataset, name: str, dim: str, used: dict) -> None:
    """Yields not given for a material or metal: the sourced table (recycling.toml), else 0."""
    if dim not in grid.dims:
        return
    labels = [str(m) for m in grid[dim].values]
    given = grid[name] if name in grid else xr.DataArray(np.nan)
    full = given.reindex({dim: labels}) if dim in given.dims else given.expand_dims({dim: labels}).copy()
    stage = "endprocessing" if "endprocessing" in name else "preprocessing"
    sourced = recycling_yields()[stage]
    defaults = {}
    for label in labels:
        if bool(full.sel({dim: label}).isnull().any()):
            entry = sourced.get(label, {"value": 0.0, "source": table()[name].source, "status": "-"})
            defaults[label] = entry
            full = full.where(full[dim] != label, full.fillna(entry["value"]))
    if defaults:
        used[name] = {"units": "1", "where": defaults}
    grid[name] = full

