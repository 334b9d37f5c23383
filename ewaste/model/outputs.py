"""Which results a run computes: the result variables asked for (`outputs=`), and the fleet flows they
need, so that a run of e-waste and energy only never builds the tonnes by material."""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import InputError
from .embodied import EMBODIED
from .finance import MONEY

DESTINATIONS = ("outflow_material", "outflow_metal")  # the boards' recovered mass includes their metals
RESULTS: dict[str, tuple[str, ...]] = {
    "stock_units": ("stock_units",),
    "in_service_units": ("in_service_units",),
    "inflow_units": ("inflow_units",),
    "outflow_units": ("outflow_units",),
    "installed_capacity": ("installed_capacity",),
    "capacity_demand_ratio": ("capacity_demand_ratio",),
    "stock_mass": ("stock_mass",),
    "inflow_mass": ("inflow_mass",),
    "ewaste_generated": ("outflow_mass",),
    "reused": ("outflow_mass",),
    "ewaste_by_material": ("outflow_material",),
    "collected": ("outflow_mass",),
    "not_collected": ("outflow_mass",),
    "recovered_by_material": DESTINATIONS,
    "recovered": DESTINATIONS,
    "processing_losses": ("outflow_mass", *DESTINATIONS),
    "disposed": ("outflow_mass", *DESTINATIONS),
    "disposed_by_material": DESTINATIONS,
    "metal_in_ewaste": ("outflow_metal",),
    "metal_recovered": ("outflow_metal",),
    "metal_disposed": ("outflow_metal",),
    "energy": ("in_service_power",),
    "emissions": ("in_service_power",),
    "stock_gpus": ("stock_gpus",),
    "in_service_gpus": ("in_service_gpus",),
    "outflow_gpus": ("outflow_gpus",),
    "gpu_years": ("in_service_gpus",),
    "in_service_capacity": ("in_service_capacity",),
    "capacity_years": ("in_service_capacity",),
    **dict.fromkeys(MONEY, ()),
    "lease_cost": ("in_service_units",),
    **dict.fromkeys(EMBODIED, ()),
}
"""Per-step result variables (each also with _annual, _cumulative, _target, _cumulative_target) and the
fleet flows (`<stock|inflow|outflow|in_service>_<units|mass|power|material|metal|gpus|capacity>`) each is made
from (money and embodied emissions come from the cohort accounts, `finance.money`)."""
CAPITAL = (*MONEY, *EMBODIED)
SUFFIXES = ("_annual", "_cumulative", "_target", "_cumulative_target")


def resolve(outputs: Iterable[str] | None) -> tuple[str, ...]:
    """The per-step result variables to compute for `outputs` (None: all). A name may carry one of
    the aggregate suffixes (`energy_target` asks for `energy`).

    Raises InputError (field --outputs) for a name that is not a result.
    """
    if outputs is None:
        return tuple(RESULTS)
    wanted = []
    for name in outputs:
        base = next((name.removesuffix(s) for s in SUFFIXES if name.endswith(s)), name)
        if base not in RESULTS:
            raise InputError(None, "--outputs", f"unknown result {name!r}; results are {', '.join(RESULTS)}")
        if base not in wanted:
            wanted.append(base)
    return tuple(wanted)


def flows_needed(results: Iterable[str]) -> set[str]:
    """The fleet flows the per-step `results` are made from."""
    return {flow for name in results for flow in RESULTS[name]}
