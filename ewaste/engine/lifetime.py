"""Lifetime models (the refresh cycle): survival S(age) and its integrals over a step, in closed form.

Pure array functions: they run on NumPy and CuPy alike (the backend supplies `erfc` and
`gammaincc`). Ages are in years; for tabulated lifetimes the age is a whole number of steps (the lag).
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
_SQRT2PI = float(np.sqrt(2.0 * np.pi))


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


def tail_integrals(kind: str, age: Any, p: dict[str, Any], be: Backend) -> tuple[Any, Any]:
    """T(a) = integral of S from a to infinity (years) and U(a) = integral of T from a to infinity
    (years^2), at ages a >= 0, for a parametric lifetime.

    T(0) is the mean life (of the part of the distribution at positive ages); U(0) is half its second
    moment. Closed forms: the normal loss functions L1(z) = phi(z) - z Q(z) and L2(z) =
    ((1 + z^2) Q(z) - z phi(z)) / 2 for (folded) normal lifetimes; E[(X - a)+] and E[(X - a)+^2] / 2
    through partial moments for lognormal (E[X^r; X > a] = E[X^r] Q(z - r s)) and Weibull
    (lambda^r Gamma(1 + r/k) Q(1 + r/k, (a/lambda)^k), Q the regularised upper incomplete gamma).
    """
    xp = be.xp
    if kind == "fixed":
        rest = xp.maximum(p["mean"] - age, 0.0)
        return rest, 0.5 * rest * rest
    if kind in ("normal", "foldednormal"):
        t, u = _normal_tails(age, p["mean"], p["std"], be)
        if kind == "foldednormal":
            t2, u2 = _normal_tails(age, -p["mean"], p["std"], be)
            t, u = t + t2, u + u2
        return t, u
    if kind == "lognormal":
        var = xp.log1p((p["std"] / p["mean"]) ** 2)
        s = xp.sqrt(var)
        z = (xp.log(xp.maximum(age, 1e-300)) - xp.log(p["mean"]) + 0.5 * var) / s
        q0, q1, q2 = (0.5 * be.erfc((z - r * s) / _SQRT2) for r in (0, 1, 2))
        second = p["mean"] ** 2 + p["std"] ** 2
        return p["mean"] * q1 - age * q0, 0.5 * (second * q2 - 2.0 * age * p["mean"] * q1 + age * age * q0)
    if kind == "weibull":
        return _weibull_tails(age, p, None, be)
    raise ValueError(f"unknown lifetime type {kind!r}")


def _weibull_tails(age: Any, p: dict[str, Any], y1: Any, be: Backend) -> tuple[Any, Any]:
    """The Weibull's T and U; for a step ending where (age / scale)^shape = y1, each less a constant
    that cancels in the step's I0 and I1 wherever y1 < s + 1: there, Gamma(s) - the lower incomplete
    gamma instead of the upper one, so that no difference subtracts two values near Gamma(s) (the
    compiled engines' weibull_tails does the same)."""
    xp = be.xp
    k, lam = p["shape"], p["scale"]
    y = (xp.maximum(age, 0.0) / lam) ** k
    m = []
    for s, unit in ((1.0 + 1.0 / k, lam), (1.0 + 2.0 / k, lam * lam)):
        upper = be.gammaincc(s, y) if y1 is None else xp.where(y1 < s + 1.0, -be.gammainc(s, y), be.gammaincc(s, y))
        m.append(unit * xp.exp(be.gammaln(s)) * upper)
    q0 = xp.exp(-y)
    return m[0] - age * q0, 0.5 * (m[1] - 2.0 * age * m[0] + age * age * q0)


def _normal_tails(age: Any, mean: Any, std: Any, be: Backend) -> tuple[Any, Any]:
    z = be.xp.clip((age - mean) / std, -37.0, 37.0)  # as the compiled engines (beyond, the tails are < 1e-297)
    q = 0.5 * be.erfc(z / _SQRT2)
    phi = be.xp.exp(-0.5 * z * z) / _SQRT2PI
    return std * (phi - z * q), 0.5 * std * std * ((1.0 + z * z) * q - z * phi)


WEIBULL_STEEP = 2.0
"""A Weibull step [x0, x0 + dt] is integrated exactly (incomplete gamma) where its bend, shape x
ln((x0 + dt) / x0), exceeds this: the first step (infinite bend; S's derivative is infinite at age 0)
and steep curves. Elsewhere by Gauss-Legendre in u = ln(age), where S = exp(-exp(shape (u - ln scale)))
is smooth and the error depends on the bend alone (`GL_TIERS`)."""
GL_TIERS = ((0.1, 4), (0.4, 5), (0.7, 6), (1.0, 7), (WEIBULL_STEEP, 8))
"""(largest bend, Gauss-Legendre points): each tier within 4e-12 of a cohort and 8 points within 6e-10,
against adaptive quadrature over shapes 0.3-100, scales 0.05-3,000 steps and ages 1-1,500 steps
(tests/test_in_service.py); the compiled engines use the same tiers (kernels/survival.h)."""
NEGLIGIBLE = 3.7
"""Where (x0 / scale)^shape >= e^3.7, S is below 4e-18 over the step and its integrals are taken as 0."""
_GL = {n: np.polynomial.legendre.leggauss(n) for _, n in GL_TIERS}


def step_integrals(kind: str, x0: Any, p: dict[str, Any], dt: float, be: Backend) -> tuple[Any, Any]:
    """I0 = integral of S over [x0, x0 + dt] (years) and I1 = integral of (a - x0) S(a) over it (years^2).

    From the tail integrals T and U in closed form: I0 = T(x0) - T(x0 + dt), I1 = -dt T(x0 + dt) + U(x0)
    - U(x0 + dt). The Weibull's by Gauss-Legendre in ln(age) with 4 to 8 points (`GL_TIERS`), except
    where its curve bends too hard for it (`WEIBULL_STEEP`).
    """
    xp = be.xp
    exact = None
    if kind == "weibull":
        span = xp.log1p(dt / xp.maximum(x0, 1e-300))  # ln((x0 + dt) / x0); huge for the first step
        exact = p["shape"] * span > WEIBULL_STEEP
        if not bool(xp.any(exact)):
            return _gauss_legendre(x0, p, dt, be)
    if kind == "weibull":
        y1 = ((x0 + dt) / p["scale"]) ** p["shape"]
        (t0, u0), (t1, u1) = (_weibull_tails(a, p, y1, be) for a in (x0, x0 + dt))
    else:
        (t0, u0), (t1, u1) = (tail_integrals(kind, a, p, be) for a in (x0, x0 + dt))
    i0, i1 = t0 - t1, -dt * t1 + u0 - u1
    if exact is None:
        return i0, i1
    g0, g1 = _gauss_legendre(x0, p, dt, be)
    return xp.where(exact, i0, g0), xp.where(exact, i1, g1)


def _gauss_legendre(x0: Any, p: dict[str, Any], dt: float, be: Backend) -> tuple[Any, Any]:
    """I0 and I1 (`step_integrals`) by Gauss-Legendre in u = ln(age) (da = a du), with the points of
    each element's tier (`GL_TIERS`); 0 where S is negligible or the step is left to the exact form."""
    xp = be.xp
    x0, shape, scale = xp.broadcast_arrays(xp.asarray(x0, dtype=xp.float64), p["shape"], p["scale"])
    span = xp.log1p(dt / xp.maximum(x0, 1e-300))  # ln((x0 + dt) / x0), the step's width in u
    lx0, lam = xp.log(xp.maximum(x0, 1e-300)), xp.log(scale)
    bend = shape * span
    live = shape * (lx0 - lam) < NEGLIGIBLE
    i0, i1 = xp.zeros(bend.shape), xp.zeros(bend.shape)
    low = -np.inf
    for top, points in GL_TIERS:
        at = live & (bend > low) & (bend <= top)
        low = top
        if not bool(at.any()):
            continue
        i0[at], i1[at] = _tier(points, x0[at], lx0[at], span[at], shape[at], lam[at], xp)
    return i0, i1


def _tier(points: int, x0: Any, lx0: Any, span: Any, shape: Any, lam: Any, xp: Any) -> tuple[Any, Any]:
    s0 = s1 = 0.0
    for node, weight in zip(*_GL[points], strict=True):
        h = 0.5 * span * (1.0 + float(node))  # the node's age: x0 e^h
        off = x0 * xp.expm1(h)
        w = 0.5 * span * float(weight) * (x0 + off)
        sv = w * xp.exp(-xp.exp(xp.minimum(shape * (lx0 + h - lam), 6.5)))  # capped as the compiled engines
        s0, s1 = s0 + sv, s1 + sv * off
    return s0, s1


def average_survival(kind: str, lag: Any, p: dict[str, Any], dt: float, convention: str, be: Backend) -> Any:
    """Share of a cohort in service on average over the step `lag` whole steps after it entered
    (lag 0: its entry step), for a parametric lifetime; `lag` is an integer array (a column).

    'end' (ODYM): a cohort enters at the end of its step, so it serves nothing in it; in step k >= 1
    it serves I0[k - 1] / dt, the mean of S over the step before. 'middle' (flodym's default): units
    enter evenly over the step; the double integral of S over entry and service times is
    (I1[k - 1] + dt I0[k] - I1[k]) / dt^2 (I1[-1] = 0), i.e. (U((k+1) dt) - 2 U(k dt) + U((k-1) dt)) / dt^2
    for k >= 1 and (dt T(0) - U(0) + U(dt)) / dt^2 for k = 0 (`step_integrals`). Summed over lags,
    both give the mean life / dt: steady inflow I serves I x mean life.
    """
    xp = be.xp
    lag = lag.astype(xp.float64)
    now = step_integrals(kind, lag * dt, p, dt, be)
    before = step_integrals(kind, xp.maximum(lag - 1.0, 0.0) * dt, p, dt, be)
    if convention == "end":
        return xp.where(lag >= 1, before[0] / dt, 0.0)
    return (xp.where(lag >= 1, before[1], 0.0) + dt * now[0] - now[1]) / (dt * dt)


def tabulated_average(lag: Any, cumulative_weights: Any, convention: str, be: Backend) -> Any:
    """Share of a cohort in service on average over the step `lag` steps after it entered, for a
    tabulated lifetime: survival taken as linear within each step between the table's end-of-step
    values; in the entry step 'middle' counts half of the first value (units arrive evenly), 'end'
    nothing (they arrive at its end)."""
    xp = be.xp
    now = tabulated_survival(lag, cumulative_weights, be)
    before = tabulated_survival(xp.maximum(lag - 1, 0), cumulative_weights, be)
    return xp.where(lag >= 1, 0.5 * (before + now), AGE_CONVENTIONS[convention] * now)


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
