"""Full-size intermediates scaled in their own memory where nothing else reads them.

Every new full-size array costs the first touch of its pages (0.7-1.4 GB/s on the development
machine: 25 MB and 20-35 ms an array at 1e5 scenarios x 31 steps in a fresh process), so where a
product is the only reader of an intermediate it writes into it instead of into a new array: the
same multiplication, the same numbers (tests/test_model.py, tests/test_host.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import xarray as xr


def owned(a: Any, others: Iterable[Any]) -> bool:
    """Whether `a` is a writeable float64 NumPy array that shares no memory with any of `others`
    (arrays or None; `np.may_share_memory`, bounds only: a doubt counts as shared)."""
    if not (isinstance(a, np.ndarray) and a.dtype == np.float64 and a.flags.writeable):
        return False
    return not any(isinstance(o, np.ndarray) and np.may_share_memory(a, o) for o in others)


def times(da: xr.DataArray, factor: xr.DataArray | float, others: Iterable[Any]) -> xr.DataArray:
    """da * factor, written into da's own array where it is `owned` (apart from `others`, the arrays
    that are read later) and the product keeps da's shape and labels (factor's dimensions are da's,
    with the same coordinates); else a new array. Raises what `da * factor` raises."""
    if _within(da, factor) and owned(da.data, others):
        da *= factor
        return da
    return da * factor


def _within(da: xr.DataArray, factor: Any) -> bool:
    """Whether factor's dimensions are among da's, each indexed alike (no alignment needed)."""
    if not isinstance(factor, xr.DataArray):
        return True
    if not set(factor.dims) <= set(da.dims):
        return False
    return all(da.indexes[d].equals(factor.indexes[d]) for d in factor.indexes if d in da.indexes)


def arrays(ds: xr.Dataset, *skip: str) -> list[Any]:
    """The arrays of a Dataset's data variables but `skip`: what `times` must not write over."""
    return [v.data for k, v in ds.data_vars.items() if k not in skip]
