"""From fleet flows to impacts: e-waste by material and metal, the recycling chain's destinations,
electricity and emissions (all linear in the cohort-resolved flows)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import xarray as xr

from ..errors import BalanceError
from ..inputs.timeaxis import STEPS_PER_YEAR
from .fleet import BALANCE_RTOL, PCB
from .outputs import RESULTS
from .scratch import arrays, times

HOURS_PER_YEAR = 8760.0


def impacts(
    f: xr.Dataset, grid: xr.Dataset, results: Sequence[str] = tuple(RESULTS), consume: bool = False
) -> xr.Dataset:
    """E-waste, recycling chain and energy from the fleet flows (per step): the `results` asked for.

    f: the fleets' flows (`fleet.run_fleet_rules`): inflow_*, stock_*, outflow_* and in_service_* by
    attribute (units, mass in kg, power in kW, material and metal in kg); in_service_* are averages
    over each step. Returns per-step variables with `units`, `long_name` and `kind` ("flow", summed over
    a year; "stock", taken at its end; "average", averaged over it; "ratio").
    consume: the flows are the caller's intermediates, read no more: a flow converted to a result
    (kg -> t, kW -> kWh) is converted in its own memory where no other array shares it (`scratch.times`).
    """
    dt = 1.0 / STEPS_PER_YEAR[grid.attrs["step"]]
    want = set(results)
    out: dict[str, xr.DataArray] = {}  # one Dataset at the end: each assignment to one aligns them all

    def scaled(name: str, factor: Any) -> xr.DataArray:  # f[name] * factor
        return times(f[name], factor, [*arrays(f, name), *arrays(grid)]) if consume else f[name] * factor

    def put(name: str, make: Callable[[], xr.DataArray], units: str, long_name: str, kind: str = "flow") -> None:
        if name in want:
            out[name] = make().assign_attrs(units=units, long_name=long_name, kind=kind)

    put("stock_units", lambda: f["stock_units"], "unit", "units in service at the end of the step", "stock")
    put("in_service_units", lambda: f["in_service_units"], "unit", "units in service, time-weighted average", "average")
    put("inflow_units", lambda: f["inflow_units"], "unit", "units put in service in the step")
    put("outflow_units", lambda: f["outflow_units"], "unit", "units retired in the step")
    if "installed_capacity" in f:
        what = "installed capacity at the end of the step, in the fleet's capacity_unit (NaN for fleets without one)"
        put("installed_capacity", lambda: f["installed_capacity"], "capacity", what, "stock")
    if "capacity_demand_ratio" in f:
        what = "installed capacity / capacity demanded at the end of the step"
        put("capacity_demand_ratio", lambda: f["capacity_demand_ratio"], "1", what, "ratio")
    if "in_service_gpus" in f or "stock_gpus" in f or "outflow_gpus" in f:
        put("stock_gpus", lambda: f["stock_gpus"], "GPU", "GPUs in service at the end of the step", "stock")
        put("in_service_gpus", lambda: f["in_service_gpus"], "GPU", "GPUs in service, time-weighted average", "average")
        put("outflow_gpus", lambda: f["outflow_gpus"], "GPU", "GPUs retired in the step")
        put("gpu_years", lambda: f["in_service_gpus"] * dt, "GPU yr", "GPU-years in service in the step")
    if "in_service_capacity" in f:  # units "capacity": aggregate.label_capacity names the fleets' unit
        what = "capacity in service, time-weighted average, in the fleet's capacity_unit"
        put("in_service_capacity", lambda: f["in_service_capacity"], "capacity", what, "average")
        what = "capacity-years in service in the step (e.g. PFLOP/s x yr), in the fleet's capacity_unit"
        put("capacity_years", lambda: f["in_service_capacity"] * dt, "capacity yr", what)
    what = "mass of the units in service at the end of the step"
    put("stock_mass", lambda: scaled("stock_mass", 1e-3), "t", what, "stock")
    put("inflow_mass", lambda: scaled("inflow_mass", 1e-3), "t", "mass of the units put in service")
    if "reused_mass" in f:
        what = "retired units passed on to a second life in another fleet (a cascade): not e-waste"
        put("reused", lambda: scaled("reused_mass", 1e-3), "t", what)
    _destinations(f, grid, want, put, scaled)
    if want & {"energy", "emissions"}:
        # electricity of the units in service on average over the step (not at its end: short lives
        # retire units within the step they enter)
        kwh = scaled("in_service_power", grid["utilisation"] * grid["pue"] * HOURS_PER_YEAR * dt)
        emissions = kwh * (grid["grid_intensity"] * 1e-12) if "emissions" in want else None
        what = "electricity used by the units in service, facility overhead (PUE) included"
        put("energy", lambda: times(kwh, 1e-9, ()), "TWh", what)  # kWh -> TWh in place: kwh is read no more
        what = "emissions of the electricity used (use phase, location-based)"
        put("emissions", lambda: emissions, "MtCO2e", what)
    out["negative_inflow_steps"] = f["negative_inflow_steps"].assign_attrs(
        units="1",
        long_name="steps in which the stock-driven inflow came out negative "
        "(corrected or allowed: see the attribute negative_inflow)",
    )
    return xr.Dataset(out)


def _destinations(
    f: xr.Dataset, grid: xr.Dataset, want: set[str], put: Callable[..., None], scaled: Callable[..., xr.DataArray]
) -> None:
    """One ledger of the recycling chain: every tonne generated, by material and by circuit-board
    metal, ends in exactly one destination (recovered, or disposed: not collected or lost in processing).

    Circuit boards: their metals (pcb_metal_content) are recovered with the metal yields, the rest of
    the board with the yields given for circuit_boards; the boards' recovered mass is the sum of both.
    """
    rate = grid["collection_rate"]
    total = scaled("outflow_mass", 1e-3) if "outflow_mass" in f else None  # kg -> t: the materials' sum, unbuilt
    if total is not None:
        put("ewaste_generated", lambda: total, "t", "e-waste generated (retired units)")
        put("collected", lambda: total * rate, "t", "e-waste collected for formal recycling")
        what = "e-waste not collected (disposed without formal recycling)"
        put("not_collected", lambda: total * (1.0 - rate), "t", what)
    metal = scaled("outflow_metal", 1e-3) if "outflow_metal" in f else None
    if metal is not None:
        metal_recovered = metal * (rate * grid["metal_preprocessing_yield"] * grid["metal_endprocessing_yield"])
        put("metal_in_ewaste", lambda: metal, "t", "circuit-board metal in the e-waste generated")
        put("metal_recovered", lambda: metal_recovered, "t", "circuit-board metal recovered")
        what = "circuit-board metal disposed (not collected, or lost)"
        put("metal_disposed", lambda: metal - metal_recovered, "t", what)
    if "outflow_material" not in f:
        return
    generated = scaled("outflow_material", 1e-3)  # kg -> t, by material
    put("ewaste_by_material", lambda: generated, "t", "e-waste generated, by material")
    if not want & {"recovered", "recovered_by_material", "processing_losses", "disposed", "disposed_by_material"}:
        return
    recovered = generated * (rate * grid["preprocessing_yield"] * grid["endprocessing_yield"])
    if metal is not None:
        board = {"material": PCB}
        rest = generated.sel(board) - metal.sum("metal", skipna=False)
        rest_yield = grid["preprocessing_yield"].sel(board) * grid["endprocessing_yield"].sel(board)
        boards = metal_recovered.sum("metal", skipna=False) + rest * rate * rest_yield
        recovered = recovered.where(recovered["material"] != PCB, boards).transpose(*recovered.dims, ...)
    recovered_total = recovered.sum("material", skipna=False)
    what = "material recovered, by material (boards: with their metals)"
    put("recovered_by_material", lambda: recovered, "t", what)
    put("recovered", lambda: recovered_total, "t", "material recovered")
    what = "collected e-waste lost in pre- and end-processing"  # these two read `total` (outputs.RESULTS)
    put("processing_losses", lambda: total * rate - recovered_total, "t", what)
    put("disposed", lambda: total - recovered_total, "t", "e-waste disposed (not collected, or lost in processing)")
    put("disposed_by_material", lambda: generated - recovered, "t", "e-waste disposed, by material")


def check_destinations(res: xr.Dataset, suffix: str = "", precision: str = "float64") -> None:
    """What the recycling ledger does not hold by construction: the materials add up to the e-waste
    generated (the composition's shares sum to 1), and the boards' destinations lie between 0 and the
    boards (their metals are not heavier than they are). The other identities (recovered + disposed =
    generated, by material and by metal; collected + not collected = generated) hold by how they are
    computed (`_destinations`) and are tested. Raises BalanceError.

    precision: of the engine's arithmetic, which sets the tolerance (`fleet.BALANCE_RTOL`): in float32
    the materials of a fleet whose mass or composition changes by cohort are summed in the engine,
    apart from the total mass, and agree with it to float32's rounding only.
    """
    have = {str(name).removesuffix(suffix) for name in res.data_vars if str(name).endswith(suffix)}
    if {"ewaste_generated", "ewaste_by_material"} <= have:
        gen = res["ewaste_generated" + suffix]
        scale = float(abs(gen).max()) or 1.0
        err = float(abs(res["ewaste_by_material" + suffix].sum("material", skipna=False) - gen).max())
        if not err <= BALANCE_RTOL[precision] * scale:
            raise BalanceError(f"the materials do not add up to the e-waste (relative error {err / scale:.3g})")
    if {"ewaste_by_material", "disposed_by_material"} <= have and PCB in res["material"].values:
        whole, part = (res[n + suffix].sel(material=PCB) for n in ("ewaste_by_material", "disposed_by_material"))
        tol = BALANCE_RTOL[precision] * (float(abs(whole).max()) or 1.0)
        if bool((((part * whole < 0) & (abs(part) > tol)) | (abs(part) - abs(whole) > tol)).any()):
            raise BalanceError("the circuit boards' metals are heavier than the boards: check pcb_metal_content")
