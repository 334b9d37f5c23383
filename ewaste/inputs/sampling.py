"""Draws of the uncertain parameters: uniform samples from scipy.stats.qmc (or NumPy's generator),
rank correlations through a Gaussian copula, then each distribution's quantile function.

The same seed gives the same draws on every machine, backend, chunking and worker count: the draws
are made once, when the scenario is loaded, and stored in the grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from .distributions import Distribution

SAMPLERS = ("random", "lhs", "sobol")
KEYS = {"draws", "seed", "sampler", "correlations"}
MAX_DRAWS = 10**9
DRAWS = 1000  # draws of a file that gives distributions but no `draws`


@dataclass(frozen=True)
class Design:
    """The [uncertainty] section: how many draws, the seed, the sampler, and rank correlations
    between named parameters (TOML paths)."""

    draws: int
    seed: int
    sampler: str = "lhs"
    correlations: tuple[tuple[str, str, float], ...] = field(default_factory=tuple)


def parse_design(raw: dict, source: str) -> Design:
    """The [uncertainty] table -> Design. Raises InputError for draws <= 0, an unknown sampler or key,
    a Sobol' design whose draws are not a power of 2, or a malformed correlation entry."""
    if not isinstance(raw, dict):
        raise InputError(source, "uncertainty", "expected a table")
    for key in raw:
        if key not in KEYS:
            raise InputError(source, f"uncertainty.{key}", f"unknown key; expected one of {', '.join(sorted(KEYS))}")
    draws, seed, sampler = raw.get("draws", DRAWS), raw.get("seed", 0), raw.get("sampler", "lhs")
    if isinstance(draws, bool) or not isinstance(draws, int) or not 0 < draws <= MAX_DRAWS:
        raise InputError(
            source, "uncertainty.draws", f"expected a whole number of draws from 1 to {MAX_DRAWS:g}, got {draws!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(source, "uncertainty.seed", "expected a whole number >= 0")
    if sampler not in SAMPLERS:
        raise InputError(source, "uncertainty.sampler", f"unknown sampler {sampler!r}; expected {', '.join(SAMPLERS)}")
    if sampler == "sobol" and draws & (draws - 1):
        raise InputError(source, "uncertainty.draws", "a Sobol' design needs a power of 2 draws (e.g. 1024)")
    return Design(draws, seed, sampler, _correlations(raw.get("correlations", []), source))


def _correlations(raw: object, source: str) -> tuple[tuple[str, str, float], ...]:
    if not isinstance(raw, list):
        raise InputError(source, "uncertainty.correlations", "expected a list of { between = [A, B], rank = r }")
    out = []
    for i, entry in enumerate(raw):
        field_ = f"uncertainty.correlations[{i}]"
        pair = entry.get("between") if isinstance(entry, dict) else None
        rank = entry.get("rank") if isinstance(entry, dict) else None
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise InputError(source, f"{field_}.between", "expected two parameter paths")
        if pair[0] == pair[1]:
            raise InputError(source, f"{field_}.between", "a parameter is correlated with itself")
        if isinstance(rank, bool) or not isinstance(rank, int | float) or not -1 < rank < 1:
            raise InputError(source, f"{field_}.rank", "expected a rank correlation strictly between -1 and 1")
        for j, (a, b, _) in enumerate(out):
            if {a, b} == set(pair):
                raise InputError(source, f"{field_}.between", f"the pair is correlated already in correlations[{j}]")
        out.append((pair[0], pair[1], float(rank)))
    return tuple(out)


def uniforms(design: Design, d: int) -> np.ndarray:
    """(draws, d) samples in (0, 1): scipy.stats.qmc's Latin hypercube or scrambled Sobol' sequence,
    or NumPy's PCG64 generator for "random"."""
    from scipy.stats import qmc  # noqa: PLC0415 - 0.3 s to import: only for files that draw

    rng = np.random.default_rng(design.seed)
    if design.sampler == "random" or d == 0:
        u = rng.random((design.draws, d))
    elif design.sampler == "lhs":
        u = qmc.LatinHypercube(d, seed=rng).random(design.draws)
    else:
        u = qmc.Sobol(d, scramble=True, seed=rng).random(design.draws)
    return np.clip(u, 1e-12, 1.0 - 1e-12, out=u)  # the quantile functions at 0 and 1 are infinite for some


def correlate(u: np.ndarray, rank: np.ndarray, source: str) -> np.ndarray:
    """Uniform samples whose Spearman rank correlations are `rank` (d x d), through a Gaussian copula:
    normal scores, the Pearson correlation 2 sin(pi r / 6) that gives rank correlation r between
    normals, a symmetric square root of it, and back to uniforms (scipy.stats.norm, scipy.linalg).

    Raises InputError where the matrix is not positive semi-definite.
    """
    import scipy.linalg  # noqa: PLC0415
    import scipy.stats  # noqa: PLC0415

    pearson = 2.0 * np.sin(np.pi * rank / 6.0)
    np.fill_diagonal(pearson, 1.0)
    values, vectors = scipy.linalg.eigh(pearson)
    if values.min() < -1e-10:
        raise InputError(
            source,
            "uncertainty.correlations",
            f"the correlation matrix is not positive semi-definite (smallest eigenvalue {values.min():.3g}): "
            "the correlations given contradict each other",
        )
    root = vectors @ np.diag(np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    z = scipy.stats.norm.ppf(u) @ root.T
    return np.clip(scipy.stats.norm.cdf(z), 1e-12, 1.0 - 1e-12)


def draw(distributions: list[Distribution], design: Design, source: str) -> dict[str, np.ndarray]:
    """Draws of every uncertain parameter, by path: (draws,) each, in the file's units.

    Raises InputError where a correlation names a path that carries no distribution.
    """
    paths = [d.path for d in distributions]
    u = uniforms(design, len(paths))
    if design.correlations:
        rank = np.eye(len(paths))
        for i, (a, b, r) in enumerate(design.correlations):
            for p in (a, b):
                if p not in paths:
                    raise InputError(source, f"uncertainty.correlations[{i}].between", f"{p!r} carries no distribution")
            rank[paths.index(a), paths.index(b)] = rank[paths.index(b), paths.index(a)] = r
        u = correlate(u, rank, source)
    columns = np.ascontiguousarray(u.T)  # each parameter's samples side by side in memory
    del u
    return {d.path: d.ppf(columns[j]) for j, d in enumerate(distributions)}
