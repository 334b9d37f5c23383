"""The interface of the compiled cohort maths (kernels/cohort.h), shared by both compiled engines.

`prepare` turns the NumPy engine's arguments into the arrays and scalars of `ew::Problem`;
`allocate` makes the arrays of `ew::Result`; `finish` checks and wraps them as `CohortFlows`. The CPU
engine (host.py) passes them to the library through ctypes, the GPU engine (gpu.py) to the CUDA
kernel through CuPy. Arrays come from the namespace `xp` (NumPy or CuPy) of the caller.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np

from .lifetime import AGE_CONVENTIONS, LIFETIME_TYPES
from .stockflow import CohortFlows, SurvivalRows, require_first_step

KINDS = {"fixed": 0, "normal": 1, "foldednormal": 2, "lognormal": 3, "weibull": 4, "tabulated": 5}
SERIES = ("inflow", "stock", "outflow", "in_service")  # (n, S) each, in ew::Result's order
ATTRIBUTE_SERIES = ("attr_stock", "attr_outflow", "attr_in_service")  # (K, n, S) each


@dataclass
class Inputs:
    """ew::Problem: scalars, then C-contiguous float64 arrays with the scenario axis last (S wide)."""

    n: int  # steps, inflow-history steps first
    n_history: int
    stock_driven: int
    correct: int
    kind: int
    by_cohort: int
    n_attributes: int
    n_lags: int
    single: int  # 1: float32 arithmetic
    installed_base: int  # 1: the first step's cohort serves that whole step (stockflow.solve)
    averages: int  # 1: the average in service is computed (in_service, attr_in_service); 0: left out
    s: int  # scenarios
    dt: float  # years per step
    offset: float  # age in steps in the step a cohort enters service
    p1: Any  # (1 or n, S) first lifetime parameter; tabulated: survival by lag (1 or n, n_lags, S)
    p2: Any  # (1 or n, S) second lifetime parameter (zeros where there is none)
    driver: Any  # (n, S) driver units, or (n, 1) where every scenario shares it (`driver_shared`)
    attributes: Any  # (K, n, S) per driver unit, or None
    weights: Any = None  # summary mode: (2, n) step weights (target year; up to it), else None
    last: int = 0  # summary mode: the step whose value is kept
    driver_shared: int = 0  # 1: one driver trajectory for every scenario, `driver` (n, 1)


def one_trajectory(a: Any) -> bool:
    """Whether an (N, S) array holds one trajectory for every scenario: (N, 1), or a broadcast view."""
    return a.ndim == 2 and (a.shape[-1] == 1 or a.strides[-1] == 0)


def _full(a: Any, lead: tuple[int, ...], s: int, xp: Any) -> Any:
    """C-contiguous float64 (*lead, s), broadcasting size-1 axes."""
    return xp.ascontiguousarray(xp.broadcast_to(xp.asarray(a, dtype=xp.float64), (*lead, s)))


def _lifetime(rows: SurvivalRows, s: int, xp: Any) -> tuple[Any, Any, bool]:
    """p1, p2 as the kernel reads them, and whether they vary by cohort."""
    if rows.kind == "tabulated":
        table = xp.maximum(1.0 - xp.asarray(rows.params["cumulative"], dtype=xp.float64), 0.0)
        if table.ndim == 3 and table.shape[0] == 1:  # by cohort in form, one table in fact
            table = table[0]
        by_cohort = table.ndim == 3
        lead = (rows.n_steps, table.shape[1]) if by_cohort else (1, table.shape[0])
        return _full(table if by_cohort else table[None], lead, s, xp), xp.zeros((1, 1)), by_cohort
    values = [rows.params[p] for p in LIFETIME_TYPES[rows.kind]]  # p1, p2 in the kernel's order
    by_cohort = any(v.shape[0] > 1 for v in values)
    n = rows.n_steps if by_cohort else 1
    full = [_full(v, (n,), s, xp) for v in values]
    return full[0], full[-1] if len(full) > 1 else xp.zeros((n, s)), by_cohort


def prepare(
    driver: Any,
    stock_driven: bool,
    rows: SurvivalRows,
    attributes: Any,
    n_history: int,
    negative_inflow: str,
    xp: Any,
    reduce: tuple[Any, int] | None = None,
    single: bool = False,
    installed_base: bool = False,
    averages: bool = True,
) -> Inputs:
    """The kernel's inputs from `stockflow.solve`'s arguments (size-1 axes broadcast to S, except a
    driver every scenario shares: (N, 1) or a broadcast view, read as one trajectory).

    reduce: (weights (2, N), last) for summary mode (see `stockflow.reduce_flows`).
    single: compute in float32 (the arrays stay float64). installed_base, averages: as in `stockflow.solve`.
    """
    widths = [driver.shape[-1], *(v.shape[-1] for v in rows.params.values())]
    s = max(widths + ([] if attributes is None else [attributes.shape[-1]]))
    n = driver.shape[0]
    k = 0 if attributes is None else attributes.shape[0]
    p1, p2, by_cohort = _lifetime(rows, s, xp)
    shared = one_trajectory(driver)
    if stock_driven and not bool(xp.isfinite(p1).all() & xp.isfinite(p2).all()):
        require_first_step(float("nan"))  # as the NumPy engine: a NaN lifetime gives a NaN sf[m, m]
    return Inputs(
        n=n,
        n_history=n_history,
        stock_driven=int(stock_driven),
        correct=int(negative_inflow == "correct"),
        kind=KINDS[rows.kind],
        by_cohort=int(by_cohort),
        n_attributes=k,
        n_lags=p1.shape[1] if rows.kind == "tabulated" else 0,
        single=int(single),
        installed_base=int(installed_base),
        averages=int(averages),
        s=s,
        dt=float(rows.dt),
        offset=AGE_CONVENTIONS[rows.convention],
        p1=p1,
        p2=p2,
        driver=_full(driver[:, :1], (n,), 1, xp) if shared else _full(driver, (n,), s, xp),
        attributes=None if attributes is None else _full(attributes, (k, n), s, xp),
        weights=None if reduce is None else _weights(reduce, n, xp),
        last=0 if reduce is None else int(reduce[1]),
        driver_shared=int(shared),
    )


def _weights(reduce: tuple[Any, int], n: int, xp: Any) -> Any:
    weights = xp.ascontiguousarray(xp.asarray(reduce[0], dtype=xp.float64))
    if weights.shape != (2, n) or not 0 <= reduce[1] < n:
        raise ValueError(f"summary mode needs (2, {n}) step weights and a step in 0..{n - 1}")
    return weights


def allocate(inputs: Inputs, xp: Any, skip: Collection[str] = ()) -> dict[str, Any]:
    """ew::Result's arrays for the inputs' S scenarios (uninitialised: the kernel writes them all).

    In summary mode (inputs.weights set) the trajectories are absent and "summary" holds, for each
    of the 4 + 3K series (`SERIES`, then `ATTRIBUTE_SERIES` attribute by attribute), three values
    per scenario: (4 + 3K, 3, S). Without `inputs.averages` the averages in service are left out.
    skip: trajectories not to write (names of `SERIES` / `ATTRIBUTE_SERIES`): only the CPU library
    leaves a missing output alone (kernels/host.cpp); the GPU kernel writes every one.
    """
    n, k, s = inputs.n, inputs.n_attributes, inputs.s
    out = {"negative": xp.empty(s, dtype=xp.int64), "first_step": xp.empty(s), "stock_error": xp.empty(s)}
    if inputs.weights is not None:
        return out | {"summary": xp.empty((len(SERIES) + len(ATTRIBUTE_SERIES) * k, 3, s))}
    out |= {name: xp.empty((n, s)) for name in _computed(SERIES, inputs) if name not in skip}
    return out | {name: xp.empty((k, n, s)) for name in _computed(ATTRIBUTE_SERIES, inputs) if name not in skip}


AVERAGES = ("in_service", "attr_in_service")  # computed only with Inputs.averages


def _computed(series: tuple[str, ...], inputs: Inputs) -> tuple[str, ...]:
    return series if inputs.averages else tuple(name for name in series if name not in AVERAGES)


def finish(inputs: Inputs, out: dict[str, Any]) -> CohortFlows:
    """Refuse what the NumPy engine refuses, and wrap the results (None for what was not computed or
    not written)."""
    if inputs.stock_driven and inputs.s:
        require_first_step(float(out["first_step"].min()))
    k = inputs.n_attributes
    if "summary" in out:  # series in the order of the kernel: SERIES, then ATTRIBUTE_SERIES by attribute
        sm, first = out["summary"], len(SERIES)
        out = out | {name: sm[i] for i, name in enumerate(SERIES)}
        out |= {name: sm[first + i * k : first + (i + 1) * k] for i, name in enumerate(ATTRIBUTE_SERIES)}
    computed = {*_computed(SERIES, inputs), *(_computed(ATTRIBUTE_SERIES, inputs) if k else ())}
    return CohortFlows(
        **{name: out.get(name) if name in computed else None for name in (*SERIES, *ATTRIBUTE_SERIES)},
        negative_inflow_steps=out["negative"],
        stock_error=out["stock_error"],
    )


def sample_problem(
    kind: str, by_cohort: bool, stock_driven: bool, s: int, rng: np.random.Generator, n: int = 23
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Random lifetime parameters (years), a driver with dips (negative stock-driven inflows) and
    three attributes, for `s` scenarios over `n` steps: the cases the compiled engines are checked on.
    """
    rows = n if by_cohort else 1
    mean = rng.uniform(1.5, 6.0, (rows, s))
    if kind == "tabulated":
        w = rng.uniform(0.0, 1.0, (rows, 8, s))
        w[:, 0] *= 0.01  # little retires in the first step
        w /= w.sum(axis=1, keepdims=True) * 1.1  # a tenth never retires within the table
        params = {"cumulative": np.cumsum(w, axis=1) if by_cohort else np.cumsum(w[0], axis=0)}
    elif kind == "weibull":
        params = {"shape": rng.uniform(1.0, 5.0, (rows, s)), "scale": mean}
    elif kind == "fixed":
        params = {"mean": mean}
    else:
        params = {"mean": mean, "std": mean * rng.uniform(0.1, 0.5, (rows, s))}
    if stock_driven:
        driver = np.cumsum(rng.uniform(-40.0, 100.0, (n, s)), axis=0) + 1000.0
    else:
        driver = rng.uniform(0.0, 100.0, (n, s))
    return params, driver, rng.uniform(0.5, 2.0, (3, n, s))
