"""Shapley values of a game given by its values on coalitions: exact over all 2^k coalitions, or
estimated from random permutations; pure NumPy, vectorised over any number of figures at once.

A coalition of the k players (here: groups of inputs that differ between two grid points) is coded as
the integer whose bit i is set when player i is in it, so coalition 0 is nobody and 2^k - 1 everyone.
`values` is an array (coalitions, figures): the game's value of each coalition for each figure.

Sources: L. S. Shapley (1953), "A value for n-person games", Contributions to the Theory of Games II,
Ann. Math. Stud. 28, 307-317 (the value and its efficiency: the values add up to v(N) - v(empty));
J. Castro, D. Gomez, J. Tejada (2009), "Polynomial calculation of the Shapley value based on sampling",
Comput. Oper. Res. 36(5), 1726-1730 (the permutation estimator).
"""

from __future__ import annotations

from math import comb

import numpy as np

MAX_PLAYERS = 62
"""Players a coalition code can hold (bits of a signed 64-bit integer, with room to spare)."""


def all_coalitions(k: int) -> np.ndarray:
    """Every coalition of `k` players: the codes 0 ... 2^k - 1, int64, shape (2^k,)."""
    return np.arange(2**k, dtype=np.int64)


def members(codes: np.ndarray, k: int) -> np.ndarray:
    """Which of `k` players each coalition holds: bool array (len(codes), k)."""
    return ((np.asarray(codes, dtype=np.int64)[:, None] >> np.arange(k, dtype=np.int64)) & 1).astype(bool)


def weights(k: int) -> np.ndarray:
    """Shapley's weight of a coalition of s players that a further player joins, s = 0 ... k-1:
    s! (k - s - 1)! / k! = 1 / (k * C(k-1, s)); shape (k,). They sum to 1 over the coalitions
    without a given player (Shapley 1953)."""
    return np.array([1.0 / (k * comb(k - 1, s)) for s in range(k)])


def exact(values: np.ndarray, k: int) -> np.ndarray:
    """Shapley values of `k` players from `values` (2^k, figures), indexed by coalition code.

    phi_i = sum over coalitions S without i of w(|S|) * (v(S + i) - v(S)) (Shapley 1953), written
    with the differences themselves, so that a player whose joining never changes a figure gets
    exactly 0 for it. Returns an array (k, figures); the values sum to v(N) - v(empty) up to
    rounding (about 1e-15 of the largest |v|).
    """
    values = np.asarray(values, dtype=float)
    if values.shape[0] != 2**k:
        raise ValueError(f"{values.shape[0]} coalition values for {k} players; expected {2**k}")
    codes = all_coalitions(k)
    size = members(codes, k).sum(axis=1)
    w = weights(k) if k else np.zeros(0)
    out = np.zeros((k,) + values.shape[1:])
    for i in range(k):
        without = codes[(codes >> i) & 1 == 0]
        gain = values[without | (1 << i)] - values[without]
        out[i] = np.tensordot(w[size[without]], gain, axes=1)
    return out


def permutations(k: int, n: int, seed: int) -> np.ndarray:
    """`n` random orders of `k` players from `numpy.random.default_rng(seed)`: int array (n, k)."""
    rng = np.random.default_rng(seed)
    return np.argsort(rng.random((n, k)), axis=1)


def prefixes(orders: np.ndarray) -> np.ndarray:
    """The coalitions each order passes through: codes (n, k + 1), from 0 (nobody) to 2^k - 1."""
    n, k = orders.shape
    joined = np.ones((n, k), dtype=np.int64) << orders.astype(np.int64)
    return np.concatenate([np.zeros((n, 1), dtype=np.int64), np.cumsum(joined, axis=1)], axis=1)


def sampled(values: np.ndarray, codes: np.ndarray, orders: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shapley values estimated from random orders of the players (Castro et al. 2009).

    values: (len(codes), figures), the game's value on the coalitions `codes` (which must hold every
    prefix of every order, see `prefixes`). orders: (n, k) from `permutations`.
    In each order, each player's marginal contribution is v(players before it and it) - v(players
    before it); the estimate is their mean over the orders, and its standard error their standard
    deviation / sqrt(n) (0 for one order). Within an order the contributions telescope to
    v(N) - v(empty), so the estimates add up to the total difference as exactly as the exact values do.
    Returns (estimates, standard errors), each (k, figures).
    """
    values = np.asarray(values, dtype=float)
    n, k = orders.shape
    codes = np.asarray(codes, dtype=np.int64)
    by_code = np.argsort(codes, kind="stable")
    pre = prefixes(orders)
    rows = by_code[np.minimum(np.searchsorted(codes[by_code], pre), len(codes) - 1)]  # (n, k + 1) rows
    if not np.array_equal(codes[rows], pre):
        raise ValueError("`codes` lacks a coalition that the orders pass through")
    step = values[rows[:, 1:]] - values[rows[:, :-1]]  # (n, k, figures): the j-th player to join
    gain = np.empty_like(step)
    np.put_along_axis(gain, orders.reshape(n, k, *([1] * (values.ndim - 1))), step, axis=1)  # by player
    estimate = gain.mean(axis=0)
    error = gain.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(estimate)
    return estimate, error
