"""Scenario grid -> results: each fleet through the engine, then impacts, checks and provenance."""

from __future__ import annotations

from collections.abc import Sequence

import xarray as xr

from ..engine.arrays import Backend
from ..engine.backend import get_backend
from ..errors import InputError
from ..inputs.links import grid_links
from ..inputs.validate import validate
from .aggregate import SUMMARY_SUFFIXES, aggregate, fast_summary, label_capacity, summable
from .defaults import fill_defaults
from .finance import money, money_names, ratios
from .impacts import check_destinations, impacts
from .links import passed_on, reuse, run_linked
from .outputs import CAPITAL, flows_needed, resolve
from .provenance import drawn_inputs, provenance


def evaluate(
    grid: xr.Dataset,
    backend: str | None = None,
    summary: bool = False,
    precision: str | None = None,
    outputs: Sequence[str] | None = None,
    validated: bool = False,
) -> xr.Dataset:
    """Evaluate a validated scenario grid; returns results with units and provenance.

    With `summary=True` only the target-year and cumulative-to-target values are kept (and the
    negative-inflow count): a few numbers per grid point, for sweeps whose trajectories would not fit.
    precision: "float64" (default, or $EWASTE_PRECISION) or "float32" arithmetic in the compiled
    engines (results stay float64 arrays; see docs/model.md for the error).
    outputs: the result variables to compute (e.g. ["ewaste_generated", "energy"], each with its
    aggregates; docs/outputs.md lists them); default all. Only what they need is computed.
    validated: the grid is a piece of a grid already validated (as `ewaste.scale` passes its chunks).

    Raises InputError (a grid that does not validate, an unknown output, a backend or precision that
    cannot run here, a lifetime a stock-driven fleet cannot be solved with) and BalanceError.
    """
    be = get_backend(backend, precision)
    results = resolve(outputs)
    if not validated:
        source = str(grid.attrs.get("grid_file") or grid.attrs.get("scenario_file") or "grid")
        grid = validate(grid, source, first_step=False)  # the engines refuse an unsolvable fleet alike
    grid, defaults = fill_defaults(grid)
    given = set(money_names(grid))
    capital = [name for name in results if name in CAPITAL]
    if outputs is not None and set(capital) - given:
        missing = ", ".join(sorted(set(capital) - given))
        raise InputError(None, "--outputs", f"{missing}: the scenario gives no [finance] (or embodied, lease price)")
    # all results of a grid without money or embodied emissions: none of them, and summaries stay
    # reduced over time in the engine (money needs the cohorts' trajectories)
    results = tuple(name for name in results if name not in CAPITAL or name in given)
    capital = [name for name in capital if name in given]
    sources, kinds, shares = grid_links(grid)
    linked = any(sources.values())
    # a linked fleet needs its source's retirements step by step, a lease the units in service; money
    # and embodied emissions come from the cohort accounts beside the flows (`_capital_summary`)
    reduce = summary and summable(grid) and "lease_cost" not in capital and not linked
    names = [str(f) for f in grid["fleet"].values]
    grids, done = run_linked(grid, be, reduce, flows_needed(results))
    fleets = [done[n] for n in names]
    fleet = xr.DataArray(names, dims="fleet")
    if len(fleets) == 1:  # no copy
        flows = fleets[0].expand_dims(fleet=fleet).transpose("fleet", ...)
    else:
        flows = xr.concat(fleets, dim=fleet, coords="minimal")
    if reduce:
        fast = fast_summary(flows, grid, [name for name in results if name not in CAPITAL])
        if capital:
            fast.update(_capital_summary(grid, [grids[n] for n in names], capital, be))
            fast.update(ratios(fast))
        fast = label_capacity(fast, grid)
        check_destinations(fast, "_cumulative_target", be.precision)
        fast.update(drawn_inputs(grid))
        fast.attrs = {**provenance(grid, defaults, be), "mode": "summary"}
        return fast
    if linked:
        flows = reuse(flows, passed_on(sources, kinds, shares))
    res = impacts(flows, grid, results, consume=True)  # the flows are read no more but for leases' units
    check_destinations(res, precision=be.precision)
    if capital:
        units = flows["in_service_units"] if "in_service_units" in flows else None
        res.update(money(grid, units, [grids[n] for n in names], be)[capital])
    res = label_capacity(_calendar(res, grid), grid)
    res = aggregate(res, int(grid.attrs["target_year"]))
    res.update(ratios(res))
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


def _capital_summary(grid: xr.Dataset, fleets: list[xr.Dataset], capital: list[str], be: Backend) -> xr.Dataset:
    """Summary values (target year, cumulative to it) of the money and embodied results `capital`,
    from their per-step values (the cohort accounts, in blocks of grid points: `finance._split`)."""
    summed = aggregate(_calendar(money(grid, None, fleets, be)[capital], grid), int(grid.attrs["target_year"]))
    kept = summed[[v for v in summed.data_vars if str(v).endswith(SUMMARY_SUFFIXES)]]
    return kept.drop_vars([c for c in kept.coords if {"time", "year"} & set(kept[c].dims)])


def _calendar(res: xr.Dataset, grid: xr.Dataset) -> xr.Dataset:
    """Per-step results with the grid's calendar year and period of each step (what aggregates read)."""
    return res.assign_coords({k: grid[k] for k in ("year", "period") if k in grid.coords})
