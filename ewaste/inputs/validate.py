"""The scenario grid's rules: which dimensions are sweeps, and validation against the variables table."""

from __future__ import annotations

import difflib

import numpy as np
import xarray as xr

from ..engine.lifetime import AGE_CONVENTIONS, LIFETIME_TYPES
from ..engine.stockflow import NEGATIVE_INFLOW_POLICIES, REPLACEMENT_RULES
from ..errors import InputError
from .timeaxis import STEPS_PER_YEAR, time_coords
from .variables import table

NON_SCENARIO_DIMS = {"time", "history", "fleet", "material", "metal", "lag"}
"""Dimensions that are not sweeps: everything else in a grid is a scenario dimension."""
STRING_VARS = {"driver", "lifetime_type", "description", "capacity_unit", "replacement"}
DRIVER_VAR = {"inflow": "inflow", "stock": "stock", "capacity": "demand"}
REQUIRED_ATTRS = ("start_year", "end_year", "step", "target_year", "age_convention", "negative_inflow")


def _field(var: str, fleet: str | None = None) -> str:
    scope = table()[var].scope if var in table() else "fleet"
    if scope == "fleet" and fleet is not None:
        return f"fleets.{fleet}.{var}"
    section = "energy" if var in ("pue", "grid_intensity") else "recycling"
    return var if scope == "fleet" else f"{section}.{var}"


def _check_attrs(grid: xr.Dataset, source: str) -> xr.Dataset:
    """Check the global attributes; returns the grid with its time coordinates rebuilt from them."""
    for key in REQUIRED_ATTRS:
        if key not in grid.attrs:
            raise InputError(source, key, "not a scenario grid: global attribute missing")
    choices = {"step": STEPS_PER_YEAR, "age_convention": AGE_CONVENTIONS, "negative_inflow": NEGATIVE_INFLOW_POLICIES}
    for key, allowed in choices.items():
        value = grid.attrs[key]
        if not isinstance(value, str) or value not in allowed:
            raise InputError(source, key, f"unknown value {str(value)!r}; expected one of {', '.join(allowed)}")
    years = {}
    for key in ("start_year", "end_year", "target_year"):
        try:
            years[key] = int(grid.attrs[key])
        except (TypeError, ValueError):
            raise InputError(source, key, f"expected a year, got {str(grid.attrs[key])!r}") from None
    if not years["start_year"] <= years["target_year"] <= years["end_year"]:
        raise InputError(source, "target_year", "must be a year between start_year and end_year")
    coords = time_coords(years["start_year"], years["end_year"], grid.attrs["step"])
    expected = coords["time"][1]
    if "time" not in grid.coords or grid["time"].shape != expected.shape or not np.allclose(grid["time"], expected):
        raise InputError(source, "time", "time coordinate does not match start_year, end_year and step")
    return grid.assign_coords(coords)


def _check_variable(grid: xr.Dataset, name: str, source: str) -> None:
    var = table()[name]
    da = grid[name]
    units = da.attrs.get("units")
    if not var.units.startswith("capacity") and units != var.units:
        if units is None or var.factor(units) is None:
            raise InputError(source, _field(name), f"units {units!r} not accepted; expected {var.units!r}")
        grid[name] = da * var.factor(units)
        grid[name].attrs.update(da.attrs, units=var.units)
        da = grid[name]
    allowed = {var.extra_dim} if var.extra_dim else set()
    allowed |= {"fleet"} if var.scope == "fleet" else set()
    allowed |= {"time"} if var.read_by in ("time", "cohort") else set()
    allowed |= {"history"} if var.read_by == "history" else set()
    for dim in set(da.dims) & NON_SCENARIO_DIMS - allowed:
        raise InputError(source, _field(name), f"has dimension {dim!r}, which this parameter cannot vary over")
    if var.scope == "fleet" and "fleet" not in da.dims:
        raise InputError(source, _field(name), "needs a 'fleet' dimension")
    values = da.values
    if np.isinf(values).any():
        raise InputError(source, _field(name), "infinite value")
    if var.scope == "global" and var.extra_dim is None and np.isnan(values).any():
        raise InputError(source, _field(name), "NaN value")
    finite = values[~np.isnan(values)]
    if finite.size and finite.min() < var.min:
        raise InputError(
            source,
            _field(name, _worst_fleet(da, da < var.min)),
            f"value {finite.min():.6g} below the minimum {var.min:g}{_unit(var.units)}",
        )
    if finite.size and finite.max() > var.max:
        raise InputError(
            source,
            _field(name, _worst_fleet(da, da > var.max)),
            f"value {finite.max():.6g} above the maximum {var.max:g}{_unit(var.units)}",
        )


def _unit(units: str) -> str:
    return "" if units == "1" else f" {units}"


def _worst_fleet(da: xr.DataArray, bad: xr.DataArray) -> str | None:
    if "fleet" not in da.dims:
        return None
    any_bad = bad.any([d for d in bad.dims if d != "fleet"])
    return str(da["fleet"].values[int(np.argmax(any_bad.values))])


def _needed(driver: str, lifetime: str) -> list[str]:
    """Variables a fleet cannot do without."""
    life = [f"lifetime_{p}" for p in LIFETIME_TYPES[lifetime]]
    extra = ["capacity_per_unit"] if driver == "capacity" else []
    return [DRIVER_VAR[driver], *extra, *life, "mass"]


def _check_fleets(grid: xr.Dataset, source: str) -> None:
    for name in ("driver", "lifetime_type"):
        if name not in grid or grid[name].dims != ("fleet",):
            raise InputError(source, name, "not a scenario grid: needs a string variable over 'fleet'")
    for i, fleet in enumerate(grid["fleet"].values):
        driver, kind = str(grid["driver"].values[i]), str(grid["lifetime_type"].values[i])
        if driver not in DRIVER_VAR:
            raise InputError(source, f"fleets.{fleet}.driver", f"unknown driver {driver!r}")
        if kind not in LIFETIME_TYPES:
            raise InputError(source, f"fleets.{fleet}.lifetime.type", f"unknown lifetime type {kind!r}")
        for var in _needed(driver, kind):
            if var not in grid:
                raise InputError(
                    source,
                    _field(var, fleet),
                    f"missing (required by {'an' if driver[0] in 'aeiou' else 'a'} {driver}-driven fleet)",
                )
            if np.isnan(grid[var].isel(fleet=i).values).any():
                raise InputError(source, _field(var, fleet), "NaN value")
        rules = set(np.unique(grid["replacement"].isel(fleet=i).values)) if "replacement" in grid else set()
        if rules - set(REPLACEMENT_RULES):
            raise InputError(
                source, f"fleets.{fleet}.replacement", f"unknown rule(s) {sorted(rules - set(REPLACEMENT_RULES))}"
            )
        if (
            "wang2024" in rules
            and kind == "tabulated"
            and bool((grid["lifetime_weights"].isel(fleet=i, lag=0) != 0).any())
        ):
            raise InputError(
                source,
                f"fleets.{fleet}.lifetime.weights",
                "the wang2024 rule retires nothing in the "
                "step a unit enters service: the first weight (lag 0) must be 0",
            )
        if "wang2024" in rules and (driver != "capacity" or kind != "tabulated" or "history" in grid.dims):
            raise InputError(
                source,
                f"fleets.{fleet}.replacement",
                "the wang2024 rule needs a capacity-driven fleet with a tabulated lifetime and no inflow history",
            )
        if kind == "tabulated":
            total = float(grid["lifetime_weights"].isel(fleet=i).sum("lag").max())
            if total > 1 + 1e-6:
                raise InputError(
                    source, _field("lifetime_weights", fleet), f"retirement shares sum to {total:.6g}, more than 1"
                )
    if "composition" in grid:
        total = float(grid["composition"].sum("material").max())
        if total > 1 + 1e-6:
            raise InputError(source, "composition", f"material shares sum to {total:.6g}, more than 1")


def validate(grid: xr.Dataset, source: str) -> xr.Dataset:
    """Check a scenario grid against the variables table; returns it with canonical units."""
    grid = _check_attrs(grid, source)
    if "fleet" not in grid.dims:
        raise InputError(source, "fleet", "not a scenario grid: no 'fleet' dimension")
    for name in grid.data_vars:
        if name in STRING_VARS:
            continue
        if name not in table():
            near = difflib.get_close_matches(str(name), list(table()), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise InputError(source, str(name), "unknown variable" + hint)
        _check_variable(grid, str(name), source)
    _check_fleets(grid, source)
    return grid


def scenario_sizes(grid: xr.Dataset) -> dict[str, int]:
    """The grid's scenario (sweep) dimensions and their lengths."""
    return {str(d): n for d, n in grid.sizes.items() if d not in NON_SCENARIO_DIMS}
