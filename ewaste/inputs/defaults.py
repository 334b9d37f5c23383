"""Defaults for what a scenario leaves out: sourced values (the variables table, recycling yields)
filled into the grid, and the record of which default was used where (`defaults_used`, JSON).

A grid built from a scenario file holds every value a run reads: a fleet's missing optional values
take their defaults when the grid is built, and a fleet holds UNUSED (0) in a variable it does not
read (another driver's data, another lifetime type's parameters). So NaN never means "not given":
only a variable left out of a grid altogether is, and `fill_absent` gives it its default.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

from .catalogue import recycling_yields
from .variables import table

OTHER = "other"
UNUSED = 0.0
"""What a fleet holds in a variable it does not read (validation skips it)."""
COMPOSITION_SOURCE = "mass not split by material unless a composition is given"
METALS_SOURCE = "no circuit-board metals counted unless pcb_metal_content is given"
NOT_COUNTED = {
    "gpus_per_unit": "GPUs not counted: no GPUs per unit given (nor an archetype)",
    "embodied": "embodied emissions not counted: none given (nor an archetype)",
    "capacity_per_unit": "capacity-years not counted: no capacity per unit given",
}
FLEET_DEFAULTS = ("power", "utilisation")  # the fleet parameters with a sourced default, recorded where used
ATTR = "defaults_used"


def record(value: Any, units: str, source: str | None, status: str | None, where: Any) -> dict:
    """One entry of `defaults_used`: a default, its source and where it applied ("all" or fleets)."""
    return {"value": value, "units": units, "source": source, "status": status, "where": where}


def fleet_default(var: str) -> tuple[xr.DataArray, dict] | None:
    """A fleet's value of `var` when it gives none, and its record (where left empty); None if the
    variable has no default (it is required, or not read by this fleet)."""
    if var in FLEET_DEFAULTS:
        spec = table()[var]
        return xr.DataArray(spec.default), record(spec.default, spec.units, spec.source, spec.status, [])
    if var == "composition":
        return xr.DataArray([1.0], dims="material", coords={"material": [OTHER]}), record(
            {OTHER: 1.0}, "1", COMPOSITION_SOURCE, "-", []
        )
    if var == "pcb_metal_content":
        return xr.DataArray(0.0), record(0.0, table()[var].units, METALS_SOURCE, "-", [])
    if var in NOT_COUNTED:  # where another fleet gives it: this fleet's GPUs or embodied emissions count 0
        return xr.DataArray(0.0), record(0.0, table()[var].units, NOT_COUNTED[var], "-", [])
    if var == "inflow_history":
        return xr.DataArray(table()[var].default), None  # no history: nothing to record
    return None


def fill_globals(data: dict[str, xr.DataArray], materials: list[str], metals: list[str], used: dict) -> None:
    """Give the global parameters a scenario leaves out their defaults, in place: collection rate,
    PUE, grid intensity, and a yield for every material and metal without one."""
    for name, var in table().items():
        if var.scope != "global" or var.default is None:
            continue
        if var.extra_dim is None:
            if name not in data:
                data[name] = xr.DataArray(var.default)
                used[name] = record(var.default, var.units, var.source, var.status, "all")
            continue
        labels = materials if var.extra_dim == "material" else metals
        if labels:
            data[name] = fill_yields(data.get(name), name, var.extra_dim, labels, used)


def fill_yields(given: xr.DataArray | None, name: str, dim: str, labels: list[str], used: dict) -> xr.DataArray:
    """Yields along `dim` for every label: those given, else the sourced table (recycling.toml), else 0.

    Labels absent from `given` (or all, without it) take the default and are recorded in `used`.
    """
    stage = "endprocessing" if "endprocessing" in name else "preprocessing"
    sourced = recycling_yields()[stage]
    have = [] if given is None else [str(v) for v in given[dim].values]
    missing = [label for label in labels if label not in have]
    defaults = {
        label: sourced.get(label, {"value": 0.0, "source": table()[name].source, "status": "-"}) for label in missing
    }
    parts = [] if given is None else [given]
    if missing:
        values = xr.DataArray([float(defaults[m]["value"]) for m in missing], dims=dim, coords={dim: missing})
        parts.append(values)
        entry = used.setdefault(name, {"units": "1", "where": {}})
        entry["where"].update(defaults)
    if not missing and have == labels:  # every label given, in order: nothing to fill
        return given
    full = parts[0] if len(parts) == 1 else xr.concat(parts, dim=dim, coords="minimal", join="outer")
    return full.sel({dim: labels}).assign_attrs(given.attrs if given is not None else {})


def fill_absent(grid: xr.Dataset, used: dict) -> xr.Dataset:
    """Variables a grid leaves out altogether (a grid built or edited in Python) take their defaults,
    recorded in `used`; composition gets its 'other' share as the remainder. Returns a new grid."""
    absent = {}
    for name in (*FLEET_DEFAULTS, "composition"):
        if name not in grid:
            absent[name], entry = fleet_default(name)
            used[name] = {**entry, "where": "all"}
    if absent:
        grid = grid.assign(absent)
    if OTHER not in grid["composition"]["material"].values:
        grid = _with_other(grid, used)
    comp = grid["composition"]
    named = comp.where(comp["material"] != OTHER, 0.0)
    filled = {"composition": xr.where(comp["material"] == OTHER, 1.0 - named.sum("material"), named, keep_attrs=True)}
    materials = [str(m) for m in grid["material"].values]
    metals = [str(m) for m in grid["metal"].values] if "metal" in grid.dims else []
    given = {k: grid[k] for k in table() if table()[k].scope == "global" and k in grid}
    data = dict(given)
    fill_globals(data, materials, metals, used)
    filled |= {k: v for k, v in data.items() if given.get(k) is not v}  # one merge, of what changed
    return grid.assign(filled)


def _with_other(grid: xr.Dataset, used: dict) -> xr.Dataset:
    """The grid with the material OTHER added (a grid built or edited in Python without it): composition
    0 there (`fill_absent` then gives it the remainder), yields by material as `fill_yields` gives a
    material without one (recorded in `used`)."""
    labels = [*(str(m) for m in grid["material"].values), OTHER]
    comp = grid["composition"]
    by_material = {"composition": comp.reindex(material=labels, fill_value=0.0).assign_attrs(comp.attrs)}
    for name in [str(k) for k, v in grid.data_vars.items() if "material" in v.dims and k != "composition"]:
        by_material[name] = fill_yields(grid[name], name, "material", labels, used)
    return grid.drop_vars([*by_material, "material"]).assign(by_material)


def recorded(grid: xr.Dataset) -> dict:
    """The grid's own record of defaults (`defaults_used`), kept only where the grid still holds them:
    a value edited since the grid was built is no longer a default."""
    try:
        entries = json.loads(grid.attrs.get(ATTR, "{}"))
    except (TypeError, ValueError):
        return {}
    out = {}
    for name, entry in entries.items() if isinstance(entries, dict) else ():
        kept = _still_held(grid, name, entry) if name in grid and isinstance(entry, dict) else None
        if kept is not None:
            out[name] = kept
    return out


def _still_held(grid: xr.Dataset, name: str, entry: dict) -> dict | None:
    da, where = grid[name], entry.get("where")
    if isinstance(where, dict):  # yields, by material or metal
        dim = table()[name].extra_dim if name in table() else None
        labels = [] if dim is None or dim not in da.dims else [str(v) for v in da[dim].values]
        by_label = np.moveaxis(da.values, da.get_axis_num(dim), 0) if labels else None
        keep = {
            k: e
            for k, e in where.items()
            if k in labels and isinstance(e, dict) and _equal(by_label[labels.index(k)], e.get("value"))
        }
        return {**entry, "where": keep} if keep else None
    if where != "all" and not isinstance(where, list):
        return None

    def holds(part: xr.DataArray) -> bool:
        if name == "composition":
            return OTHER in part["material"].values and _equal(part.sel(material=OTHER), 1.0)
        return _equal(part, entry.get("value"))

    if where == "all":
        return entry if holds(da) else None
    fleets = [str(f) for f in grid["fleet"].values] if "fleet" in grid.dims else []
    keep = [f for f in where if f in fleets and holds(da.sel(fleet=f) if "fleet" in da.dims else da)]
    return {**entry, "where": keep} if keep else None


def _equal(da: xr.DataArray | np.ndarray, value: Any) -> bool:
    try:
        return bool(np.all(np.asarray(getattr(da, "values", da), dtype=float) == float(value)))
    except (TypeError, ValueError):
        return False
