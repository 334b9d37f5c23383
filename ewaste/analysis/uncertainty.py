"""Uncertainty ranges: quantiles and the mean of results over their `draw` dimension."""

from __future__ import annotations

from collections.abc import Sequence

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
    out: dict[str, xr.DataArray] = {}
    for name in names:
        da = results[name]
        if DRAW not in da.dims or str(name).startswith("drawn_"):
            out[name] = da
            continue
        # skipna=False: results are finite (runs check them), and np.quantile partitions instead of sorting
        out[name] = da.quantile(list(q), dim=DRAW, skipna=False).assign_attrs(da.attrs)
        out[f"{name}_mean"] = da.mean(DRAW, skipna=False).assign_attrs(da.attrs)
    reduced = "quantiles " + ", ".join(f"{x:g}" for x in q) + " and the mean over the draws"
    return xr.Dataset(out, attrs={**results.attrs, "draws_reduced_to": reduced})
