"""Scenario files (TOML) -> scenario grid (`xarray.Dataset`).

A parameter is a scalar, a series over years, or a sweep over values (a new grid dimension);
parameters that sweep along the same named dimension vary together. See docs/scenario-format.md.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from . import __version__
from .errors import InputError
from .grid import DRIVER_VAR, validate
from .lifetime import AGE_CONVENTIONS, LIFETIME_TYPES, weibull_from_mean_std
from .stockflow import NEGATIVE_INFLOW_POLICIES, REPLACEMENT_RULES
from .timeaxis import STEPS_PER_YEAR, history_coords, interpolate_series, parse_period, time_coords
from .variables import Variable, archetypes, cf_attrs, reserved_names, table

SECTIONS = {
    "scenario": {
        "name",
        "description",
        "sources",
        "start_year",
        "end_year",
        "step",
        "target_year",
        "age_convention",
        "negative_inflow",
    },
    "dimensions": None,
    "sources": None,
    "fleets": None,
    "recycling": {"collection_rate", "preprocessing_yield", "endprocessing_yield"},
    "energy": {"pue", "grid_intensity"},
}
FLEET_KEYS = {
    "description",
    "driver",
    "capacity_unit",
    "inflow",
    "stock",
    "demand",
    "capacity_per_unit",
    "inflow_history",
    "lifetime",
    "mass",
    "power",
    "utilisation",
    "composition",
    "pcb_metal_content",
    "replacement",
    "archetype",
}
LIFETIME_KEYS = {"type", "mean", "std", "shape", "scale", "weights"}
SPEC_KEYS = {"value", "values", "dim", "units", "interpolation"}
INTERPOLATIONS = ("linear", "log", "step")
STOCK_LIKE = {"stock", "demand"}  # read at the end of the step
OTHER = "other"


def _suggest(key: str, allowed: set[str] | list[str]) -> str:
    near = difflib.get_close_matches(key, sorted(allowed), n=1)
    return f"; did you mean {near[0]!r}?" if near else f"; expected one of {', '.join(sorted(allowed))}"


def _check_keys(table_: dict, allowed: set[str], source: str, path: str) -> None:
    for key in table_:
        if key not in allowed:
            raise InputError(source, f"{path}.{key}" if path else key, "unknown key" + _suggest(key, allowed))


class _Context:
    """What parsing one scenario file needs to know: file name, time axis, named dimensions."""

    def __init__(self, source: str, meta: dict, dimensions: dict[str, list]):
        self.source = source
        self.meta = meta
        self.dimensions = dimensions
        self.coords = time_coords(meta["start_year"], meta["end_year"], meta["step"])
        self.dim_lengths: dict[str, tuple[int, str]] = {}
        self.history_years = 0
        self.sources: dict[str, str] = {}

    def fail(self, field: str, message: str) -> InputError:
        return InputError(self.source, field, message)


def _number(raw: Any, ctx: _Context, field: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ctx.fail(field, f"expected a number, got {raw!r}")
    value = float(raw)
    if not np.isfinite(value):
        raise ctx.fail(field, f"value {raw!r} is not a finite number")
    return value


def _plain(raw: Any, var: Variable, ctx: _Context, field: str, interpolation: str, factor: float) -> xr.DataArray:
    """A scalar or a series keyed by periods, converted to canonical units by `factor`."""
    if isinstance(raw, dict):
        periods, values = [], []
        for key, val in raw.items():
            if key == "interpolation":
                continue
            period = parse_period(key)
            if period is None:
                raise ctx.fail(
                    f"{field}.{key}", "a series is keyed by years (2025), quarters (2025Q3) or months (2025-07)"
                )
            periods.append(period)
            values.append(_number(val, ctx, f"{field}.{key}") * factor)
        if not periods:
            raise ctx.fail(field, "empty series")
        method = raw.get("interpolation", interpolation)
        if not isinstance(method, str) or method not in INTERPOLATIONS:
            raise ctx.fail(
                f"{field}.interpolation", f"unknown interpolation {method!r}" + _suggest(method, INTERPOLATIONS)
            )
        if method == "log" and min(values) <= 0:
            raise ctx.fail(field, "log interpolation needs values above zero")
        starts, lengths = np.array(periods).T
        at = 1.0 if var.name in STOCK_LIKE else 0.5
        points = np.round(starts + lengths * at, 9)
        if len(set(points)) != len(points):
            raise ctx.fail(field, "two keys of the series fall on the same point in time (e.g. 2025 and 2025Q4)")
        return _series(starts, lengths, np.array(values), var, ctx, field, method)
    if var.read_by == "history":
        raise ctx.fail(field, "an inflow history is a series keyed by years before the start year, e.g. { 2018 = 100 }")
    return xr.DataArray(_number(raw, ctx, field) * factor)


def _series(
    starts: np.ndarray, lengths: np.ndarray, values: np.ndarray, var: Variable, ctx: _Context, field: str, method: str
) -> xr.DataArray:
    step, start = ctx.meta["step"], ctx.meta["start_year"]
    if var.read_by == "history":
        if (starts + lengths).max() > start + 1e-9:
            raise ctx.fail(field, f"an inflow history ends before the start year {start}")
        years = int(np.ceil(start - starts.min() - 1e-9))
        ctx.history_years = max(ctx.history_years, years)
        coords = history_coords(years, start, step)
        t = coords["history"][1]
        keep = t >= starts.min() - 1e-9
        vals = np.where(keep, interpolate_series(starts, lengths, values, t, step, method), 0.0)
        return xr.DataArray(vals, dims="history", coords={"history": coords["history"]})
    if var.read_by == "none":
        raise ctx.fail(field, "this parameter cannot vary over time")
    at = "end" if var.name in STOCK_LIKE else "middle"
    vals = interpolate_series(starts, lengths, values, ctx.coords["time"][1], step, method, at)
    return xr.DataArray(vals, dims="time", coords={"time": ctx.coords["time"][1]})


def parse_parameter(raw: Any, var: Variable, ctx: _Context, field: str) -> xr.DataArray:
    """Parse one parameter (scalar, series or sweep) into canonical units."""
    units, interpolation, dim, values = None, "linear", None, None
    if isinstance(raw, dict) and set(raw) & {"value", "values"}:
        _check_keys(raw, SPEC_KEYS, ctx.source, field)
        if {"value", "values"} <= set(raw):
            raise ctx.fail(field, "give either value (one value or series) or values (a sweep), not both")
        units = raw.get("units")
        interpolation = raw.get("interpolation", "linear")
        dim = raw.get("dim")
        if "values" in raw:
            values = raw["values"]
            if not isinstance(values, list):
                raise ctx.fail(f"{field}.values", "a sweep is a list of values")
        else:
            raw = raw["value"]
    elif isinstance(raw, list):
        values = raw
    factor = _factor(units, var, ctx, field)
    if values is None:
        return _plain(raw, var, ctx, field, interpolation, factor)
    parts = [
        parse_parameter(v, var, ctx, f"{field}[{i}]")  # a sweep nested in a sweep: another dimension
        if isinstance(v, dict) and "values" in v
        else _plain(v, var, ctx, f"{field}[{i}]", interpolation, factor)
        for i, v in enumerate(values)
    ]
    auto = [float(p) for p in parts] if dim is None and all(p.ndim == 0 for p in parts) else None
    return _stack(parts, dim, ctx, field, auto)


def _stack(
    parts: list[xr.DataArray], dim: str | None, ctx: _Context, field: str, auto_labels: list | None = None
) -> xr.DataArray:
    """Sweep values along a dimension: named (labels from [dimensions], or 0..n-1) or automatic
    (named after the field, labelled by the values themselves)."""
    if not parts:
        raise ctx.fail(field, "a sweep needs at least one value")
    if dim is not None and not isinstance(dim, str):
        raise ctx.fail(f"{field}.dim", "a dimension name is text")
    name = dim or field.replace("fleets.", "").replace(".", "_").replace("[", "_").replace("]", "")
    _check_dim_name(name, ctx.source, f"{field}.dim")
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
    return xr.concat(
        parts, dim=xr.DataArray(labels, dims=name, name=name), coords="minimal", join="outer", fill_value=0.0
    ).assign_coords({name: xr.DataArray(labels, dims=name, attrs={"long_name": f"sweep of {field}"})})


def _check_dim_name(name: str, source: str, field: str) -> None:
    """A sweep dimension may not take a name the grid or the results already use."""
    if not isinstance(name, str) or not name or name in reserved_names():
        raise InputError(source, field, f"{name!r} cannot name a dimension: the grid or the results use it")


def _factor(units: str | None, var: Variable, ctx: _Context, field: str) -> float:
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


def _named_table(raw: Any, var: Variable, ctx: _Context, field: str) -> xr.DataArray:
    """A table keyed by material or metal name -> a DataArray along `var.extra_dim`."""
    if not isinstance(raw, dict) or not raw:
        raise ctx.fail(field, f"expected a table of {var.extra_dim} names, e.g. {{ steel = 0.5 }}")
    parts = [parse_parameter(v, var, ctx, f"{field}.{k}") for k, v in raw.items()]
    labels = xr.DataArray(list(raw), dims=var.extra_dim, name=var.extra_dim)
    return xr.concat(parts, dim=labels, coords="minimal")


def _composition(raw: Any, ctx: _Context, field: str) -> xr.DataArray:
    comp = _named_table(raw, table()["composition"], ctx, field)
    total = comp.sum("material")
    names = list(comp["material"].values)
    if OTHER in names:
        if abs(float(total.max()) - 1) > 1e-6 or abs(float(total.min()) - 1) > 1e-6:
            raise ctx.fail(field, f"shares including {OTHER!r} must sum to 1 (they sum to {float(total.max()):.6g})")
        return comp
    if float(total.max()) > 1 + 1e-9:
        raise ctx.fail(field, f"material shares sum to {float(total.max()):.6g}, more than 1")
    rest = (1.0 - total).clip(min=0.0).expand_dims(material=[OTHER])
    return xr.concat([comp, rest], dim="material", coords="minimal")


def _lifetime(raw: Any, ctx: _Context, field: str) -> tuple[str, dict[str, xr.DataArray]]:
    if not isinstance(raw, dict):
        raise ctx.fail(field, 'expected a table, e.g. { type = "weibull", shape = 2, scale = 4 }')
    _check_keys(raw, LIFETIME_KEYS, ctx.source, field)
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in LIFETIME_TYPES:
        raise ctx.fail(f"{field}.type", f"unknown lifetime type {kind!r}" + _suggest(str(kind), set(LIFETIME_TYPES)))
    given = set(raw) - {"type"}
    needed = set(LIFETIME_TYPES[kind])
    if kind == "weibull" and given == {"mean", "std"}:
        mean = parse_parameter(raw["mean"], table()["lifetime_mean"], ctx, f"{field}.mean")
        std = parse_parameter(raw["std"], table()["lifetime_std"], ctx, f"{field}.std")
        mean, std = xr.broadcast(mean, std)
        if float(mean.min()) <= 0 or float(std.min()) <= 0:
            raise ctx.fail(field, "Weibull mean and std must be above zero")
        for p, da in (("mean", mean), ("std", std)):
            if float(da.max()) > table()[f"lifetime_{p}"].max:
                raise ctx.fail(
                    f"{field}.{p}", f"value {float(da.max()):.6g} above the maximum {table()[f'lifetime_{p}'].max:g} yr"
                )
        shape, scale = weibull_from_mean_std(mean.values, std.values)
        limits = table()["lifetime_shape"]
        if shape.max() > limits.max * (1 - 1e-6):
            raise ctx.fail(f"{field}.std", "std/mean too small for a Weibull lifetime (below about 0.013)")
        if shape.min() < limits.min * (1 + 1e-6):
            raise ctx.fail(f"{field}.std", "std/mean too large for a Weibull lifetime")
        return kind, {"shape": mean.copy(data=shape), "scale": mean.copy(data=scale)}
    if given != needed:
        missing, extra = needed - given, given - needed
        what = f"missing {', '.join(sorted(missing))}" if missing else f"{', '.join(sorted(extra))} not used"
        raise ctx.fail(
            field,
            f"a {kind} lifetime takes {', '.join(sorted(needed))}"
            + (" (or mean and std)" if kind == "weibull" else "")
            + f": {what}",
        )
    if kind == "tabulated":
        return kind, {"weights": _weights(raw["weights"], ctx, f"{field}.weights")}
    return kind, {p: parse_parameter(raw[p], table()[f"lifetime_{p}"], ctx, f"{field}.{p}") for p in needed}


def _weights(raw: Any, ctx: _Context, field: str) -> xr.DataArray:
    """Tabulated retirement shares by lag; a list of lists (or {dim = ..., values = [...]}) sweeps."""
    if isinstance(raw, list) and raw and all(isinstance(v, int | float) for v in raw):
        w = np.array([_number(v, ctx, f"{field}[{i}]") for i, v in enumerate(raw)])
        return xr.DataArray(w, dims="lag", coords={"lag": np.arange(len(w))})
    spec = raw if isinstance(raw, dict) else {"values": raw}
    _check_keys(spec, {"values", "dim"}, ctx.source, field)
    values = spec.get("values")
    if not isinstance(values, list) or not values or not all(isinstance(v, list) for v in values):
        raise ctx.fail(field, "expected a list of retirement shares, one per lag step (or a list of such lists)")
    parts = [_weights(v, ctx, f"{field}[{i}]") for i, v in enumerate(values)]
    return _stack(parts, spec.get("dim"), ctx, field)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _fleet(name: str, raw: Any, ctx: _Context) -> tuple[dict[str, xr.DataArray], dict[str, str]]:
    field = f"fleets.{name}"
    if not isinstance(raw, dict):
        raise ctx.fail(field, "expected a table")
    _check_keys(raw, FLEET_KEYS, ctx.source, field)
    raw = _with_archetype(raw, ctx, field)
    driver = raw.get("driver")
    if driver is None:
        raise ctx.fail(f"{field}.driver", f"required: one of {', '.join(DRIVER_VAR)}")
    if not isinstance(driver, str) or driver not in DRIVER_VAR:
        raise ctx.fail(f"{field}.driver", f"unknown driver {driver!r}" + _suggest(str(driver), set(DRIVER_VAR)))
    required = {"inflow": ["inflow"], "stock": ["stock"], "capacity": ["demand", "capacity_per_unit"]}[driver]
    for key in [*required, "lifetime", "mass"]:
        if key not in raw:
            raise ctx.fail(f"{field}.{key}", f"required for {_article(driver)} {driver}-driven fleet")
    for key in {"inflow", "stock", "demand", "capacity_per_unit"} - set(required):
        if key in raw:
            raise ctx.fail(f"{field}.{key}", f"not used by {_article(driver)} {driver}-driven fleet")
    out: dict[str, xr.DataArray] = {}
    for key in [*required, "inflow_history", "mass", "power", "utilisation"]:
        if key in raw:
            out[key] = parse_parameter(raw[key], table()[key], ctx, f"{field}.{key}")
    kind, params = _lifetime(raw["lifetime"], ctx, f"{field}.lifetime")
    out.update({f"lifetime_{p}": v for p, v in params.items()})
    if isinstance(raw.get("composition"), str):
        raw = {**raw, "composition": _catalogue_composition(raw["composition"], ctx, f"{field}.composition")}
    if "composition" in raw:
        out["composition"] = _composition(raw["composition"], ctx, f"{field}.composition")
    if "pcb_metal_content" in raw:
        if "composition" not in raw or "circuit_boards" not in raw["composition"]:
            raise ctx.fail(f"{field}.pcb_metal_content", "needs a 'circuit_boards' share in the composition")
        out["pcb_metal_content"] = _named_table(
            raw["pcb_metal_content"], table()["pcb_metal_content"], ctx, f"{field}.pcb_metal_content"
        )
    strings = {
        "driver": xr.DataArray(driver),
        "lifetime_type": xr.DataArray(kind),
        "description": xr.DataArray(str(raw.get("description", ""))),
        "capacity_unit": xr.DataArray(str(raw.get("capacity_unit", "unit" if driver != "capacity" else "capacity"))),
        "replacement": _choice(raw.get("replacement", "balanced"), REPLACEMENT_RULES, ctx, f"{field}.replacement"),
    }
    return out, strings


def _with_archetype(raw: dict, ctx: _Context, field: str) -> dict:
    """The fleet's table with the archetype's mass, power and composition where it gives none."""
    name = raw.get("archetype")
    if name is None:
        return raw
    catalogue = archetypes()
    if not isinstance(name, str) or name not in catalogue["archetype"]:
        raise ctx.fail(
            f"{field}.archetype", f"unknown archetype {name!r}" + _suggest(str(name), set(catalogue["archetype"]))
        )
    arch = catalogue["archetype"][name]
    filled = dict(raw)
    taken = {
        "mass": arch["mass"],
        "power": arch["power"],
        "composition": catalogue["composition_data_centre"],
        "pcb_metal_content": catalogue["pcb_metals_data_centre"],
    }
    for key, entry in taken.items():
        if key in raw or (key == "pcb_metal_content" and isinstance(raw.get("composition"), dict)):
            continue
        filled[key] = entry["value"]
        ctx.sources[f"{field}.{key}"] = f"archetype {name}: {entry['source']} [{entry['status']}]"
    return filled


def _catalogue_composition(name: str, ctx: _Context, field: str) -> dict:
    """A composition named from the catalogue (archetypes.toml): "data_centre" or "genai_server"."""
    names = {k.removeprefix("composition_") for k in archetypes() if k.startswith("composition_")}
    if name not in names:
        raise ctx.fail(field, f"unknown composition {name!r}" + _suggest(name, names))
    entry = archetypes()[f"composition_{name}"]
    ctx.sources.setdefault(field, f"{entry['source']} [{entry['status']}]")
    return entry["value"]


def _choice(raw: Any, allowed: tuple[str, ...], ctx: _Context, field: str) -> xr.DataArray:
    """A string option, or a sweep over options (a list, or { dim = ..., values = [...] })."""
    dim, values = None, raw
    if isinstance(raw, dict):
        _check_keys(raw, {"dim", "values"}, ctx.source, field)
        dim, values = raw.get("dim"), raw.get("values")
    for i, value in enumerate(values if isinstance(values, list) else [values]):
        if not isinstance(value, str) or value not in allowed:
            where = f"{field}[{i}]" if isinstance(values, list) else field
            raise ctx.fail(where, f"unknown value {value!r}" + _suggest(str(value), set(allowed)))
    if not isinstance(values, list):
        return xr.DataArray(values)
    parts = [xr.DataArray(v) for v in values]
    return _stack(parts, dim, ctx, field, list(values) if dim is None else None)


def _meta(raw: dict, source: str) -> dict:
    meta = {
        "name": Path(source).stem,
        "description": "",
        "sources": [],
        "start_year": 2020,
        "end_year": 2030,
        "step": "year",
        "target_year": None,
        "age_convention": "middle",
        "negative_inflow": "correct",
    }
    section = raw.get("scenario", {})
    if not isinstance(section, dict):
        raise InputError(source, "scenario", "expected a table")
    _check_keys(section, SECTIONS["scenario"], source, "scenario")
    meta.update(section)
    for key in ("start_year", "end_year"):
        if isinstance(meta[key], bool) or not isinstance(meta[key], int) or not 1900 <= meta[key] <= 2300:
            raise InputError(source, f"scenario.{key}", f"expected a year between 1900 and 2300, got {meta[key]!r}")
    if meta["end_year"] < meta["start_year"]:
        raise InputError(source, "scenario.end_year", "ends before the start year")
    if meta["target_year"] is None:
        meta["target_year"] = min(max(2030, meta["start_year"]), meta["end_year"])
    if not isinstance(meta["target_year"], int) or not meta["start_year"] <= meta["target_year"] <= meta["end_year"]:
        raise InputError(source, "scenario.target_year", "must be a year between start_year and end_year")
    choices = {"step": STEPS_PER_YEAR, "age_convention": AGE_CONVENTIONS, "negative_inflow": NEGATIVE_INFLOW_POLICIES}
    for key, allowed in choices.items():
        if not isinstance(meta[key], str) or meta[key] not in allowed:
            raise InputError(
                source, f"scenario.{key}", f"unknown value {meta[key]!r}" + _suggest(str(meta[key]), set(allowed))
            )
    return meta


def _global(raw: dict, ctx: _Context, materials: list[str], metals: list[str]) -> dict[str, xr.DataArray]:
    out = {}
    for section in ("recycling", "energy"):
        body = raw.get(section, {})
        if not isinstance(body, dict):
            raise ctx.fail(section, "expected a table")
        _check_keys(body, SECTIONS[section], ctx.source, section)
        for key, val in body.items():
            field = f"{section}.{key}"
            if key.endswith("_yield"):
                if not isinstance(val, dict):
                    raise ctx.fail(field, "expected a table of material or metal names, e.g. { steel = 0.9 }")
                unknown = set(val) - set(materials) - set(metals)
                for name in unknown:
                    raise ctx.fail(
                        f"{field}.{name}",
                        "not a material or metal of any fleet" + _suggest(name, set(materials) | set(metals)),
                    )
                mat = {k: v for k, v in val.items() if k in materials}
                met = {k: v for k, v in val.items() if k in metals}
                if mat:
                    out[key] = _named_table(mat, table()[key], ctx, field)
                if met:
                    out[f"metal_{key}"] = _named_table(met, table()[f"metal_{key}"], ctx, field)
            else:
                out[key] = parse_parameter(val, table()[key], ctx, field)
    return out


def _sources(raw: dict, source: str) -> dict[str, str]:
    """The optional [sources] table: parameter path (as written in the file) -> where it comes from."""
    table_ = raw.get("sources", {})
    if not isinstance(table_, dict):
        raise InputError(source, "sources", 'expected a table of parameter = "source" entries')
    for path, text in table_.items():
        node: Any = raw
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            raise InputError(source, f"sources.{path}", "names no parameter of this file")
        if not isinstance(text, str):
            raise InputError(source, f"sources.{path}", "expected a string")
    return dict(table_)


def read_toml(path: str | Path) -> dict:
    """Read a TOML file; syntax errors and unreadable files become InputError."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(str(path), None, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), None, f"cannot read file ({exc.__class__.__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(str(path), None, f"TOML syntax error: {exc}") from None


def scenario_to_grid(raw: dict, source: str, text_hash: str = "") -> xr.Dataset:
    """Build the scenario grid from a parsed scenario file."""
    for key in raw:
        if key not in SECTIONS:
            raise InputError(source, key, "unknown section" + _suggest(key, set(SECTIONS)))
    meta = _meta(raw, source)
    dims = raw.get("dimensions", {})
    if not isinstance(dims, dict) or not all(isinstance(v, list) and v for v in dims.values()):
        raise InputError(source, "dimensions", "expected name = [labels, ...] entries")
    for name, labels in dims.items():
        _check_dim_name(name, source, f"dimensions.{name}")
        if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in labels):
            raise InputError(source, f"dimensions.{name}", "labels are plain text or numbers")
        if len(set(labels)) != len(labels):
            raise InputError(source, f"dimensions.{name}", "labels repeat")
    ctx = _Context(source, meta, dims)
    fleets_raw = raw.get("fleets")
    if not isinstance(fleets_raw, dict) or not fleets_raw:
        raise InputError(source, "fleets", "a scenario needs at least one [fleets.NAME] table")
    for name in fleets_raw:
        if not name.replace("_", "").replace("-", "").isalnum():
            raise InputError(source, f"fleets.{name}", "a fleet name is letters, digits, '_' and '-'")
    fleets = {name: _fleet(name, body, ctx) for name, body in fleets_raw.items()}
    materials = sorted(
        {m for v, _ in fleets.values() if "composition" in v for m in v["composition"]["material"].values}
    )
    metals = sorted(
        {m for v, _ in fleets.values() if "pcb_metal_content" in v for m in v["pcb_metal_content"]["metal"].values}
    )
    grid = _assemble(fleets, _global(raw, ctx, materials, metals), ctx)
    ctx.sources.update(_sources(raw, source))
    for name in dims:
        if name not in grid.dims:
            raise InputError(source, f"dimensions.{name}", "declared, but no parameter varies along it")
    grid.attrs.update(
        {
            "title": str(meta["name"]),
            "description": str(meta["description"]),
            "sources": json.dumps(meta["sources"]),
            "start_year": meta["start_year"],
            "end_year": meta["end_year"],
            "step": meta["step"],
            "target_year": meta["target_year"],
            "age_convention": meta["age_convention"],
            "negative_inflow": meta["negative_inflow"],
            "scenario_file": Path(source).name,
            "scenario_sha256": text_hash,
            "history": f"built by ewaste {__version__} from {Path(source).name}",
            "ewaste_grid_version": 1,
            "parameter_sources": json.dumps(ctx.sources),
        }
    )
    return grid


def _assemble(fleets: dict, globals_: dict[str, xr.DataArray], ctx: _Context) -> xr.Dataset:
    names = list(fleets)
    fleet_vars = sorted({k for v, _ in fleets.values() for k in v})
    data: dict[str, xr.DataArray] = {}
    for var in fleet_vars:
        parts = [fleets[f][0].get(var, xr.DataArray(np.nan)) for f in names]
        fill = 0.0 if var in ("composition", "pcb_metal_content", "lifetime_weights") else np.nan
        data[var] = xr.concat(
            parts, dim=xr.DataArray(names, dims="fleet"), coords="minimal", join="outer", fill_value=fill
        )
    for var in fleets[names[0]][1]:
        data[var] = xr.concat(
            [fleets[f][1][var] for f in names], dim=xr.DataArray(names, dims="fleet"), coords="minimal"
        )
    data.update(globals_)
    grid = xr.Dataset(data).assign_coords(fleet=names, **{k: v for k, v in ctx.coords.items()})
    if ctx.history_years:
        grid = grid.assign_coords(history_coords(ctx.history_years, ctx.meta["start_year"], ctx.meta["step"]))
        if "inflow_history" in grid:
            grid["inflow_history"] = grid["inflow_history"].fillna(0.0)
    for dim, labels in ctx.dimensions.items():
        if dim in grid.dims:
            grid = grid.assign_coords({dim: xr.DataArray(labels, dims=dim, attrs={"long_name": f"[dimensions] {dim}"})})
    for var in grid.data_vars:
        if var in table():
            grid[var].attrs.update(cf_attrs(var))
    return grid


def load_scenario(path: str | Path) -> xr.Dataset:
    """Read a scenario file (TOML) into a validated scenario grid."""
    path = Path(path)
    raw = read_toml(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        grid = scenario_to_grid(raw, str(path), digest)
    except (TypeError, ValueError) as exc:  # a value of a shape no check above foresaw
        raise InputError(str(path), None, f"malformed scenario: {exc}") from None
    return validate(grid, str(path))
