"""Units in service by cohort age: each fleet's stock at the end of every step split by how many steps
ago its units entered service (the report's age chart), from the grid through the NumPy engine.

The cohort accounts are those of docs/model.md: s_c[m, c] = x[c] · sf[m, c], where x[c] is the inflow of
step c, scaled by every early-retirement share the negative-inflow correction applied after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import xarray as xr

from ..engine import host
from ..engine.arrays import NUMPY, Backend
from ..engine.lifetime import AGE_CONVENTIONS, LIFETIME_TYPES
from ..engine.stockflow import CohortFlows, SurvivalRows, solve, wang2024_inflow
from ..inputs.timeaxis import STEPS_PER_YEAR
from ..inputs.validate import DRIVER_VAR
from .defaults import fill_defaults
from .depreciation import mean_life

# the grid's variables as the engine takes them: the same helpers as the model's own run of a fleet
from .fleet import _driver, _lifetime_table, _survival_rows, _template, _to_engine
from .links import linked_grids

KEEP_TOLERANCE = 1e-9  # a survivors' share this far from 1 is the negative-inflow correction, not rounding


def stock_by_age(grid: xr.Dataset) -> xr.DataArray:
    """Units in service at the end of each step, by cohort age, for every fleet and grid point.

    grid: a validated scenario grid (`ewaste.load_grid`), as `ewaste.evaluate` takes it.
    Returns a DataArray (fleet, time, age, *sweep dimensions) in units (attribute `units` "unit"):
    age is the time since the cohort's step of entry in years, (m − c) · Δ for step m and cohort c (0:
    entered in that step), whatever the age convention; history cohorts count from their own steps.
    Summed over `age` it is the results' `stock_units`; capacity-driven fleets are counted in units
    (capacity in service over each cohort's capacity per unit).

    Raises InputError where the model would (a lifetime a stock-driven fleet cannot be solved with).
    """
    grid, _ = fill_defaults(grid)
    names = [str(f) for f in grid["fleet"].values]
    grids = linked_grids(grid)  # a linked fleet's inflow from its source's retirements
    parts = [_fleet_rules(grids[name]) for name in names]
    fleet = xr.DataArray(names, dims="fleet")
    out = (
        xr.concat(parts, dim=fleet, coords="minimal", join="outer")
        if len(parts) > 1
        else parts[0].expand_dims(fleet=fleet)
    )
    out = out.transpose("fleet", "time", "age", ...)
    out = out.assign_coords({k: grid[k] for k in ("year", "period") if k in grid.coords})
    out["age"].attrs.update(units="yr", long_name="years since the cohort's step of entry")
    return out.assign_attrs(units="unit", long_name="units in service at the end of the step, by cohort age")


def _fleet_rules(g: xr.Dataset) -> xr.DataArray:
    """One fleet, once per replacement rule where the rule is swept (as the model runs it)."""
    rule_dims = list(g["replacement"].dims)
    if not rule_dims:
        return _fleet(g)
    dim = rule_dims[0]
    parts = [_fleet_rules(g.isel({dim: j})) for j in range(g.sizes[dim])]
    return xr.concat(parts, dim=g[dim], coords="minimal", join="outer")


@dataclass
class Accounts:
    """One fleet's cohorts on the engine's steps (history first): `units_in` (N, S) units put in
    service, the template of the modelled steps (time, sweep dims), the number of history steps, the
    survival rows and the flows the engine ran with, and the capacity per unit by cohort ((N, S) or
    a number). `held` (N, N, S), computed on first use: units of the cohort k steps old at the end of
    step m (by lag); `held_sum` gives sums over it without holding it."""

    units_in: np.ndarray
    template: xr.DataArray
    n_hist: int
    rows: SurvivalRows
    flows: CohortFlows
    capacity: np.ndarray | float

    @cached_property
    def held(self) -> np.ndarray:
        return cohort_stock(self.flows, self.rows, self.capacity)

    def held_sum(
        self, value: np.ndarray, share: Callable[[np.ndarray, np.ndarray], np.ndarray], flat: bool
    ) -> np.ndarray:
        """(N, S) sum_k held[m, k] value[m - k] share(k, m - k) for each step m, in O(N S) memory.

        value: (N, S) per unit of each cohort; share(lags, cohorts): (L, S) for integer arrays of
        lags (length L) and cohorts (length L, or 1 for all lags); flat: whether `share` is the same
        for every cohort. Where it is
        and survival does not change by cohort either, a convolution over the lags (N products of at
        most N x S), except in the scenarios where the negative-inflow correction retired cohorts
        early: those, and all where survival or `share` change by cohort, step by step as
        `cohort_stock`. Chosen scenario by scenario, so a scenario's sums never depend on the others.
        """
        n, s = self.units_in.shape
        stepwise = np.ones(s, dtype=bool)
        out = np.zeros((n, s))
        if flat and self.rows.invariant:
            first = np.zeros(1, dtype=int)
            out = _convolve(self.units_in * value, lambda k: self.rows.at_lag(k) * share(np.array([k]), first))
            stepwise = np.broadcast_to(np.asarray(self.flows.negative_inflow_steps) > 0, (s,))
        cols = np.flatnonzero(stepwise)
        if cols.size:
            for m, units in _held_rows(self.flows, self.rows, self.capacity, cols):
                c = np.arange(m + 1)
                out[m, cols] = (units * _columns(value[: m + 1] * share(m - c, c), cols)).sum(axis=0)
        return out

    def by_cohort(self, da: xr.DataArray) -> np.ndarray:
        """(N, S) a cohort parameter on the engine's steps (history cohorts take the first cohort's value)."""
        return _to_engine(da.broadcast_like(self.template), self.template, self.n_hist, np)

    def ages(self, convention: str, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """(1, N lags, 1) ages at the start and at the end of a step, in years (lag 0 enters at age 0)."""
        n = self.units_in.shape[0]
        age_end = ((np.arange(n) + AGE_CONVENTIONS[convention]) * dt)[None, :, None]
        return np.maximum(age_end - dt, 0.0) * (np.arange(n) > 0)[None, :, None], age_end

    def mean_life(self, kind: str, dt: float) -> np.ndarray:
        """(N, S) mean life of each cohort's lifetime distribution, in years (`depreciation.mean_life`)."""
        life = mean_life(kind, self.rows.params, dt)
        return np.broadcast_to(life if life.ndim == 2 else life[None, :], self.units_in.shape)

    def wrap(self, a: np.ndarray) -> xr.DataArray:
        """An (N, S) array on the modelled steps, labelled as the template (time, sweep dims)."""
        return self.template.copy(data=a[self.n_hist :].reshape(self.template.shape))

    def start(self) -> np.ndarray:
        """(N, N, S) units held at the start of step m by lag k: the cohort's units a step earlier, or
        its purchases for lag 0."""
        out = np.zeros_like(self.held)
        out[1:, 1:] = self.held[:-1, :-1]
        out[:, 0] = self.units_in
        return out


def accounts(g: xr.Dataset, extra: tuple[xr.DataArray, ...] = (), be: Backend = NUMPY) -> Accounts:
    """The cohort accounts of one fleet (a grid without the fleet dimension, one replacement rule), run
    as the model runs it: through the compiled CPU engine where `be` is "cpu", else NumPy's (the two
    agree to ~1e-14); `extra` variables add their sweep dimensions."""
    driver, kind = str(g["driver"].values), str(g["lifetime_type"].values)
    per_unit = g["capacity_per_unit"] if driver == "capacity" else xr.DataArray(1.0)
    life = [g[f"lifetime_{p}"] for p in LIFETIME_TYPES[kind] if p != "weights"]
    table = [g["lifetime_weights"]] if kind == "tabulated" else []
    history = [g["inflow_history"]] if "inflow_history" in g else []
    template = _template(g, g[DRIVER_VAR[driver]], per_unit, *life, *table, *history, *extra)
    drv = _driver(g, driver, per_unit, template, np)
    n = drv.shape[0]
    n_hist = n - template.sizes["time"]
    rows = _survival_rows(g, kind, template, n, NUMPY)
    capacity = _to_engine(per_unit.broadcast_like(template), template, n_hist, np)  # per unit, by cohort
    stock_driven = driver != "inflow"
    if str(g["replacement"].values) == "wang2024":  # the authors' rule fixes the inflow
        drv = wang2024_inflow(drv, capacity, np.asarray(_lifetime_table(g, template)), np) * capacity
        stock_driven = False
    base = driver != "inflow" and n_hist == 0  # an installed base, as the model runs the fleet
    negative = g.attrs["negative_inflow"]
    engine = host.solve if be.name == "cpu" else solve
    flows = engine(drv, stock_driven, rows, None, n_hist, negative, installed_base=base, averages=False)
    return Accounts(np.asarray(flows.inflow) / capacity, template, n_hist, rows, flows, capacity)


def _fleet(g: xr.Dataset) -> xr.DataArray:
    """(time, age, *sweep dims) units in service of one fleet (a grid without the fleet dimension)."""
    acc = accounts(g)
    n = acc.held.shape[0]
    template = acc.template
    dims = [d for d in template.dims if d != "time"]
    shape = (template.sizes["time"], n, *(template.sizes[d] for d in dims))
    dt = 1.0 / STEPS_PER_YEAR[g.attrs["step"]]
    coords = {"time": template["time"], "age": np.arange(n) * dt, **{d: template[d] for d in dims}}
    return xr.DataArray(acc.held[acc.n_hist :].reshape(shape), dims=("time", "age", *dims), coords=coords)


def cohort_stock(flows: CohortFlows, rows: SurvivalRows, per_unit: np.ndarray | float = 1.0) -> np.ndarray:
    """(N, N, S) survivors of each cohort at the end of each step, by lag: out[m, k] is what remains of
    the cohort that entered k steps before step m, in driver units divided by that cohort's `per_unit`
    ((N, S), (1, S) or a number: 1 for units, the capacity per unit for capacity-driven fleets).

    flows: what `ewaste.engine.stockflow.solve` returned for `rows`. Where the negative-inflow
    correction retired the earlier cohorts early (a step whose old cohorts hold more than the stock
    given), they are scaled by the share the engine kept, so the lags sum to `flows.stock`.
    """
    n, s = flows.stock.shape
    out = np.zeros((n, n, s))
    for m, units in _held_rows(flows, rows, per_unit):
        out[m, : m + 1] = units[::-1]
    return out


def _held_rows(
    flows: CohortFlows, rows: SurvivalRows, per_unit: np.ndarray | float, cols: np.ndarray | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """(m, (m + 1, S) units of cohorts 0..m held at the end of step m), step by step (`cohort_stock`);
    only the scenarios `cols` (an index array) where given."""
    n, s = flows.stock.shape
    per_unit = np.broadcast_to(np.asarray(per_unit, dtype=float), (n, s)) if np.ndim(per_unit) else per_unit
    x = np.array(_columns(flows.inflow, cols), dtype=float)  # cohort sizes, scaled as the engine scales them
    stock, per_unit = _columns(flows.stock, cols), _columns(per_unit, cols)
    for m in range(n):
        row = _columns(rows.row(m), cols)
        alive = x[: m + 1] * row
        old = alive[:m].sum(axis=0)
        keep = np.where(old > 0, (stock[m] - alive[m]) / np.where(old > 0, old, 1.0), 1.0)
        keep = np.where(np.abs(keep - 1.0) > KEEP_TOLERANCE, keep, 1.0)
        alive[:m] *= keep
        x[:m] *= keep
        yield m, alive / (per_unit[: m + 1] if np.ndim(per_unit) else per_unit)


def _columns(a: Any, cols: np.ndarray | None) -> Any:
    """The scenarios `cols` of an array (N, S) (all where None; a number, or one column, broadcasts)."""
    return a if cols is None or np.ndim(a) == 0 or np.shape(a)[-1] == 1 else a[..., cols]


CONVOLVE_BLOCK = 4096
"""Scenarios convolved at once (`_convolve`): steps x 4,096 numbers stay in the processor's cache."""


def _convolve(a: np.ndarray, weight: Callable[[int], np.ndarray]) -> np.ndarray:
    """(N, S) out[m] = sum_{c <= m} a[c] weight(m - c), from a (N, S) by cohort and weight(k) (1, S) by
    lag, in blocks of CONVOLVE_BLOCK scenarios (summed over the lags in the same order in every block)."""
    n, s = a.shape
    table = np.empty_like(a)  # weights by lag
    for k in range(n):
        table[k] = weight(k)
    out = np.empty_like(a)
    product = np.empty((n, min(s, CONVOLVE_BLOCK)))
    for s0 in range(0, s, CONVOLVE_BLOCK):
        cols = slice(s0, s0 + CONVOLVE_BLOCK)
        ab, wb, ob = a[:, cols], table[:, cols], out[:, cols]
        np.multiply(ab, wb[0], out=ob)
        for k in range(1, n):
            p = product[: n - k, : ab.shape[1]]
            np.multiply(ab[: n - k], wb[k], out=p)
            ob[k:] += p
    return out
