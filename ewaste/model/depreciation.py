"""Per-unit money schedules by age: the book value of a unit under each depreciation method, its
resale value, and the mean life its lifetime distribution gives (the economic life).

Pure array functions (NumPy). Ages are in years since the unit was put in service; shares are of the
unit's price. Formulas: shared reference finance.md section 6 (straight-line, declining balance with
the switch to straight-line, sum-of-years' digits); within a year the book value falls linearly
(depreciation spread evenly over the year's months).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine.arrays import NUMPY
from ..engine.lifetime import tail_integrals


def book_share(method: str, age: np.ndarray, life: np.ndarray, salvage: np.ndarray, factor: Any = 2.0) -> np.ndarray:
    """Net book value at `age` as a share of the price (1 when new, `salvage` from the end of `life`).

    age, life, salvage, factor: arrays that broadcast (years, years, shares, rate factor). `method`:
    "straight-line": 1 - (1 - s) min(a, L) / L; "sum-of-years-digits": year t of L writes off
    (1 - s)(L - t + 1) / (L (L + 1) / 2); "declining-balance": the rate k / L on the book value,
    switching to straight-line on the remainder when that is larger, never below the salvage.
    The last two need whole-year lives (the scenario parser refuses others). Raises ValueError for
    another method.
    """
    age, life, salvage = (np.asarray(x, dtype=float) for x in (age, life, salvage))
    if method == "straight-line":
        return 1.0 - (1.0 - salvage) * np.minimum(np.maximum(age, 0.0), life) / life
    if method not in ("sum-of-years-digits", "declining-balance"):
        raise ValueError(f"unknown depreciation method {method!r}")
    shape = np.broadcast_shapes(age.shape, life.shape, salvage.shape, np.shape(factor))
    age, life, salvage, factor = (np.broadcast_to(x, shape) for x in (age, life, salvage, np.asarray(factor, float)))
    years = int(np.ceil(np.nanmax(life))) if life.size else 0
    ends = _year_ends(method, life, salvage, factor, years)  # (years + 1, *shape): book value at whole years
    a = np.clip(age, 0.0, float(years))
    lower = np.minimum(np.floor(a).astype(int), max(years - 1, 0))
    frac = a - lower
    at = np.take_along_axis(ends, lower[None], axis=0)[0]
    nxt = np.take_along_axis(ends, np.minimum(lower + 1, years)[None], axis=0)[0]
    return np.where(age >= life, salvage, at + frac * (nxt - at))


def _year_ends(method: str, life: np.ndarray, salvage: np.ndarray, factor: np.ndarray, years: int) -> np.ndarray:
    """Book value (share of price) at the end of years 0..`years`."""
    ends = np.ones((years + 1, *life.shape))
    base = 1.0 - salvage
    digits = life * (life + 1.0) / 2.0
    for t in range(1, years + 1):
        before = ends[t - 1]
        if method == "sum-of-years-digits":
            charge = base * np.maximum(life - t + 1.0, 0.0) / digits
        else:
            remaining = np.maximum(life - t + 1.0, 1.0)
            charge = np.maximum(factor / life * before, (before - salvage) / remaining)
        ends[t] = np.where(t <= life, np.maximum(before - charge, salvage), salvage)
    return ends


def resale_share(age: np.ndarray, retention: np.ndarray) -> np.ndarray:
    """What a retired unit sells for, as a share of its price: retention ** age (age in years)."""
    return np.asarray(retention, dtype=float) ** np.maximum(np.asarray(age, dtype=float), 0.0)


def mean_life(kind: str, params: dict[str, np.ndarray], dt: float) -> np.ndarray:
    """Mean service life in years of each cohort's lifetime distribution: the integral of its survival
    function from 0 (`ewaste.engine.lifetime.tail_integrals`, closed forms); tabulated: the sum over
    lags of the steps survived, dt * sum_j (1 - F_j), F the cumulative retirement shares
    (`params["cumulative"]`, (L, S) or (N, L, S)).
    """
    if kind == "tabulated":
        return dt * (1.0 - np.asarray(params["cumulative"])).clip(0.0, None).sum(axis=-2)
    zero = np.zeros(np.broadcast_shapes(*(np.shape(v) for v in params.values())))
    return np.asarray(tail_integrals(kind, zero, params, NUMPY)[0])
