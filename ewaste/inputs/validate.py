"""The scenario grid's rules: which dimensions are sweeps, and validation against the variables table.

Validation is shared by `ewaste validate`, `ewaste run` and `ewaste.evaluate`: every check that can
fail a run without running it is here (values, units, dimensions and their names, sizes, the
solvability of stock-driven fleets), so a grid that validates runs, and one that does not is refused
with the same one line by every command.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterator

import numpy as np
import xarray as xr

from ..engine.arrays import NUMPY
from ..engine.lifetime import AGE_CONVENTIONS, LIFETIME_TYPES
from ..engine.stockflow import NEGATIVE_INFLOW_POLICIES, REPLACEMENT_RULES, SurvivalRows, require_first_step
from ..errors import InputError
from .links import check_links, grid_links
from .names import check_sweep_sizes, dim_name_problem, toml_path
from .timeaxis import STEPS_PER_YEAR, time_coords
from .uncertain import DRAW
from .variables import table

NON_SCENARIO_DIMS = {"time", "history", "fleet", "material", "metal", "lag"}
"""Dimensions that are not sweeps: everything else in a grid is a scenario dimension."""
STRING_VARS = {
    "driver",
    "lifetime_type",
    "description",
    "capacity_unit",
    "replacement",
    "depreciation",
    "inflow_from",
    "inflow_link",
    "inflow_transfer",
}
DRIVER_VAR = {"inflow": "inflow", "stock": "stock", "capacity": "demand"}
REQUIRED_ATTRS = ("start_year", "end_year", "step", "target_year", "age_convention", "negative_inflow")


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


def uses(driver: str, kind: str, var: str) -> bool:
    """Whether a fleet with this driver and lifetime type reads grid variable `var`."""
    if var in ("inflow", "stock", "demand"):
        return DRIVER_VAR[driver] == var
    if var.startswith("lifetime_"):
        return var.removeprefix("lifetime_") in LIFETIME_TYPES[kind]
    return True


def _label(da: xr.DataArray, dim: str, i: int) -> str:
    """The label of position `i` along `dim`: a step by its period (2025, 2025Q3), else its coordinate."""
    if dim == "time" and "period" in da.coords:
        return str(da["period"].values[i])
    if dim not in da.coords:
        return str(i)
    value = da[dim].values[i]
    return f"{value:g}" if isinstance(value, float | np.floating) else str(value)


def _first(da: xr.DataArray, bad: np.ndarray) -> dict[str, str]:
    """Coordinates (dim -> label) of the first True of `bad`, an array over `da`'s dimensions."""
    index = np.unravel_index(int(np.argmax(bad)), bad.shape) if bad.ndim else ()
    return {str(d): _label(da, str(d), int(i)) for d, i in zip(da.dims, index, strict=True)}


def _path(name: str, at: dict[str, str]) -> str:
    """The TOML path of variable `name` at coordinates `at` (its fleet and material or metal)."""
    extra = table()[name].extra_dim
    return toml_path(name, at.get("fleet"), at.get(extra) if extra in ("material", "metal") else None)


def _check_variable(grid: xr.Dataset, name: str, source: str, used: np.ndarray) -> None:
    """Units (converted to canonical), dimensions, NaN and infinities, and the range where it is read.

    `used`: per fleet, whether the fleet reads the variable (fleet parameters only).
    """
    var = table()[name]
    da = grid[name]
    whole = toml_path(name)  # the variable as a whole: fleets.*.NAME for fleet parameters
    if da.dtype.kind not in "biuf":
        raise InputError(source, whole, f"expected numbers, got values of type {da.dtype}")
    units = da.attrs.get("units")
    if not var.units.startswith("capacity") and units != var.units:
        if units is None or var.factor(units) is None:
            raise InputError(source, whole, f"units {units!r} not accepted; expected {var.units!r}")
        grid[name] = da * var.factor(units)
        grid[name].attrs.update(da.attrs, units=var.units)
        da = grid[name]
    allowed = {var.extra_dim} if var.extra_dim else set()
    allowed |= {"fleet"} if var.scope == "fleet" else set()
    allowed |= {"time"} if var.read_by in ("time", "cohort") else set()
    allowed |= {"history"} if var.read_by == "history" else set()
    for dim in set(da.dims) & NON_SCENARIO_DIMS - allowed:
        raise InputError(source, whole, f"has dimension {dim!r}, which this parameter cannot vary over")
    needed = ["fleet"] if var.scope == "fleet" else []
    needed += [var.extra_dim] if var.extra_dim else []
    needed += ["history"] if var.read_by == "history" else []
    for dim in needed:
        if dim not in da.dims:
            raise InputError(source, whole, f"needs a {dim!r} dimension")
    values = np.asarray(da.values, dtype=float)
    fleet_axis = da.dims.index("fleet") if var.scope == "fleet" else None
    if not _within(values, used, fleet_axis, var.min, var.max):  # the usual case: two passes, no copies
        _refuse_values(da, name, values, used, fleet_axis, source)


def _refuse_values(
    da: xr.DataArray, name: str, values: np.ndarray, used: np.ndarray, fleet_axis: int | None, source: str
) -> None:
    """Raise InputError for the first NaN or infinite value, else the most extreme value outside the
    range of those read (`_within` said there is one), naming where it is."""
    var = table()[name]
    for bad, what in ((np.isnan(values), "NaN"), (np.isinf(values), "infinite value")):
        if bad.any():
            at = _first(da, bad)
            raise InputError(
                source,
                _path(name, at),
                f"{what} at {', '.join(f'{d}={v}' for d, v in at.items())}: a value given must be a number",
            )
    read = values
    if fleet_axis is not None:
        mask = np.moveaxis(np.asarray(used, dtype=bool).reshape((-1,) + (1,) * (values.ndim - 1)), 0, fleet_axis)
        read = np.where(mask, values, np.nan)
    for worst, beyond, limit, word in (
        (np.nanmin, np.less, var.min, "below the minimum"),
        (np.nanmax, np.greater, var.max, "above the maximum"),
    ):
        bad = beyond(np.nan_to_num(read, nan=limit), limit)
        if bad.any():
            value = float(worst(np.where(bad, read, np.nan)))
            raise InputError(
                source, _path(name, _first(da, read == value)), f"value {value:.6g} {word} {limit:g}{_unit(var.units)}"
            )


def _within(values: np.ndarray, used: np.ndarray, fleet_axis: int | None, lo: float, hi: float) -> bool:
    """Whether every value is a number (no NaN, no infinity) and every value read lies in [lo, hi]:
    of the fleets that read it (`used`, along `fleet_axis`) for fleet parameters, else all of them."""
    if values.size == 0:
        return True
    low, high = values.min(), values.max()  # NaN propagates
    if not (np.isfinite(low) and np.isfinite(high)):
        return False
    if fleet_axis is None or np.all(used):
        return bool(low >= lo and high <= hi)
    parts = [values[(slice(None),) * fleet_axis + (i,)] for i in np.flatnonzero(used)]
    return all(p.size == 0 or (p.min() >= lo and p.max() <= hi) for p in parts)


def _unit(units: str) -> str:
    return "" if units == "1" else f" {units}"


def _needed(driver: str, lifetime: str) -> list[str]:
    """Variables a fleet cannot do without."""
    life = [f"lifetime_{p}" for p in LIFETIME_TYPES[lifetime]]
    extra = ["capacity_per_unit"] if driver == "capacity" else []
    return [DRIVER_VAR[driver], *extra, *life, "mass"]


def _kinds(grid: xr.Dataset, source: str) -> list[tuple[str, str]]:
    """Each fleet's driver and lifetime type, checked."""
    for name in ("driver", "lifetime_type"):
        if name not in grid or grid[name].dims != ("fleet",):
            raise InputError(source, "fleets", f"not a scenario grid: needs the text variable {name!r} over 'fleet'")
    kinds = []
    for i, fleet in enumerate(map(str, grid["fleet"].values)):
        driver, kind = str(grid["driver"].values[i]), str(grid["lifetime_type"].values[i])
        if driver not in DRIVER_VAR:
            raise InputError(source, f"fleets.{fleet}.driver", f"unknown driver {driver!r}")
        if kind not in LIFETIME_TYPES:
            raise InputError(source, f"fleets.{fleet}.lifetime.type", f"unknown lifetime type {kind!r}")
        for var in _needed(driver, kind):
            if var not in grid:
                article = "an" if driver[0] in "aeiou" else "a"
                raise InputError(
                    source, toml_path(var, fleet), f"missing (required by {article} {driver}-driven fleet)"
                )
        kinds.append((driver, kind))
    return kinds


def _check_fleet(grid: xr.Dataset, i: int, driver: str, kind: str, source: str, first_step: bool) -> None:
    """Replacement rule, tabulated shares, composition, and whether a stock-driven fleet can be solved."""
    fleet = str(grid["fleet"].values[i])
    rules = set(map(str, np.unique(grid["replacement"].isel(fleet=i).values))) if "replacement" in grid else set()
    if rules - set(REPLACEMENT_RULES):
        raise InputError(
            source, f"fleets.{fleet}.replacement", f"unknown rule(s) {sorted(rules - set(REPLACEMENT_RULES))}"
        )
    if driver == "capacity" and bool((grid["capacity_per_unit"].isel(fleet=i) <= 0).any()):
        field = f"fleets.{fleet}.capacity_per_unit"
        raise InputError(source, field, "a capacity-driven fleet needs a capacity per unit > 0")
    weights = grid["lifetime_weights"].isel(fleet=i) if kind == "tabulated" else None
    if "wang2024" in rules and weights is not None and bool((weights.isel(lag=0) != 0).any()):
        raise InputError(
            source,
            f"fleets.{fleet}.lifetime.weights",
            "the wang2024 rule retires nothing in the step a unit enters service: the first weight (lag 0) must be 0",
        )
    if "wang2024" in rules and (driver != "capacity" or kind != "tabulated" or "history" in grid.dims):
        raise InputError(
            source,
            f"fleets.{fleet}.replacement",
            "the wang2024 rule needs a capacity-driven fleet with a tabulated lifetime and no inflow history",
        )
    if weights is not None:
        total = float(weights.sum("lag").max())
        if total > 1 + 1e-6:
            raise InputError(
                source, f"fleets.{fleet}.lifetime.weights", f"retirement shares sum to {total:.6g}, more than 1"
            )
    if "composition" in grid:
        total = float(grid["composition"].isel(fleet=i).sum("material").max())
        if total > 1 + 1e-6:
            raise InputError(source, f"fleets.{fleet}.composition", f"material shares sum to {total:.6g}, more than 1")
    if first_step and driver != "inflow" and (not rules or "balanced" in rules):
        _check_first_step(grid, i, kind, source)


def _check_first_step(grid: xr.Dataset, i: int, kind: str, source: str) -> None:
    """A stock-driven fleet divides by the share of a cohort that survives its first step, sf[m, m]:
    the engine refuses it below MIN_FIRST_STEP_SURVIVAL, and so does validation, with the same words.

    The shares are the engine's own (SurvivalRows), over every cohort and grid point of the fleet.
    """
    fleet = str(grid["fleet"].values[i])
    dt = 1.0 / STEPS_PER_YEAR[grid.attrs["step"]]
    names = ("weights",) if kind == "tabulated" else LIFETIME_TYPES[kind]
    given = [grid[f"lifetime_{p}"].isel(fleet=i) for p in names]
    firsts = []
    for part in _blocks(given):  # the parameters' every combination, a block at a time: bounded memory
        if kind == "tabulated":
            w = part[0].transpose("lag", ...).values.reshape(part[0].sizes["lag"], -1)
            params = {"cumulative": np.cumsum(w, axis=0)}
        else:
            params = {p: da.values.reshape(1, -1) for p, da in zip(names, xr.broadcast(*part), strict=True)}
        rows = SurvivalRows(kind, params, 1, dt, grid.attrs["age_convention"], NUMPY)
        firsts.append(rows.diagonal_min())
    try:
        require_first_step(float(np.min(firsts)))  # NaN (a NaN lifetime) propagates and is refused
    except InputError as exc:
        raise InputError(source, f"fleets.{fleet}.lifetime", exc.message) from None


CHECK_BLOCK = 2**22  # parameter combinations evaluated at once by `_check_first_step`


def _blocks(given: list[xr.DataArray]) -> Iterator[list[xr.DataArray]]:
    """The arrays, cut along their longest dimension so that each block broadcasts to at most about
    CHECK_BLOCK combinations (a 1e8-point lifetime sweep would otherwise take gigabytes)."""
    sizes = {d: n for da in given for d, n in da.sizes.items()}
    total = math.prod(sizes.values())
    cut = {d: n for d, n in sizes.items() if d != "lag"}  # a tabulated lifetime's lags stay whole
    if total <= CHECK_BLOCK or not cut:
        yield given
        return
    lead = max(cut, key=cut.__getitem__)
    step = max(1, CHECK_BLOCK * sizes[lead] // total)
    for start in range(0, sizes[lead], step):
        yield [da.isel({lead: slice(start, start + step)}) if lead in da.dims else da for da in given]


def _check_dims(grid: xr.Dataset, source: str) -> None:
    """Sweep dimensions: names NetCDF and Zarr can store, not too many, not too many grid points."""
    sizes = scenario_sizes(grid)
    for dim in grid.dims:
        problem = None if dim in NON_SCENARIO_DIMS or dim == DRAW else dim_name_problem(dim)
        if problem:
            raise InputError(source, None, problem)
    if sizes:
        check_sweep_sizes(sizes, source, list(sizes)[-1])


def validate(grid: xr.Dataset, source: str, first_step: bool = True) -> xr.Dataset:
    """Check a scenario grid against the variables table; returns it with canonical units.

    source: the file to name in errors (the path the user gave). Raises InputError naming it and the
    TOML path of the parameter at fault, with the coordinates of a NaN or infinite value.
    first_step: also check that every stock-driven fleet can be solved (`_check_first_step`, over
    every cohort and grid point); `evaluate` leaves that to the engines, which refuse the same
    fleets with the same field and words as they run.
    """
    grid = _check_attrs(grid, source)
    if "fleet" not in grid.dims:
        raise InputError(source, "fleet", "not a scenario grid: no 'fleet' dimension")
    fleets = [str(f) for f in grid["fleet"].values] if "fleet" in grid.coords else []
    if len(set(fleets)) != grid.sizes["fleet"]:
        raise InputError(source, "fleets", "each fleet needs a name of its own (the 'fleet' coordinate)")
    _check_dims(grid, source)
    kinds = _kinds(grid, source)
    for name in grid.data_vars:
        if name in STRING_VARS:
            continue
        if name not in table():
            near = difflib.get_close_matches(str(name), list(table()), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise InputError(source, str(name), "unknown variable" + hint)
        used = np.array([uses(driver, kind, str(name)) for driver, kind in kinds])
        _check_variable(grid, str(name), source, used)
    for i, (driver, kind) in enumerate(kinds):
        _check_fleet(grid, i, driver, kind, source, first_step)
    check_links(*grid_links(grid), source)
    return grid


def scenario_sizes(grid: xr.Dataset) -> dict[str, int]:
    """The grid's scenario (sweep) dimensions and their lengths."""
    return {str(d): n for d, n in grid.sizes.items() if d not in NON_SCENARIO_DIMS}
