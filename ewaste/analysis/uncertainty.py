"""Uncertainty ranges: quantiles and the mean of results over their `draw` dimension."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import xarray as xr

DRAW = "draw"
QUANTILES = (0.05, 0.5, 0.95)
# From this many draws on, each lane's order statistics come from nested single partitions (below);
# fewer draws are reduced by numpy.quantile over all lanes at once.
LANE_DRAWS = 65_536


def has_draws(results: xr.Dataset) -> bool:
    """Whether results hold draws of uncertain parameters."""
    return DRAW in results.dims


def quantiles(results: xr.Dataset, q: Sequence[float] = QUANTILES, keep: Sequence[str] | None = None) -> xr.Dataset:
    """The q-quantiles (dimension `quantile`) and the mean (`<name>_mean`) over the draws of each
    result variable that has them (numpy's linear method, as `xarray.Dataset.quantile`: the same
    numbers to the last bit); variables without draws and the drawn inputs (`drawn_*`) are kept as
    they are. `keep`: only these variables.

    Raises ValueError for a quantile outside [0, 1] (the command line checks it first).
    """
    if any(not 0.0 <= x <= 1.0 for x in q):
        raise ValueError(f"quantiles lie in [0, 1], got {list(q)}")
    names = list(keep) if keep is not None else list(results.data_vars)
    drawn = [n for n in names if DRAW in results[n].dims and not str(n).startswith("drawn_")]
    buffers = threading.local()  # one scratch lane per thread: partitions run in place, no fresh pages
    # numpy's partition releases the GIL: the variables are reduced on every core
    with ThreadPoolExecutor(max(1, min(len(drawn), os.cpu_count() or 1))) as pool:
        stats = pool.map(lambda name: over_draws(results[name], q, buffers), drawn)
        done = dict(zip(drawn, stats, strict=True))
    out: dict[str, xr.DataArray] = {}
    for name in names:
        if name in done:
            out[name], out[f"{name}_mean"] = done[name]
        else:
            out[name] = results[name]
    reduced = "quantiles " + ", ".join(f"{x:g}" for x in q) + " and the mean over the draws"
    return xr.Dataset(out, attrs={**results.attrs, "draws_reduced_to": reduced})


def over_draws(
    da: xr.DataArray, q: Sequence[float] = QUANTILES, buffers: threading.local | None = None
) -> tuple[xr.DataArray, xr.DataArray]:
    """The q-quantiles of `da` over `draw` (dimension `quantile` first, then da's others) and its mean
    over `draw`, both with da's attributes, as xarray's `quantile(skipna=False)` (numpy's linear
    method) and `mean`: a NaN in a lane gives NaN. From LANE_DRAWS draws on they are taken lane by
    lane (`lane_statistics`; `buffers`: a thread's scratch lane, kept between calls): the same
    quantiles to the last bit, the mean summed in another order."""
    if da.sizes[DRAW] < LANE_DRAWS:  # skipna=False: numpy.quantile partitions instead of sorting
        return (
            da.quantile(list(q), dim=DRAW, skipna=False).assign_attrs(da.attrs),
            da.mean(DRAW, skipna=False).assign_attrs(da.attrs),
        )
    n, others = da.sizes[DRAW], [d for d in da.dims if d != DRAW]
    moved = np.moveaxis(da.values, da.dims.index(DRAW), -1)  # a view: each lane is copied into scratch
    scratch = getattr(buffers, "lane", None)
    if scratch is None or scratch.dtype != moved.dtype or scratch.size != n:
        scratch = np.empty(n, moved.dtype)
        if buffers is not None:
            buffers.lane = scratch
    stats = [lane_statistics(moved[i], q, scratch) for i in np.ndindex(moved.shape[:-1])]
    shape = moved.shape[:-1]
    coords = {k: v for k, v in da.coords.items() if DRAW not in v.dims}
    values = np.stack([s[0] for s in stats], axis=-1).reshape((len(q), *shape))
    scalar = [k for k, v in coords.items() if not v.ndim]  # dropped by xarray's quantile, kept by its mean
    quantile = xr.DataArray(values, dims=("quantile", *others), coords=coords, attrs=da.attrs, name=da.name)
    means = np.reshape([s[1] for s in stats], shape)
    mean = xr.DataArray(means, dims=others, coords=coords, attrs=da.attrs, name=da.name)
    quantile = quantile.drop_vars(scalar)
    return quantile.assign_coords(quantile=np.asarray(q, dtype=float)), mean


def lane_statistics(
    lane: np.ndarray, q: Sequence[float], scratch: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """numpy.quantile(lane, q) (linear method), (len(q),) float64, and numpy.mean(lane) for 1-D
    `lane` of n values.

    numpy partitions once for all the order statistics asked for, which for six of them costs about
    seven single partitions; here each is a single partition of the part of the lane that the
    previous ones left between them (the median's first, then each half), about twice one partition
    in all. `scratch`: a buffer of n values of the lane's dtype to partition in (else a copy).
    The interpolation is numpy.quantile's linear method: virtual index (n - 1) q, and between the two
    order statistics around it a + (b - a) t, or b - (b - a) (1 - t) from t = 0.5 on, as numpy does.
    """
    n = lane.size
    if scratch is None:
        work = lane.copy()
    else:
        work = scratch
        np.copyto(work, lane)
    mean = float(work.mean())  # before the partitions: the order numpy.mean sums a contiguous lane in
    if np.isnan(mean) and np.isnan(work).any():
        return np.full(len(q), np.nan), mean
    at = (n - 1) * np.asarray(q, dtype=float)
    below = np.floor(at).astype(np.intp)
    above = np.minimum(below + 1, n - 1)
    _select(work, sorted({*below.tolist(), *above.tolist()}), 0)
    a, b, t = work[below], work[above], at - below
    d = b - a
    return np.where(t >= 0.5, b - d * (1 - t), a + d * t).astype(float), mean


def _select(work: np.ndarray, ks: list[int], offset: int) -> None:
    """Partition `work` (a view starting at index `offset` of the whole lane) in place so that each
    index in ks (sorted, absolute) holds the value it would hold sorted."""
    if not ks:
        return
    mid = len(ks) // 2
    k = ks[mid] - offset
    if k in (0, work.size - 1):  # the segment's least or greatest value (the neighbour of one placed)
        i = int(work.argmin() if k == 0 else work.argmax())
        work[k], work[i] = work[i], work[k]
    else:
        work.partition(k)
    _select(work[:k], ks[:mid], offset)
    _select(work[k + 1 :], ks[mid + 1 :], offset + k + 1)
