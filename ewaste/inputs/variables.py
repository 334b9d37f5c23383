"""The variables table (package data): units, valid range, meaning and defaults of every parameter."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Variable:
    """One parameter a scenario grid may hold."""

    name: str
    units: str
    long_name: str
    scope: str  # "fleet" or "global"
    read_by: str  # "cohort", "time", "history" or "none"
    min: float
    max: float
    accept: dict[str, float] = field(default_factory=dict)
    extra_dim: str | None = None
    default: float | None = None
    source: str | None = None
    status: str | None = None

    def factor(self, units: str) -> float | None:
        """Factor converting `units` to the canonical unit, or None if `units` is not accepted."""
        if units == self.units:
            return 1.0
        return self.accept.get(units)


@cache
def table() -> dict[str, Variable]:
    """All variables, by name."""
    text = resources.files("ewaste.data").joinpath("variables.toml").read_text()
    return {name: Variable(name=name, **spec) for name, spec in tomllib.loads(text).items()}


def cf_attrs(name: str, units: str | None = None) -> dict[str, str]:
    """CF attributes (`units`, `long_name`) of a grid variable."""
    var = table()[name]
    return {"units": units or var.units, "long_name": var.long_name}


RESULT_NAMES = (
    "stock_units",
    "in_service_units",
    "inflow_units",
    "outflow_units",
    "stock_mass",
    "inflow_mass",
    "installed_capacity",
    "capacity_demand_ratio",
    "ewaste_generated",
    "ewaste_by_material",
    "collected",
    "not_collected",
    "recovered",
    "recovered_by_material",
    "processing_losses",
    "disposed",
    "disposed_by_material",
    "metal_in_ewaste",
    "metal_recovered",
    "metal_disposed",
    "energy",
    "emissions",
    "negative_inflow_steps",
)
"""Per-step result variables; each also appears with _annual, _cumulative, _target, _cumulative_target."""


@cache
def reserved_names() -> frozenset[str]:
    """Names a sweep dimension may not take: grid variables, coordinates and result variables."""
    suffixes = ("", "_annual", "_cumulative", "_target", "_cumulative_target")
    results = {name + suffix for name in RESULT_NAMES for suffix in suffixes}
    grid = {
        "time",
        "history",
        "fleet",
        "material",
        "metal",
        "lag",
        "year",
        "period",
        "driver",
        "lifetime_type",
        "description",
        "capacity_unit",
        "replacement",
        "draw",
        "quantile",
        "reduction",
    }
    return frozenset(results | grid | set(table()))
