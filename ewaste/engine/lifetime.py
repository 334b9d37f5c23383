"""Lifetime models (the refresh cycle): survival functions S(age) in closed form.

Pure array functions: they run on NumPy and CuPy alike (the backend supplies `erfc`).
Ages are in years; for tabulated lifetimes the age is a whole number of steps (the lag).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.special

from .arrays import Backend

LIFETIME_TYPES: dict[str, tuple[str, ...]] = {
    "fixed": ("mean",),
    "normal": ("mean", "std"),
    "foldednormal": ("mean", "std"),
    "lognormal": ("mean", "std"),
    "weibull": ("shape", "scale"),
    "tabulated": ("weights",),
}
AGE_CONVENTIONS = {"end": 0.0, "middle": 0.5}
"""Age of a cohort in the step it entered service, in steps (ODYM/flodym `inflow_at`)."""

_SQRT2 = float(np.sqrt(2.0))


def survival(kind: str, age: Any, p: dict[str, Any], be: Backend) -> Any:
    """Share of a cohort still in service at `age` years, S(age), for a parametric lifetime.

    - fixed: 1 while age < mean, else 0
    - normal: 1 - Phi((age - mean)/std), not truncated (mass at negative ages leaves at once)
    - foldednormal: survival of |X|, X ~ N(mean, std)
    - lognormal: mean and std of the lifetime itself (flodym's conversion, not ODYM's)
    - weibull: exp(-(age/scale)^shape)
    """
    xp, erfc = be.xp, be.erfc
    if kind == "fixed":
        return (age < p["mean"]).astype(age.dtype)
    if kind == "normal":
        return 0.5 * erfc((age - p["mean"]) / (p["std"] * _SQRT2))
    if kind == "foldednormal":
        s = p["std"] * _SQRT2
        return xp.where(age < 0, 1.0, 0.5 * erfc((age - p["mean"]) / s) + 0.5 * erfc((age + p["mean"]) / s))
    if kind == "lognormal":
        var = xp.log1p((p["std"] / p["mean"]) ** 2)
        mu = xp.log(p["mean"]) - 0.5 * var
        log_age = xp.log(xp.maximum(age, 1e-300))
        return xp.where(age <= 0, 1.0, 0.5 * erfc((log_age - mu) / (xp.sqrt(var) * _SQRT2)))
    if kind == "weibull":
        return xp.exp(-((xp.maximum(age, 0.0) / p["scale"]) ** p["shape"]))
    raise ValueError(f"unknown lifetime type {kind!r}")


def tabulated_survival(lag: Any, cumulative_weights: Any, be: Backend) -> Any:
    """Survival after `lag` whole steps from cumulative retirement shares (lag axis first).

    `cumulative_weights[j]` is the share retired within j steps of entering service; beyond the
    table the last value holds.
    """
    xp = be.xp
    j = xp.minimum(lag, cumulative_weights.shape[0] - 1)
    return xp.maximum(1.0 - xp.take_along_axis(cumulative_weights, j, axis=0), 0.0)


def weibull_from_mean_std(mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weibull shape and scale with the given mean and standard deviation (host, vectorised).

    Solves CV^2 = Gamma(1+2/k)/Gamma(1+1/k)^2 - 1 for k by bisection in log k (CV decreases with
    k), then scale = mean / Gamma(1 + 1/k).
    """
    mean, std = np.broadcast_arrays(np.asarray(mean, float), np.asarray(std, float))
    target = np.log1p((std / mean) ** 2)
    lo, hi = np.full(mean.shape, np.log(5e-4)), np.full(mean.shape, np.log(200.0))
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        k = np.exp(mid)
        log_cv2p1 = scipy.special.gammaln(1 + 2 / k) - 2 * scipy.special.gammaln(1 + 1 / k)
        too_wide = log_cv2p1 > target  # k too small
        lo = np.where(too_wide, mid, lo)
        hi = np.where(too_wide, hi, mid)
    shape = np.exp(0.5 * (lo + hi))
    scale = mean / np.exp(scipy.special.gammaln(1 + 1 / shape))
    return shape, scale
