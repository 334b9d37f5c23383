"""Scenario grid -> results: each fleet through the engine, then impacts, checks and provenance."""

from __future__ import annotations

import xarray as xr

from ..engine.backend import get_backend
from ..inputs.validate import validate
from .aggregate import SUMMARY_SUFFIXES, aggregate, fast_summary, label_capacity, summable
from .defaults import fill_defaults
from .fleet import run_fleet_rules
from .impacts import check_destinations, impacts
from .provenance import drawn_inputs, provenance


def evaluate(
    grid: xr.Dataset, backend: str | None = None, summary: bool = False, precision: str | None = None
) -> xr.Dataset:
    """Evaluate a validated scenario grid; returns results with units and provenance.

    With `summary=True` only the target-year and cumulative-to-target values are kept (and the
    negative-inflow count): a few numbers per grid point, for sweeps whose trajectories would not fit.
    precision: "float64" (default, or $EWASTE_PRECISION) or "float32" arithmetic in the compiled
    engines (results stay float64 arrays; see docs/model.md for the error).
    """
    be = get_backend(backend, precision)
    grid = validate(grid, str(grid.attrs.get("grid_file") or grid.attrs.get("scenario_file") or "grid"))
    grid, defaults = fill_defaults(grid)
    reduce = summary and summable(grid)
    fleets = [
        run_fleet_rules(grid.isel(fleet=i, drop=True), str(f), be, reduce) for i, f in enumerate(grid["fleet"].values)
    ]
    flows = xr.concat(fleets, dim=xr.DataArray(grid["fleet"].values, dims="fleet"), coords="minimal")
    if reduce:
        fast = fast_summary(flows, grid)
        fast = label_capacity(fast, grid)
        check_destinations(fast, "_cumulative_target")
        fast.update(drawn_inputs(grid))
        fast.attrs = {**provenance(grid, defaults, be), "mode": "summary"}
        return fast
    res = impacts(flows, grid)
    check_destinations(res)
    res = res.assign_coords({k: grid[k] for k in ("year", "period") if k in grid.coords})
    res = label_capacity(res, grid)
    res = aggregate(res, int(grid.attrs["target_year"]))
    res.attrs = provenance(grid, defaults, be)
    res.update(drawn_inputs(grid))
    if summary:
        keep = [
            v
            for v in res.data_vars
            if str(v).endswith(SUMMARY_SUFFIXES) or v == "negative_inflow_steps" or str(v).startswith("drawn_")
        ]
        res = res[keep]
        res = res.drop_vars([c for c in res.coords if {"time", "year"} & set(res[c].dims)])
        res.attrs["mode"] = "summary"
    return res

