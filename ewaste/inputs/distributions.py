"""Uncertain parameters: `{ dist = ... }` tables of a scenario file as scipy.stats distributions.

Every distribution is a frozen `scipy.stats` distribution, so its quantile function (`ppf`) maps
uniform samples (scipy.stats.qmc) to draws; ewaste writes no sampler of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..errors import InputError

# name -> the keys it takes (besides `dist` and `units`)
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "normal": ("mean", "std"),
    "truncnormal": ("mean", "std", "min", "max"),
    "lognormal": ("mean", "std"),
    "uniform": ("min", "max"),
    "triangular": ("min", "mode", "max"),
    "pert": ("min", "mode", "max"),
    "choice": ("values", "weights"),
}
OUTSIDE_RANGE = 1e-9  # probability a distribution may put outside a parameter's valid range (clipped)
# Distributions whose exact quantile function is slow (an iterative inverse: about 1.7 s per million
# PERT draws) are inverted, for more than FAST_ABOVE draws at once, by the polynomial interpolation
# of scipy.stats.sampling.NumericalInversePolynomial to this u-error (its set-up, on `_scalar_density`,
# takes about 0.01 s).
FAST_INVERSION = ("pert", "truncnormal")
FAST_ABOVE = 50_000
U_RESOLUTION = 1e-12


@dataclass(frozen=True)
class Distribution:
    """One uncertain parameter: where the file gives it, its scipy.stats distribution, and for a
    discrete choice the values its integer draws index."""

    path: str  # the TOML path as written, e.g. "fleets.servers.mass"
    spec: dict[str, Any]  # the table as written (for provenance)
    frozen: Any  # scipy.stats frozen distribution
    values: tuple[float, ...] | None = None  # choice: the values; draws are indices into them

    @cached_property
    def _interpolated(self) -> Any:
        """The polynomial interpolation of the standardised quantile function (PINV; Derflinger,
        Hoermann and Leydold 2010), |F(ppf(u)) - u| < U_RESOLUTION, on z = (x - loc) / scale: a
        distribution narrow beside its location is as easy to invert as any other. None where the
        set-up fails (scipy's exact quantile function then serves)."""
        from scipy.stats.sampling import NumericalInversePolynomial  # noqa: PLC0415

        standard = self.frozen.dist(*self.frozen.args)
        try:
            return NumericalInversePolynomial(
                _scalar_density(self.frozen),
                center=float(standard.median()),
                domain=tuple(map(float, standard.support())),
                u_resolution=U_RESOLUTION,
            )
        except Exception:  # noqa: BLE001 - UNU.RAN's set-up raises its own kinds; the exact inverse is slower, not wrong
            return None

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Draws from uniform samples u in (0, 1) (the quantile function), in the file's units:
        (n,) for u of shape (n,). More than FAST_ABOVE draws of a PERT or truncated normal at once
        come from the interpolated inverse, within U_RESOLUTION of u in probability."""
        u = np.asarray(u, dtype=float)
        fast = self.spec.get("dist") in FAST_INVERSION and u.size > FAST_ABOVE and self._interpolated is not None
        if fast:
            loc, scale = self.frozen.kwds["loc"], self.frozen.kwds["scale"]
            return np.clip(loc + scale * self._interpolated.ppf(u), *self.frozen.support())
        q = self.frozen.ppf(u)
        if self.values is None:
            return np.asarray(q, dtype=float)
        return np.asarray(self.values, dtype=float)[np.asarray(q, dtype=int)]

    def quantile(self, q: float) -> float:
        """The q-quantile of the parameter (for one-at-a-time sensitivity and the docs' tables)."""
        return float(self.ppf(np.array([q]))[0])

    def outside(self, lo: float, hi: float) -> float:
        """Probability below `lo` or above `hi`."""
        if self.values is not None:
            v = np.asarray(self.values)
            return float(np.asarray(self.spec["weights"])[(v < lo) | (v > hi)].sum())
        return float(self.frozen.cdf(lo) + self.frozen.sf(hi))


def _scalar_density(frozen: Any) -> SimpleNamespace:
    """The standardised density (z = (x - loc) / scale) of a frozen scipy.stats beta (PERT) or
    truncnorm, up to a constant factor (PINV normalises it), as a plain function of one float: PINV's
    set-up calls it at some 18,000 points one at a time, and scipy.stats' frozen pdf costs about 5 us a
    call, this about 0.3 us. Beta: z^(a-1) (1-z)^(b-1) on [0, 1]; truncnorm: exp(-(z^2 - z0^2) / 2) on
    [a, b], z0 the point of [a, b] nearest 0 (so that a normal's far tail does not underflow)."""
    a, b = frozen.args
    if frozen.dist.name == "beta":

        def pdf(z: float) -> float:
            return z ** (a - 1.0) * (1.0 - z) ** (b - 1.0) if 0.0 <= z <= 1.0 else 0.0

        return SimpleNamespace(pdf=pdf)
    z0 = min(max(0.0, a), b)

    def pdf_tn(z: float) -> float:
        return math.exp(-0.5 * (z - z0) * (z + z0)) if a <= z <= b else 0.0

    return SimpleNamespace(pdf=pdf_tn)


def is_distribution(raw: Any) -> bool:
    """Whether a value of a scenario file is a distribution table."""
    return isinstance(raw, dict) and "dist" in raw


def parse_distribution(raw: dict, source: str, path: str) -> Distribution:
    """A `{ dist = NAME, ... }` table -> Distribution (values in the file's units).

    Raises InputError (naming `source` and `path`) for an unknown name, a missing, extra or
    non-numeric key, or impossible parameters: std <= 0, min >= max, mode outside [min, max],
    weights that are negative, of another length than the values, or do not sum to 1.
    """
    name = raw.get("dist")
    if not isinstance(name, str) or name not in DISTRIBUTIONS:
        near = ", ".join(DISTRIBUTIONS)
        raise InputError(source, f"{path}.dist", f"unknown distribution {name!r}; expected one of {near}")
    needed = set(DISTRIBUTIONS[name])
    given = set(raw) - {"dist", "units"}
    if given != needed:
        missing, extra = sorted(needed - given), sorted(given - needed)
        what = f"missing {', '.join(missing)}" if missing else f"{', '.join(extra)} not used"
        raise InputError(source, path, f"a {name} distribution takes {', '.join(DISTRIBUTIONS[name])}: {what}")
    if name == "choice":
        return _choice(raw, source, path)
    p = {key: _number(raw[key], source, f"{path}.{key}") for key in needed}
    _check(name, p, source, path)
    return Distribution(path, dict(raw), _frozen(name, p))


def _number(raw: Any, source: str, path: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not np.isfinite(raw):
        raise InputError(source, path, f"expected a finite number, got {raw!r}")
    return float(raw)


def _check(name: str, p: dict[str, float], source: str, path: str) -> None:
    if "std" in p and not p["std"] > 0:
        raise InputError(source, f"{path}.std", f"must be above zero, got {p['std']:g}")
    if name == "lognormal" and not p["mean"] > 0:
        raise InputError(source, f"{path}.mean", "a lognormal's mean must be above zero")
    if "min" in p and not p["min"] < p["max"]:
        raise InputError(source, f"{path}.max", f"max ({p['max']:g}) must be above min ({p['min']:g})")
    if "mode" in p and not p["min"] <= p["mode"] <= p["max"]:
        raise InputError(source, f"{path}.mode", f"mode {p['mode']:g} lies outside [min, max]")


def _frozen(name: str, p: dict[str, float]) -> Any:
    """The scipy.stats distribution (PERT: the beta distribution with the PERT shape parameters)."""
    import scipy.stats as st  # noqa: PLC0415 - 0.3 s to import: only for files that draw

    if name == "normal":
        return st.norm(p["mean"], p["std"])
    if name == "truncnormal":
        a, b = (p["min"] - p["mean"]) / p["std"], (p["max"] - p["mean"]) / p["std"]
        return st.truncnorm(a, b, loc=p["mean"], scale=p["std"])
    if name == "lognormal":  # by the mean and std of the variable itself, as lifetimes are
        s2 = np.log1p((p["std"] / p["mean"]) ** 2)
        return st.lognorm(np.sqrt(s2), scale=p["mean"] * np.exp(-0.5 * s2))
    width = p["max"] - p["min"]
    if name == "uniform":
        return st.uniform(p["min"], width)
    if name == "triangular":
        return st.triang((p["mode"] - p["min"]) / width, loc=p["min"], scale=width)
    alpha = 1.0 + 4.0 * (p["mode"] - p["min"]) / width  # PERT (Malcolm et al. 1959; Vose 2008)
    beta = 1.0 + 4.0 * (p["max"] - p["mode"]) / width
    return st.beta(alpha, beta, loc=p["min"], scale=width)


def _choice(raw: dict, source: str, path: str) -> Distribution:
    values, weights = raw["values"], raw["weights"]
    for key, seq in (("values", values), ("weights", weights)):
        if not isinstance(seq, list) or not seq:
            raise InputError(source, f"{path}.{key}", "expected a list of numbers")
    vals = [_number(v, source, f"{path}.values[{i}]") for i, v in enumerate(values)]
    w = [_number(v, source, f"{path}.weights[{i}]") for i, v in enumerate(weights)]
    if len(w) != len(vals):
        raise InputError(source, f"{path}.weights", f"{len(w)} weights for {len(vals)} values")
    for i, weight in enumerate(w):
        if weight < 0:
            raise InputError(source, f"{path}.weights[{i}]", f"a weight is a probability: >= 0, got {weight:g}")
    if abs(sum(w) - 1.0) > 1e-9:
        raise InputError(source, f"{path}.weights", f"weights must sum to 1 (they sum to {sum(w):.6g})")
    import scipy.stats  # noqa: PLC0415 - as in _frozen

    frozen = scipy.stats.rv_discrete(values=(np.arange(len(vals)), np.asarray(w)))
    return Distribution(path, dict(raw), frozen, tuple(vals))


def check_range(dist: Distribution, factor: float, lo: float, hi: float, units: str, source: str) -> None:
    """Refuse a distribution (in the file's units; `factor` converts to the canonical ones) that puts
    more than OUTSIDE_RANGE of its probability outside the valid range [lo, hi] (canonical units).

    The docs' rule: ewaste never truncates a distribution silently; what little it allows outside the
    range (at most one draw in a billion) is clipped to it.
    """
    share = dist.outside(lo / factor, hi / factor)
    if share > OUTSIDE_RANGE:
        unit = "" if units == "1" else f" {units}"
        raise InputError(
            source,
            dist.path,
            f"the distribution puts {share:.2g} of its probability outside the valid range "
            f"[{lo:g}, {hi:g}]{unit}; bound it (truncnormal, uniform, triangular, pert) or narrow it",
        )
