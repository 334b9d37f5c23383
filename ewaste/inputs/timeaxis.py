"""The model's time axis: uniform steps of a year, a quarter or a month."""

from __future__ import annotations

import re

import numpy as np
import xarray as xr

STEPS_PER_YEAR = {"year": 1, "quarter": 4, "month": 12}


def step_length(step: str) -> float:
    """Length of one step, in years."""
    return 1.0 / STEPS_PER_YEAR[step]


def time_coords(start: int, end: int, step: str) -> dict[str, tuple]:
    """Coordinates of the steps from the first step of `start` to the last step of `end`.

    `time` is the decimal year at the start of each step (2020.0, 2020.25, ...), `year` the
    calendar year each step belongs to and `period` a readable label (2020, 2020Q1, 2020-01).
    """
    n = STEPS_PER_YEAR[step]
    k = np.arange((end - start + 1) * n)
    year = start + k // n
    sub = k % n + 1
    if step == "year":
        label = [str(y) for y in year]
    elif step == "quarter":
        label = [f"{y}Q{q}" for y, q in zip(year, sub, strict=True)]
    else:
        label = [f"{y}-{m:02d}" for y, m in zip(year, sub, strict=True)]
    return {
        "time": ("time", start + k / n, {"units": "yr", "long_name": "start of the step (decimal year)"}),
        "year": ("time", year, {"long_name": "calendar year of the step"}),
        "period": ("time", np.array(label), {"long_name": "step label"}),
    }


def history_coords(history_years: int, start: int, step: str) -> dict[str, tuple]:
    """Coordinates of the steps before `start` that carry an inflow history."""
    n = STEPS_PER_YEAR[step]
    k = np.arange(-history_years * n, 0)
    return {
        "history": ("history", start + k / n, {"units": "yr", "long_name": "start of the step before the start year"}),
    }


PERIOD = re.compile(r"^(\d{4})(?:Q([1-4])|-(0[1-9]|1[0-2]))?$")


def parse_period(key: str) -> tuple[float, float] | None:
    """Start (decimal year) and length (years) of a period key: "2025", "2025Q3" or "2025-07"."""
    match = PERIOD.match(key)
    if not match:
        return None
    year, quarter, month = match.groups()
    if quarter:
        return int(year) + (int(quarter) - 1) / 4, 0.25
    if month:
        return int(year) + (int(month) - 1) / 12, 1 / 12
    return float(year), 1.0


def interpolate_series(
    starts: np.ndarray,
    lengths: np.ndarray,
    values: np.ndarray,
    step_times: np.ndarray,
    step: str,
    method: str,
    at: str = "middle",
) -> np.ndarray:
    """Values of a series keyed by periods (years, quarters or months) at each step.

    For rates and parameters (`at="middle"`) a value given for a period is the value at its
    middle and each step reads the series at its own middle; for stocks (`at="end"`) the value at
    the end of the period, read at the end of each step. A step that is one of the given periods
    therefore reads exactly the value given. Between given periods: "linear", "log" (constant
    growth rate, positive values only) or "step" (hold the last given value). Outside them the
    first or last value holds.
    """
    shift = 0.5 if at == "middle" else 1.0
    x = starts + lengths * shift
    order = np.argsort(x)
    x, y = x[order], values[order]
    t = step_times + step_length(step) * shift
    if method == "linear":
        return np.interp(t, x, y)
    if method == "log":
        return np.exp(np.interp(t, x, np.log(y)))
    idx = np.clip(np.searchsorted(x, t + 1e-9, side="right") - 1, 0, len(x) - 1)
    return y[idx]


def to_annual(da: xr.DataArray, kind: str) -> xr.DataArray:
    """Aggregate a per-step variable to calendar years: flows are summed, stocks taken at year end.

    NaN is not skipped: a flow with a NaN step is NaN for its year, a stock is the value of the
    year's last step whatever it is. With annual steps the steps are the years.
    """
    if np.unique(da["year"].values).size == da.sizes["time"]:
        out = da.drop_vars([c for c in da.coords if "time" in da[c].dims]).rename(time="year")
        out = out.assign_coords(year=("year", da["year"].values, da["year"].attrs))
    else:
        grouped = da.groupby("year")
        out = grouped.sum("time", skipna=False) if kind == "flow" else grouped.last(skipna=False)
    out.attrs = dict(da.attrs)
    return out
