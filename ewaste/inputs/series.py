"""Flows given as totals per period (`basis = "total"`): the amount in each step, every given total kept.

A rate series (the default basis) gives the rate at the middle of each period and each step reads
the rate at its own middle, so the steps of a period need not add up to the value given. A total
series gives what flowed during each period. The amounts per step come from a rate that runs
through the periods' average rates (total / length) as the interpolation says, rescaled period by
period so that its integral over every given period is that period's total; between given periods
the interpolated rate holds as it is, and outside them the first or last rate. A step's amount is
the integral of that rate over the step, whether steps are finer or coarser than the periods.
"""

from __future__ import annotations

import numpy as np

TOUCH = 1e-9  # years: period and step boundaries closer than this are one boundary


def overlapping(starts: np.ndarray, lengths: np.ndarray) -> tuple[int, int] | None:
    """Indices of two periods [start, start + length) that overlap (e.g. 2025 and 2025Q3), else None."""
    order = np.argsort(starts, kind="stable")
    for a, b in zip(order[:-1], order[1:], strict=True):
        if starts[b] < starts[a] + lengths[a] - TOUCH:
            return int(a), int(b)
    return None


def step_totals(
    starts: np.ndarray,
    lengths: np.ndarray,
    totals: np.ndarray,
    step_starts: np.ndarray,
    dt: float,
    method: str,
    zero_before_first: bool = False,
) -> np.ndarray:
    """Amount of a flow in each step [t, t + dt) (units) from its totals over periods (units).

    starts, lengths: the given periods (decimal years, years), not overlapping; totals: what
    flowed in each; method: "linear" or "log" (the average rates placed at the periods' middles)
    or "step" (each period's average rate holds from its start to the next period's start).
    Within each given period the rate is rescaled so that it integrates to the period's total;
    with `zero_before_first` nothing flows before the first period (an inflow history).
    """
    order = np.argsort(starts)
    # on a grid of half months from a whole year: every boundary and middle is exact (no 1e-13 slivers)
    ref = np.floor(min(starts.min(), step_starts.min()))
    starts, ends, totals = _snap(starts[order], ref), _snap(starts[order] + lengths[order], ref), totals[order]
    step_starts, step_ends = _snap(step_starts, ref), _snap(step_starts + dt, ref)
    rates = totals / (ends - starts)
    knots = starts if method == "step" else 0.5 * (starts + ends)
    edges = _boundaries(np.concatenate([starts, ends, knots, step_starts, step_ends]))
    lo, hi = edges[:-1], edges[1:]
    pieces = _integrals(lo, hi, knots, rates, method)
    mid = 0.5 * (lo + hi)
    period = np.searchsorted(starts, mid, side="right") - 1
    inside = (period >= 0) & (mid < ends[np.maximum(period, 0)])
    base = np.bincount(period[inside], weights=pieces[inside], minlength=len(starts))
    scale = np.divide(totals, base, out=np.zeros_like(base), where=base > 0)
    pieces = np.where(inside, pieces * scale[np.maximum(period, 0)], pieces)
    if zero_before_first:
        pieces = np.where(mid < starts[0], 0.0, pieces)
    step = np.searchsorted(step_starts, mid, side="right") - 1
    keep = (step >= 0) & (mid < step_ends[np.maximum(step, 0)])
    return np.bincount(step[keep], weights=pieces[keep], minlength=len(step_starts))


def _snap(t: np.ndarray, ref: float) -> np.ndarray:
    """Decimal years as years since `ref`, rounded to the nearest half month (what periods and steps fall on)."""
    return np.round((t - ref) * 24.0) / 24.0


def _boundaries(points: np.ndarray) -> np.ndarray:
    """Sorted boundaries, those closer than TOUCH to the one before dropped (no sliver pieces)."""
    points = np.sort(points)
    keep = np.concatenate([[True], np.diff(points) > TOUCH])
    return points[keep]


def _integrals(lo: np.ndarray, hi: np.ndarray, knots: np.ndarray, rates: np.ndarray, method: str) -> np.ndarray:
    """Integral of the interpolated rate over each piece [lo, hi]; no knot lies inside a piece, so the
    rate is constant ("step"), straight ("linear") or exponential ("log") across it: exact."""
    width = hi - lo
    if method == "step":
        at = np.clip(np.searchsorted(knots, 0.5 * (lo + hi), side="right") - 1, 0, len(knots) - 1)
        return width * rates[at]
    if method == "linear":
        return width * 0.5 * (np.interp(lo, knots, rates) + np.interp(hi, knots, rates))
    log_a, log_b = np.interp(lo, knots, np.log(rates)), np.interp(hi, knots, np.log(rates))
    d = log_b - log_a
    small = np.abs(d) < 1e-9
    safe = np.where(small, 1.0, d)
    mean = np.where(small, np.exp(log_a) * (1.0 + 0.5 * d), (np.exp(log_b) - np.exp(log_a)) / safe)
    return width * mean
