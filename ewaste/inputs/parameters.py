"""Parameters of a scenario file: scalars, series over periods and sweeps, in canonical units.

A parameter is a scalar, a series keyed by years, quarters or months, or a sweep over values (a new
grid dimension); parameters that sweep along the same named dimension vary together. Every error
names the file and the TOML path the user wrote. See docs/scenario-format.md.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from .distributions import is_distribution
from .names import check_dim_name, check_sweep_sizes
from .series import overlapping, step_totals
from .timeaxis import history_coords, interpolate_series, parse_period, step_length, time_coords
from .uncertain import Uncertainty
from .variables import Variable

SPEC_KEYS = {"value", "values", "dim", "units", "interpolation", "basis"}
SERIES_OPTIONS = ("interpolation", "basis", "factor")  # keys a series table may hold besides its periods
INTERPOLATIONS = ("linear", "log", "step")
BASES = ("rate", "total")
FLOWS = ("inflow", "inflow_history")  # the parameters whose values may be totals per period
STOCK_LIKE = {"stock", "demand"}  # read at the end of the step
FIRST_YEAR, LAST_YEAR = 1900, 2300  # the years a scenario may model, and its series name


@dataclass(frozen=True)
class Spec:
    """How the values of one parameter are written: interpolation, basis, units and their factor."""

    interpolation: str = "linear"
    basis: str = "rate"
    units: str | None = None
    factor: float = 1.0


def suggest(key: str, allowed: set[str] | list[str]) -> str:
    near = difflib.get_close_matches(key, sorted(allowed), n=1)
    return f"; did you mean {near[0]!r}?" if near else f"; expected one of {', '.join(sorted(allowed))}"


def check_keys(table_: dict, allowed: set[str], source: str, path: str) -> None:
    for key in table_:
        if key not in allowed:
            raise InputError(source, f"{path}.{key}" if path else key, "unknown key" + suggest(key, allowed))


class Context:
    """What parsing one scenario file needs to know: file name, time axis, named dimensions."""

    def __init__(self, source: str, meta: dict, dimensions: dict[str, list], uncertainty: Uncertainty | None = None):
        self.source = source
        self.uncertainty = uncertainty or Uncertainty()
        self.meta = meta
        self.dimensions = dimensions
        self.coords = time_coords(meta["start_year"], meta["end_year"], meta["step"])
        self.dim_lengths: dict[str, tuple[int, str]] = {}
        self.history_years = 0
        self.sources: dict[str, str] = {}
        self.finance: dict | None = None  # the [finance] settings: currency, price year, basis
        self.defaults: dict[str, dict] = {}  # defaults a fleet's finance table took (`defaults_used` entries)

    def fail(self, field: str, message: str) -> InputError:
        return InputError(self.source, field, message)


def number(raw: Any, ctx: Context, field: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ctx.fail(field, f"expected a number, got {raw!r}")
    value = float(raw)
    if not np.isfinite(value):
        raise ctx.fail(field, f"value {raw!r} is not a finite number")
    return value


def _plain(raw: Any, var: Variable, ctx: Context, field: str, spec: Spec) -> xr.DataArray:
    """A scalar, a distribution or a series keyed by periods, converted to canonical units by `spec.factor`."""
    if is_distribution(raw):
        factor = _factor(raw["units"], var, ctx, field) if "units" in raw else spec.factor
        return ctx.uncertainty.value(raw, var, ctx.source, field, factor)
    if not isinstance(raw, dict):
        if var.read_by == "history":
            raise ctx.fail(
                field, "an inflow history is a series keyed by years before the start year, e.g. { 2018 = 100 }"
            )
        if _options({}, var, ctx, field, spec).basis == "total":
            raise ctx.fail(field, "a total belongs to a period: give a series keyed by periods, e.g. { 2025 = 400 }")
        return xr.DataArray(number(raw, ctx, field) * spec.factor)
    spec = _options(raw, var, ctx, field, spec)
    periods, values = [], []
    for key, val in raw.items():
        if key in SERIES_OPTIONS:
            continue
        period = parse_period(key)
        if period is not None and not FIRST_YEAR <= period[0] <= LAST_YEAR:
            raise ctx.fail(f"{field}.{key}", f"a period between {FIRST_YEAR} and {LAST_YEAR}")
        if period is None:
            raise ctx.fail(f"{field}.{key}", "a series is keyed by years (2025), quarters (2025Q3) or months (2025-07)")
        periods.append(period)
        if is_distribution(val):  # one key of the series drawn: the series is interpolated draw by draw
            if spec.basis == "total":
                raise ctx.fail(f"{field}.{key}", 'a total (basis = "total") is a number, not a distribution')
            values.append(ctx.uncertainty.value(val, var, ctx.source, f"{field}.{key}", spec.factor))
        else:
            values.append(number(val, ctx, f"{field}.{key}") * spec.factor)
    if not periods:
        raise ctx.fail(field, "empty series")
    if spec.interpolation == "log" and min(float(np.min(v)) for v in values) <= 0:
        raise ctx.fail(field, "log interpolation needs values above zero")
    starts, lengths = np.array(periods).T
    if spec.basis == "total":
        clash = overlapping(starts, lengths)
        if clash is not None:
            keys = [k for k in raw if k not in SERIES_OPTIONS]
            raise ctx.fail(
                field, f"periods {keys[clash[0]]} and {keys[clash[1]]} overlap: a total is given once for a period"
            )
    else:
        at = 1.0 if var.name in STOCK_LIKE else 0.5
        points = np.round(starts + lengths * at, 9)
        if len(set(points)) != len(points):
            raise ctx.fail(field, "two keys of the series fall on the same point in time (e.g. 2025 and 2025Q4)")
    if any(isinstance(v, xr.DataArray) and v.ndim for v in values):
        series = _drawn_series(starts, lengths, values, var, ctx, field, spec)
    else:
        series = _series(starts, lengths, np.array([float(v) for v in values]), var, ctx, field, spec)
    if "factor" not in raw:
        return series
    if not is_distribution(raw["factor"]):
        example = '{ dist = "lognormal", mean = 1, std = 0.2 }'
        raise ctx.fail(f"{field}.factor", f"a factor is a distribution, e.g. {example}")
    return ctx.uncertainty.factor(raw["factor"], series, var, ctx.source, f"{field}.factor")


def _drawn_series(
    starts: np.ndarray, lengths: np.ndarray, values: list, var: Variable, ctx: Context, field: str, spec: Spec
) -> xr.DataArray:
    """A series some of whose keys are drawn: interpolation is linear in the values (in their logarithms
    for "log"), so each step is a fixed weighting of the keys, applied to every draw at once."""
    lin = replace(spec, interpolation="step" if spec.interpolation == "step" else "linear")
    unit = np.eye(len(values))
    parts = [_series(starts, lengths, unit[k], var, ctx, field, lin) for k in range(len(values))]
    basis = xr.concat(parts, dim="key")  # (key, time): the weight of each key in each step
    log = spec.interpolation == "log"
    keys = [v if isinstance(v, xr.DataArray) else xr.DataArray(v) for v in values]
    keys = xr.concat([np.log(v) if log else v for v in keys], dim="key")
    series = xr.dot(basis, keys, dim="key")
    if log:  # in place: at a million draws each pass over the series is 90 MB
        outside = (basis.sum("key") == 0).broadcast_like(series).values  # a history is 0 before its first period
        np.exp(series.values, out=series.values)
        series.values[outside] = 0.0
    return series


def _options(raw: dict, var: Variable, ctx: Context, field: str, spec: Spec) -> Spec:
    """The series' own `interpolation` and `basis` (over those of its full form), checked."""
    spec = replace(spec, **{k: raw[k] for k in ("interpolation", "basis") if k in raw})
    if not isinstance(spec.interpolation, str) or spec.interpolation not in INTERPOLATIONS:
        raise ctx.fail(
            f"{field}.interpolation",
            f"unknown interpolation {spec.interpolation!r}" + suggest(str(spec.interpolation), INTERPOLATIONS),
        )
    if not isinstance(spec.basis, str) or spec.basis not in BASES:
        raise ctx.fail(f"{field}.basis", f"unknown basis {spec.basis!r}" + suggest(str(spec.basis), BASES))
    if spec.basis == "total" and var.name not in FLOWS:
        raise ctx.fail(
            f"{field}.basis",
            f'basis = "total" is for flows ({", ".join(FLOWS)}), whose values add up over a period',
        )
    if spec.basis == "total" and spec.units is not None:
        raise ctx.fail(
            f"{field}.units", 'a total is a number of units in its period: give no units with basis = "total"'
        )
    return spec


def _series(
    starts: np.ndarray, lengths: np.ndarray, values: np.ndarray, var: Variable, ctx: Context, field: str, spec: Spec
) -> xr.DataArray:
    step, start = ctx.meta["step"], ctx.meta["start_year"]
    method, dt = spec.interpolation, step_length(step)
    if var.read_by == "history":
        if (starts + lengths).max() > start + 1e-9:
            raise ctx.fail(field, f"an inflow history ends before the start year {start}")
        years = int(np.ceil(start - starts.min() - 1e-9))
        ctx.history_years = max(ctx.history_years, years)
        coords = history_coords(years, start, step)
        t = coords["history"][1]
        if spec.basis == "total":  # nothing before the first period; totals kept period by period
            vals = step_totals(starts, lengths, values, t, dt, method, zero_before_first=True) / dt
        else:
            keep = t >= starts.min() - 1e-9
            vals = np.where(keep, interpolate_series(starts, lengths, values, t, step, method), 0.0)
        return xr.DataArray(vals, dims="history", coords={"history": coords["history"]})
    if var.read_by == "none":
        raise ctx.fail(field, "this parameter cannot vary over time")
    t = ctx.coords["time"][1]
    if spec.basis == "total":
        vals = step_totals(starts, lengths, values, t, dt, method) / dt  # units per step -> units per year
    else:
        vals = interpolate_series(
            starts, lengths, values, t, step, method, "end" if var.name in STOCK_LIKE else "middle"
        )
    return xr.DataArray(vals, dims="time", coords={"time": t})


def parse_parameter(raw: Any, var: Variable, ctx: Context, field: str) -> xr.DataArray:
    """Parse one parameter (scalar, series or sweep) into canonical units.

    Raises InputError naming `ctx.source` and the TOML path of the value at fault.
    """
    spec, dim, values = Spec(), None, None
    if isinstance(raw, dict) and set(raw) & {"value", "values"} and not is_distribution(raw):
        check_keys(raw, SPEC_KEYS, ctx.source, field)
        if {"value", "values"} <= set(raw):
            raise ctx.fail(field, "give either value (one value or series) or values (a sweep), not both")
        spec = Spec(raw.get("interpolation", "linear"), raw.get("basis", "rate"), raw.get("units"))
        dim = raw.get("dim")
        if "dim" in raw and "values" not in raw:
            raise ctx.fail(f"{field}.dim", "a dimension belongs to a sweep: give values = [...]")
        if "values" in raw:
            values = raw["values"]
            if not isinstance(values, list):
                raise ctx.fail(f"{field}.values", "a sweep is a list of values")
        else:
            raw = raw["value"]
    elif isinstance(raw, list):
        values = raw
    spec = replace(spec, factor=_factor(spec.units, var, ctx, field))
    if values is None:
        return _plain(raw, var, ctx, field, spec)
    for i, v in enumerate(values):
        if is_distribution(v):
            raise ctx.fail(f"{field}[{i}]", "a sweep holds fixed values: draw the parameter, or sweep it, not both")
    parts = [
        parse_parameter(v, var, ctx, f"{field}[{i}]")  # a sweep nested in a sweep: another dimension
        if isinstance(v, dict) and "values" in v
        else _plain(v, var, ctx, f"{field}[{i}]", spec)
        for i, v in enumerate(values)
    ]
    auto = [float(p) for p in parts] if dim is None and all(p.ndim == 0 for p in parts) else None
    return stack(parts, dim, ctx, field, auto)


def stack(
    parts: list[xr.DataArray], dim: str | None, ctx: Context, field: str, auto_labels: list | None = None
) -> xr.DataArray:
    """Sweep values along a dimension: named (labels from [dimensions], or 0..n-1) or automatic
    (named after the field, labelled by the values themselves).

    Raises InputError for a bad dimension name, a count of values that does not match the
    dimension, or more sweep dimensions or grid points than a grid can hold (names.py).
    """
    if not parts:
        raise ctx.fail(field, "a sweep needs at least one value")
    if dim is not None and not isinstance(dim, str):
        raise ctx.fail(f"{field}.dim", "a dimension name is text")
    if dim is None:
        name = field.replace("fleets.", "").replace(".", "_").replace("[", "_").replace("]", "")
        check_dim_name(name, ctx.source, field, f'; give dim = "NAME" to name the sweep of {field}')
    else:
        name = dim
        check_dim_name(name, ctx.source, f"{field}.dim")
    if name in ctx.dimensions:
        labels = ctx.dimensions[name]
        if len(labels) != len(parts):
            raise ctx.fail(field, f"{len(parts)} values for dimension {name!r}, which has {len(labels)} labels")
    elif auto_labels is not None:
        labels = auto_labels
        if len(set(labels)) != len(labels):
            raise ctx.fail(field, "a sweep repeats a value")
    else:
        labels = list(range(len(parts)))
    seen = ctx.dim_lengths.setdefault(name, (len(parts), field))
    if seen[0] != len(parts):
        raise ctx.fail(field, f"{len(parts)} values along dimension {name!r}, but {seen[1]} gives {seen[0]}")
    check_sweep_sizes({d: n for d, (n, _) in ctx.dim_lengths.items()}, ctx.source, field)
    coord = xr.DataArray(labels, dims=name, attrs={"long_name": f"sweep of {field}"})
    if all(p.ndim == 0 and not p.coords for p in parts):  # numbers: one array (concat costs 0.6 ms a part)
        values = np.array([p.values for p in parts])
        return xr.DataArray(values, dims=name, name=parts[0].name, attrs=parts[0].attrs).assign_coords({name: coord})
    return xr.concat(
        parts, dim=xr.DataArray(labels, dims=name, name=name), coords="minimal", join="outer", fill_value=0.0
    ).assign_coords({name: coord})


def _factor(units: str | None, var: Variable, ctx: Context, field: str) -> float:
    """Factor from the file's units to the canonical unit."""
    if units is None:
        return 1.0
    if not isinstance(units, str):
        raise ctx.fail(f"{field}.units", 'units are text, e.g. "kg"')
    if var.units.startswith("capacity"):
        raise ctx.fail(f"{field}.units", "capacity is in the fleet's own unit: set capacity_unit for the fleet instead")
    factor = var.factor(units)
    if factor is None:
        accepted = dict.fromkeys([var.units, *var.accept])
        raise ctx.fail(f"{field}.units", f"unit {units!r} not accepted; use one of {', '.join(accepted)}")
    return factor


def named_table(raw: Any, var: Variable, ctx: Context, field: str) -> xr.DataArray:
    """A table keyed by material or metal name -> a DataArray along `var.extra_dim`."""
    if not isinstance(raw, dict) or not raw:
        raise ctx.fail(field, f"expected a table of {var.extra_dim} names, e.g. {{ steel = 0.5 }}")
    parts = [parse_parameter(v, var, ctx, f"{field}.{k}") for k, v in raw.items()]
    labels = xr.DataArray(list(raw), dims=var.extra_dim, name=var.extra_dim)
    return xr.concat(parts, dim=labels, coords="minimal")


def choice(raw: Any, allowed: tuple[str, ...], ctx: Context, field: str) -> xr.DataArray:
    """A string option, or a sweep over options (a list, or { dim = ..., values = [...] })."""
    dim, values = None, raw
    if isinstance(raw, dict):
        check_keys(raw, {"dim", "values"}, ctx.source, field)
        dim, values = raw.get("dim"), raw.get("values")
    for i, value in enumerate(values if isinstance(values, list) else [values]):
        if not isinstance(value, str) or value not in allowed:
            where = f"{field}[{i}]" if isinstance(values, list) else field
            raise ctx.fail(where, f"unknown value {value!r}" + suggest(str(value), set(allowed)))
    if not isinstance(values, list):
        return xr.DataArray(values)
    parts = [xr.DataArray(v) for v in values]
    return stack(parts, dim, ctx, field, list(values) if dim is None else None)
