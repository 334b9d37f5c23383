"""From fleet flows to impacts: e-waste by material and metal, the recycling chain's destinations,
electricity and emissions (all linear in the cohort-resolved flows)."""

from __future__ import annotations

import xarray as xr

from ..errors import BalanceError
from ..inputs.timeaxis import STEPS_PER_YEAR
from .fleet import BALANCE_RTOL

HOURS_PER_YEAR = 8760.0


def impacts(f: xr.Dataset, grid: xr.Dataset) -> xr.Dataset:
    """E-waste, recycling chain and energy from the fleet flows (per step)."""
    dt = 1.0 / STEPS_PER_YEAR[grid.attrs["step"]]
    out = xr.Dataset()

    def put(name: str, da: xr.DataArray, units: str, long_name: str, kind: str = "flow") -> None:
        out[name] = da.assign_attrs(units=units, long_name=long_name, kind=kind)

    put("stock_units", f["stock_units"], "unit", "units in service at the end of the step", "stock")
    put("inflow_units", f["inflow_units"], "unit", "units put in service in the step")
    put("outflow_units", f["outflow_units"], "unit", "units retired in the step")
    if "installed_capacity" in f:
        put(
            "installed_capacity",
            f["installed_capacity"],
            "capacity",
            "installed capacity at the end of the step, in the fleet's capacity_unit (NaN for fleets without one)",
            "stock",
        )
        put(
            "capacity_demand_ratio",
            f["capacity_demand_ratio"],
            "1",
            "installed capacity / capacity demanded at the end of the step",
            "ratio",
        )
    put("stock_mass", f["stock_mass"] * 1e-3, "t", "mass of the units in service at the end of the step", "stock")
    put("inflow_mass", f["inflow_mass"] * 1e-3, "t", "mass of the units put in service")
    generated = f["outflow_material"] * 1e-3  # kg -> t, by material
    rate = grid["collection_rate"]
    recovered = generated * rate * grid["preprocessing_yield"] * grid["endprocessing_yield"]
    put("ewaste_generated", generated.sum("material", skipna=False), "t", "e-waste generated (retired units)")
    put("ewaste_by_material", generated, "t", "e-waste generated, by material")
    put("collected", out["ewaste_generated"] * rate, "t", "e-waste collected for formal recycling")
    put(
        "not_collected",
        out["ewaste_generated"] - out["collected"],
        "t",
        "e-waste not collected (disposed without formal recycling)",
    )
    put("recovered_by_material", recovered, "t", "material recovered, by material")
    put("recovered", recovered.sum("material", skipna=False), "t", "material recovered")
    put(
        "processing_losses",
        out["collected"] - out["recovered"],
        "t",
        "collected e-waste lost in pre- and end-processing",
    )
    put(
        "disposed",
        out["not_collected"] + out["processing_losses"],
        "t",
        "e-waste disposed (not collected, or lost in processing)",
    )
    put("disposed_by_material", generated - recovered, "t", "e-waste disposed, by material")
    if "outflow_metal" in f:
        metal = f["outflow_metal"] * 1e-3
        metal_yield = grid["metal_preprocessing_yield"] * grid["metal_endprocessing_yield"]
        put("metal_in_ewaste", metal, "t", "circuit-board metal in the e-waste generated")
        put("metal_recovered", metal * rate * metal_yield, "t", "circuit-board metal recovered")
    kwh = f["stock_power"] * grid["utilisation"] * grid["pue"] * HOURS_PER_YEAR * dt
    put("energy", kwh * 1e-9, "TWh", "electricity used by the units in service, facility overhead (PUE) included")
    put("emissions", kwh * grid["grid_intensity"] * 1e-12, "MtCO2e", "emissions of the electricity used")
    out["negative_inflow_steps"] = f["negative_inflow_steps"].assign_attrs(
        units="1",
        long_name="steps in which the stock-driven inflow came out negative "
        "(corrected or allowed: see the attribute negative_inflow)",
    )
    return out


def check_destinations(res: xr.Dataset, suffix: str = "") -> None:
    """Every tonne generated ends in exactly one destination."""
    gen = res["ewaste_generated" + suffix]
    scale = float(abs(gen).max()) or 1.0
    for lhs, rhs in (
        (res["recovered" + suffix] + res["disposed" + suffix], gen),
        (
            res["recovered_by_material" + suffix] + res["disposed_by_material" + suffix],
            res["ewaste_by_material" + suffix],
        ),
        (res["collected" + suffix] + res["not_collected" + suffix], gen),
    ):
        err = float(abs(lhs - rhs).max())
        if not err <= BALANCE_RTOL["float64"] * scale:
            raise BalanceError(f"mass balance of e-waste destinations violated (relative error {err / scale:.3g})")

