"""Provenance and inputs as tables: the results' attributes (JSON-valued ones decoded), the defaults a
run used, and the grid's parameters each with its TOML path, values, units and source."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..inputs.names import toml_path
from ..inputs.validate import STRING_VARS, uses
from ..inputs.variables import table

LABEL_DIMS = ("material", "metal")  # a parameter's entries by material or metal: one row each


def attributes(ds: xr.Dataset) -> dict[str, Any]:
    """The dataset's attributes for a JSON file: numbers as numbers, JSON-valued text (sources,
    parameter_sources, defaults_used, driver, ...) decoded, other text as it is."""
    out: dict[str, Any] = {}
    for key, value in ds.attrs.items():
        if isinstance(value, np.generic):
            value = value.item()
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, str) and value[:1] in "[{":
            try:
                value = json.loads(value)
            except ValueError:
                pass
        out[str(key)] = value
    return out


def provenance_table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per attribute: `attribute`, `value` (as stored: JSON-valued ones as JSON text)."""
    rows = [(str(k), v.item() if isinstance(v, np.generic) else str(v)) for k, v in ds.attrs.items()]
    return pd.DataFrame(rows, columns=["attribute", "value"])


def defaults_table(ds: xr.Dataset) -> pd.DataFrame:
    """The defaults the run used (attribute `defaults_used`): one row per parameter and fleet or
    material/metal entry, with `parameter`, `where` (fleet names, an entry, or `all`), `value`,
    `units`, `source`, `status`."""
    rows = []
    for name, entry in json.loads(ds.attrs.get("defaults_used", "{}")).items():
        where = entry.get("where", "all")
        if isinstance(where, dict):
            for label, d in where.items():
                rows.append((name, label, d.get("value"), entry.get("units", ""), d.get("source"), d.get("status")))
        else:
            fleets = "all" if where == "all" else ", ".join(map(str, where))
            rows.append(
                (name, fleets, entry.get("value"), entry.get("units", ""), entry.get("source"), entry.get("status"))
            )
    return pd.DataFrame(rows, columns=["parameter", "where", "value", "units", "source", "status"])


def inputs_table(grid: xr.Dataset | None, attrs: dict[str, Any]) -> pd.DataFrame:
    """The inputs with their sources. From a grid: one row per parameter, fleet and material/metal
    entry that the fleet reads, with `parameter` (its TOML path), `value` (where it is one number or
    text), `min` and `max` with `varies over` (the dimensions along which it changes: time, sweeps,
    draws) otherwise, `units`, `source` (the scenario file's, or the default's with its status in
    brackets) and `default` (`yes` where ewaste filled in the value). Without a grid (results read back):
    the scenario file's `parameter_sources` only.
    """
    sources = json.loads(attrs.get("parameter_sources", "{}") or "{}")
    defaults = json.loads(attrs.get("defaults_used", "{}") or "{}")
    if grid is None:
        return pd.DataFrame(list(sources.items()), columns=["parameter", "source"])
    rows = []
    fleets = [str(f) for f in grid["fleet"].values] if "fleet" in grid.dims else []
    for name in map(str, grid.data_vars):
        da = grid[name]
        for fleet in fleets if "fleet" in da.dims else [None]:
            one = da if fleet is None else da.sel(fleet=fleet)
            if fleet is not None and name not in STRING_VARS and not _reads(grid, fleet, name):
                continue
            rows += [_row(name, fleet, label, part, sources, defaults) for label, part in _entries(one)]
    columns = ["parameter", "fleet", "value", "min", "max", "varies over", "units", "source", "default"]
    return pd.DataFrame(rows, columns=columns)


def _reads(grid: xr.Dataset, fleet: str, name: str) -> bool:
    """Whether the fleet reads parameter `name` (a stock-driven fleet reads no inflow)."""
    if "driver" not in grid or "lifetime_type" not in grid:
        return True
    one = grid.sel(fleet=fleet)
    return uses(str(one["driver"].values), str(one["lifetime_type"].values), name)


def _entries(da: xr.DataArray) -> list[tuple[str | None, xr.DataArray]]:
    """The parameter's entries by material or metal (label, values), or the whole (None, values)."""
    dim = next((d for d in LABEL_DIMS if d in da.dims), None)
    if dim is None:
        return [(None, da)]
    return [(str(label), da.sel({dim: label})) for label in da[dim].values]


def _row(
    name: str, fleet: str | None, label: str | None, da: xr.DataArray, sources: dict, defaults: dict
) -> tuple[Any, ...]:
    path = toml_path(name, fleet, label) if name in table() else _plain_path(name, fleet)
    default = _default(defaults.get(name), fleet, label)
    source = f"{default.get('source', '')} [{default.get('status') or '-'}]" if default else _source(path, sources)
    status = "yes" if default else ""
    units = da.attrs.get("units", "")
    if da.dtype.kind in "USO":
        values = sorted({str(v) for v in np.ravel(da.values)})
        return (path, fleet, " / ".join(values), None, None, "", units, source, status)
    values = np.asarray(da.values, dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (path, fleet, None, None, None, "", units, source, status)
    low, high = float(finite.min()), float(finite.max())
    if low == high:
        return (path, fleet, low, None, None, "", units, source, status)
    varies = ", ".join(str(d) for d in da.dims if da.sizes[d] > 1)
    return (path, fleet, None, low, high, varies, units, source, status)


def _plain_path(name: str, fleet: str | None) -> str:
    return f"fleets.{fleet}.{name}" if fleet is not None else name


def _default(entry: dict | None, fleet: str | None, label: str | None) -> dict | None:
    """The default a parameter's entry took, if it took one."""
    if not entry:
        return None
    where = entry.get("where", "all")
    if isinstance(where, dict):
        return where.get(label) if label is not None else None
    if where == "all" or (fleet is not None and fleet in where):
        return entry
    return None


def _source(path: str, sources: dict[str, str]) -> str:
    """The source the scenario file gives for a parameter, or for the table that holds it."""
    for key, text in sources.items():
        if path == key or path.startswith(key + "."):
            return text
    return ""
