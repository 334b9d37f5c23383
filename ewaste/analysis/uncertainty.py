"""Uncertainty ranges: quantiles and the mean of results over their `draw` dimension."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import xarray as xr

DRAW = "draw"
QUANTILES = (0.05, 0.5, 0.95)


def has_draws(results: xr.Dataset) -> bool:
    """Whether results hold draws of uncertain parameters."""
    return DRAW in results.dims


def quantiles(results: xr.Dataset, q: Sequence[float] = QUANTILES, keep: Sequence[str] | None = None) -> xr.Dataset:
    """The q-quantiles (dimension `quantile`) and the mean (`<name>_mean`) over the draws of each
    result variable that has them (numpy's linear method, as `xarray.Dataset.quantile`); variables
    without draws and the drawn inputs (`drawn_*`) are kept as they are. `keep`: only these variables.

    Raises ValueError for a quantile outside [0, 1] (the command line checks it first).
    """
    if any(not 0.0 <= x <= 1.0 for x in q):
        raise ValueError(f"quantiles lie in [0, 1], got {list(q)}")
    names = list(keep) if keep is not None else list(results.data_vars)
    drawn = [n for n in names if DRAW in results[n].dims and not str(n).startswith("drawn_")]

    def reduce(name: str) -> tuple[xr.DataArray, xr.DataArray]:
        da = results[name]
        # skipna=False: results are finite (runs check them), and np.quantile partitions instead of sorting
        return (
            da.quantile(list(q), dim=DRAW, skipna=False).assign_attrs(da.attrs),
            da.mean(DRAW, skipna=False).assign_attrs(da.attrs),
        )

    # numpy's partition releases the GIL: the variables are reduced on every core
    with ThreadPoolExecutor(max(1, min(len(drawn), os.cpu_count() or 1))) as pool:
        done = dict(zip(drawn, pool.map(reduce, drawn), strict=True))
    out: dict[str, xr.DataArray] = {}
    for name in names:
        if name in done:
            out[name], out[f"{name}_mean"] = done[name]
        else:
            out[name] = results[name]
    reduced = "quantiles " + ", ".join(f"{x:g}" for x in q) + " and the mean over the draws"
    return xr.Dataset(out, attrs={**results.attrs, "draws_reduced_to": reduced})
