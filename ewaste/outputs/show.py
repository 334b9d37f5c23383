"""`ewaste scenarios show`: a scenario's parameters, each with its value range and source."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from ..inputs.distributions import parse_distribution
from ..inputs.validate import STRING_VARS, scenario_sizes, uses
from ..inputs.variables import table
from ..model.defaults import fill_defaults

SECTIONS = {"collection_rate": "recycling", "pue": "energy", "grid_intensity": "energy"}
MAX_LABELS = 12  # labels of a sweep dimension listed before "..."


def _draws(design: dict, n: int) -> list[str]:
    """The `draw` dimension: the design, then each distribution as written with its p5 / p50 / p95."""
    how = f"{design['sampler']}, seed {design['seed']}" if "sampler" in design else "given by the caller"
    lines = [f"  dimension draw: {n:,} draws ({how})"]
    for path, spec in design.get("parameters", {}).items():
        dist = parse_distribution(spec, "", path)
        args = ", ".join(f"{k} {v}" for k, v in spec.items() if k not in ("dist", "units"))
        q = " / ".join(f"{dist.quantile(p):.4g}" for p in (0.05, 0.5, 0.95))
        unit = f" {spec['units']}" if "units" in spec else ""
        lines.append(f"    {path}: {spec['dist']}({args}){unit}; p5 / p50 / p95 {q}{unit}")
    for a, b, r in design.get("correlations", []):
        lines.append(f"    rank correlation {r:g} between {a} and {b}")
    return lines


def _values(da: xr.DataArray) -> str:
    """A short account of a parameter's values: one number, a time path, or a range over dimensions."""
    vals = np.asarray(da.values, dtype=float)
    units = "" if da.attrs.get("units") == "1" else da.attrs.get("units", "")
    if vals.size == 1:
        return f"{vals.item():.6g} {units}".strip()
    dims = [d for d in da.dims if d != "time"]
    if "time" in da.dims and not dims:
        return f"{vals[0]:.4g} -> {vals[-1]:.4g} {units} ({da['time'].size} steps)".strip()
    over = ", ".join(f"{d}[{da.sizes[d]}]" for d in da.dims)
    return f"{np.nanmin(vals):.4g} .. {np.nanmax(vals):.4g} {units} over {over}".strip()


def _path(name: str, fleet: str | None) -> str:
    if fleet is not None:
        if name.startswith("lifetime_"):
            return f"fleets.{fleet}.lifetime.{name.removeprefix('lifetime_')}"
        return f"fleets.{fleet}.{name}"
    return f"{SECTIONS.get(name, 'recycling')}.{name.removeprefix('metal_')}"


def describe_scenario(grid: xr.Dataset) -> str:
    """Every parameter of a grid with its values and where they come from."""
    sources = json.loads(grid.attrs.get("parameter_sources", "{}"))
    _, defaults = fill_defaults(grid)
    a = grid.attrs
    lines = [
        f"{a.get('title', '?')}: {a.get('description', '')}",
        f"  steps: {a['step']} {a['start_year']}-{a['end_year']}, target year {a['target_year']}, "
        f"age convention {a['age_convention']}, negative inflow '{a['negative_inflow']}'",
    ]
    for src in json.loads(a.get("sources", "[]")):
        lines.append(f"  source: {src}")
    for d in scenario_sizes(grid):
        if d == "draw":
            lines += _draws(json.loads(a.get("uncertainty", "{}")), grid.sizes[d])
            continue
        labels = list(map(str, grid[d].values))
        shown = ", ".join(labels[:MAX_LABELS]) + (f", ... ({len(labels)} labels)" if len(labels) > MAX_LABELS else "")
        lines.append(f"  dimension {d}: {shown}")
    for i, fleet in enumerate(map(str, grid["fleet"].values)):
        g = grid.isel(fleet=i)
        strings = {v: " / ".join(map(str, np.unique(g[v].values))) for v in STRING_VARS if v in g}
        lines.append(f"fleet {fleet}: {strings.get('description', '')}".rstrip())
        lines.append(
            f"  driver {strings['driver']}, lifetime {strings['lifetime_type']}, "
            f"replacement {strings.get('replacement', 'balanced')}"
        )
        for name in g.data_vars:
            if name in STRING_VARS or table()[name].scope != "fleet" or not _given(g, str(name), fleet, defaults):
                continue
            path = _path(name, fleet)
            src = _source_for(path, name, sources)
            lines.append(f"  {name:<20} {_values(g[name])}" + (f"\n  {'':<20} source: {src}" if src else ""))
    lines.append("global")
    for name in grid.data_vars:
        if name in STRING_VARS or table()[name].scope == "fleet":
            continue
        given = _given_labels(grid[name], str(name), defaults)
        if given is None:
            continue
        src = _source_for(_path(name, None), name, sources)
        lines.append(f"  {name:<20} {_values(given)}" + (f"\n  {'':<20} source: {src}" if src else ""))
    for name, entry in defaults.items():
        where = entry["where"]
        if isinstance(where, dict):
            for label, d in where.items():
                lines.append(f"  default {name}[{label}] = {d['value']:g}: {d['source']} [{d.get('status', '-')}]")
        else:
            where_text = "" if where == "all" else f" (fleets {', '.join(where)})"
            lines.append(
                f"  default {name} = {entry['value']}{where_text}: {entry['source']} [{entry.get('status') or '-'}]"
            )
    return "\n".join(lines)


def _source_for(path: str, name: str, sources: dict[str, str]) -> str:
    """The source the file gives for a parameter (or for its enclosing table)."""
    for key, text in sources.items():
        if path == key or path.startswith(key + "."):
            return text
    return ""


def _given(g: xr.Dataset, name: str, fleet: str, defaults: dict) -> bool:
    """Whether fleet `fleet` (the grid `g`, one fleet) reads `name` and gives it (no default)."""
    if not uses(str(g["driver"].values), str(g["lifetime_type"].values), name):
        return False
    where = defaults.get(name, {}).get("where", [])
    return not (where == "all" or (isinstance(where, list) and fleet in where))


def _given_labels(da: xr.DataArray, name: str, defaults: dict) -> xr.DataArray | None:
    """A global parameter without the entries that took a default (None if nothing is left)."""
    where = defaults.get(name, {}).get("where")
    if where == "all":
        return None
    extra = table()[name].extra_dim
    if isinstance(where, dict) and extra in da.dims:
        keep = [label for label in map(str, da[extra].values) if label not in where]
        return da.sel({extra: keep}) if keep else None
    return da
