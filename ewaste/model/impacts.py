"""From fleet flows to impacts: e-waste by material and metal, the recycling chain's destinations,
electricity and emissions (all linear in the cohort-resolved flows)."""

from __future__ import annotations

from collections.abc import Callable

import xarray as xr

from ..errors import BalanceError
from ..inputs.timeaxis import STEPS_PER_YEAR
from .fleet import BALANCE_RTOL, PCB

HOURS_PER_YEAR = 8760.0


def impacts(f: xr.Dataset, grid: xr.Dataset) -> xr.Dataset:
    """E-waste, recycling chain and energy from the fleet flows (per step).

    f: the fleets' flows (`fleet.run_fleet_rules`): inflow_*, stock_*, outflow_* by attribute (units,
    mass in kg, power in kW, material and metal in kg), in_service_units and in_service_power (the
    average over each step). Returns per-step variables with `units`, `long_name` and `kind` ("flow",
    summed over a year; "stock", taken at its end; "average", averaged over it; "ratio").
    """
    dt = 1.0 / STEPS_PER_YEAR[grid.attrs["step"]]
    out = xr.Dataset()

    def put(name: str, da: xr.DataArray, units: str, long_name: str, kind: str = "flow") -> None:
        out[name] = da.assign_attrs(units=units, long_name=long_name, kind=kind)

    put("stock_units", f["stock_units"], "unit", "units in service at the end of the step", "stock")
    put("in_service_units", f["in_service_units"], "unit", "units in service, time-weighted average", "average")
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
    _destinations(f, grid, put)
    # electricity of the units in service on average over the step (not at its end: short lives retire
    # units within the step they enter)
    kwh = f["in_service_power"] * grid["utilisation"] * grid["pue"] * HOURS_PER_YEAR * dt
    put("energy", kwh * 1e-9, "TWh", "electricity used by the units in service, facility overhead (PUE) included")
    put(
        "emissions",
        kwh * grid["grid_intensity"] * 1e-12,
        "MtCO2e",
        "emissions of the electricity used (use phase, location-based)",
    )
    out["negative_inflow_steps"] = f["negative_inflow_steps"].assign_attrs(
        units="1",
        long_name="steps in which the stock-driven inflow came out negative "
        "(corrected or allowed: see the attribute negative_inflow)",
    )
    return out


def _destinations(f: xr.Dataset, grid: xr.Dataset, put: Callable[..., None]) -> None:
    """One ledger of the recycling chain: every tonne generated, by material and by circuit-board
    metal, ends in exactly one destination (recovered, or disposed: not collected or lost in processing).

    Circuit boards: their metals (pcb_metal_content) are recovered with the metal yields, the rest of
    the board with the yields given for circuit_boards; the boards' recovered mass is the sum of both.
    """
    generated = f["outflow_material"] * 1e-3  # kg -> t, by material
    rate = grid["collection_rate"]
    recovered = generated * rate * grid["preprocessing_yield"] * grid["endprocessing_yield"]
    if "outflow_metal" in f:
        metal = f["outflow_metal"] * 1e-3
        metal_recovered = metal * rate * grid["metal_preprocessing_yield"] * grid["metal_endprocessing_yield"]
        board = {"material": PCB}
        rest = generated.sel(board) - metal.sum("metal", skipna=False)
        rest_yield = grid["preprocessing_yield"].sel(board) * grid["endprocessing_yield"].sel(board)
        boards = metal_recovered.sum("metal", skipna=False) + rest * rate * rest_yield
        recovered = recovered.where(recovered["material"] != PCB, boards).transpose(*recovered.dims, ...)
        put("metal_in_ewaste", metal, "t", "circuit-board metal in the e-waste generated")
        put("metal_recovered", metal_recovered, "t", "circuit-board metal recovered")
        put("metal_disposed", metal - metal_recovered, "t", "circuit-board metal disposed (not collected, or lost)")
    total = generated.sum("material", skipna=False)
    collected = total * rate
    recovered_total = recovered.sum("material", skipna=False)
    put("ewaste_generated", total, "t", "e-waste generated (retired units)")
    put("ewaste_by_material", generated, "t", "e-waste generated, by material")
    put("collected", collected, "t", "e-waste collected for formal recycling")
    put("not_collected", total - collected, "t", "e-waste not collected (disposed without formal recycling)")
    put("recovered_by_material", recovered, "t", "material recovered, by material (boards: with their metals)")
    put("recovered", recovered_total, "t", "material recovered")
    put("processing_losses", collected - recovered_total, "t", "collected e-waste lost in pre- and end-processing")
    put("disposed", total - recovered_total, "t", "e-waste disposed (not collected, or lost in processing)")
    put("disposed_by_material", generated - recovered, "t", "e-waste disposed, by material")


def check_destinations(res: xr.Dataset, suffix: str = "") -> None:
    """Every tonne generated ends in exactly one destination, by material and by metal, and each
    destination lies between 0 and what it comes from. Raises BalanceError otherwise (a model bug, or
    metals heavier than the boards that hold them)."""

    def v(name: str) -> xr.DataArray:
        return res[name + suffix]

    gen = v("ewaste_generated")
    scale = float(abs(gen).max()) or 1.0
    pairs = [
        (v("recovered") + v("disposed"), gen),
        (v("recovered_by_material") + v("disposed_by_material"), v("ewaste_by_material")),
        (v("collected") + v("not_collected"), gen),
    ]
    if "metal_in_ewaste" + suffix in res:
        pairs.append((v("metal_recovered") + v("metal_disposed"), v("metal_in_ewaste")))
    for lhs, rhs in pairs:
        err = float(abs(lhs - rhs).max())
        if not err <= BALANCE_RTOL["float64"] * scale:
            raise BalanceError(f"mass balance of e-waste destinations violated (relative error {err / scale:.3g})")
    parts = [("recovered_by_material", "ewaste_by_material"), ("disposed_by_material", "ewaste_by_material")]
    parts += [("metal_disposed", "metal_in_ewaste")] if "metal_in_ewaste" + suffix in res else []
    for part, whole in parts:  # each destination between 0 and what it comes from (negative flows allowed)
        p, w, tol = v(part), v(whole), BALANCE_RTOL["float64"] * scale
        if bool((((p * w < 0) & (abs(p) > tol)) | (abs(p) - abs(w) > tol)).any()):
            raise BalanceError(f"{part} lies outside 0..{whole}: a destination holds more than it comes from")
