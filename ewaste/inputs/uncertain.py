"""Uncertain parameters while a scenario file is parsed: each `{ dist = ... }` table becomes the
parameter's draws along the grid dimension `draw`.

Parsing runs twice: the first pass finds the distributions (and stands in their medians), the draws
are then made jointly (sampling.draw: the sampler and the correlations need them all at once), and
the second pass puts them in place.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError
from .distributions import OUTSIDE_RANGE, Distribution, check_range, parse_distribution
from .variables import Variable

DRAW = "draw"


class Uncertainty:
    """The distributions found while parsing (by TOML path), and their draws once made."""

    def __init__(self, draws: dict[str, np.ndarray] | None = None):
        self.found: dict[str, Distribution] = {}
        self.draws = draws

    def value(self, raw: dict, var: Variable, source: str, field: str, factor: float) -> xr.DataArray:
        """The draws of parameter `var` (canonical units: x `factor`) along `draw`; its median in the
        first pass. Raises InputError for a bad distribution or one that leaves the valid range."""
        dist = self._parse(raw, source, field)
        check_range(dist, factor, var.min, var.max, var.units, source)
        return self._values(dist, field, factor, var)

    def factor(self, raw: dict, series: xr.DataArray, var: Variable, source: str, field: str) -> xr.DataArray:
        """A series multiplied by a factor drawn from a distribution (`factor = { dist = ... }` in the
        series table). Raises InputError where the factor can be negative or take the series out of
        the valid range (beyond OUTSIDE_RANGE of its probability)."""
        dist = self._parse(raw, source, field)
        lo, hi = dist.quantile(OUTSIDE_RANGE), dist.quantile(1.0 - OUTSIDE_RANGE)
        low, high = float(series.min()), float(series.max())
        if lo < 0 or low * lo < var.min or high * hi > var.max:
            raise InputError(
                source,
                field,
                f"the factor ranges over [{lo:.4g}, {hi:.4g}]: it takes the series ({low:.4g} .. {high:.4g}) outside "
                f"the valid range [{var.min:g}, {var.max:g}]",
            )
        return series * self._values(dist, field, 1.0, None)

    def _parse(self, raw: dict, source: str, field: str) -> Distribution:
        if field in self.found:
            return self.found[field]
        dist = parse_distribution(raw, source, field)
        self.found[field] = dist
        return dist

    def _values(self, dist: Distribution, field: str, factor: float, var: Variable | None) -> xr.DataArray:
        if self.draws is None:
            return xr.DataArray(dist.quantile(0.5) * factor)
        x = self.draws[field] * factor
        if var is not None:  # at most OUTSIDE_RANGE of the probability lies outside: clipped
            np.clip(x, var.min, var.max, out=x)
        # a range index: compared in O(1) where the drawn parameters meet (an array index: O(draws) each)
        return xr.DataArray(x, dims=DRAW, coords={DRAW: pd.RangeIndex(x.size)})

    def record(self) -> dict[str, Any]:
        """The distributions as written, by TOML path (the grid's provenance)."""
        return {path: d.spec for path, d in self.found.items()}
