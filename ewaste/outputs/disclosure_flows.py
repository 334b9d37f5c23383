"""The reporting year's e-waste by fleet, material, stream and operation (t), read from results: what the
disclosure tables add up.

Streams are where the model sends each tonne of e-waste generated (docs/model.md): `recovered`
(material recovered after pre- and end-processing of formally collected e-waste), `processing_losses`
(collected, not recovered), `not_collected`, and, only where the results carry them, `reused` and
`refurbished` (counted only if part of the e-waste balance; units passed on without being discarded,
such as a cascade into another fleet, are not waste). Each stream goes to the operations of GRI
306-4 / 306-5: recovered -> recycling; reused -> preparation for reuse; refurbished -> other
recovery (GRI 306-4 guidance: refurbishment and repurposing); processing losses and not collected ->
the disposal operations in the shares of `ewaste/data/disposal_routes.toml`. Not-collected e-waste
never reaches recycling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..errors import InputError
from .disclosure_data import DISPOSAL, disposal_routes

STREAMS = ("reused", "refurbished", "recovered", "processing_losses", "not_collected")
OPERATIONS = ("prep_reuse", "recycling", "other_recovery", *DISPOSAL)  # GRI 306-4-b-i..iii, 306-5-b-i..iv
DIVERTED = OPERATIONS[:3]
# result variables read as preparation for reuse / other recovery, if the results carry one of them
REUSE_VARIABLES = {"reused": ("reused", "prepared_for_reuse"), "refurbished": ("refurbished", "repurposed")}
NOT_SWEEP = {"fleet", "time", "year", "material", "metal", "draw", "quantile"}


def reporting_year(results: xr.Dataset, year: int | None, source: str | None) -> int:
    """The year to report: `year`, or the results' target year for None.

    Raises InputError (field `--year`) for a year the results do not hold.
    """
    target = int(results.attrs.get("target_year", 0))
    year = target if year is None else int(year)
    if "year" in results.coords:
        years = [int(y) for y in results["year"].values]
        if year not in years:
            raise InputError(source, "--year", f"{year} is outside the results ({years[0]}-{years[-1]})")
    elif year != target:
        raise InputError(source, "--year", f"these summary results hold the target year {target} only")
    return year


def annual(results: xr.Dataset, name: str, year: int, source: str | None) -> xr.DataArray:
    """A flow in `year`: `<name>_annual` at that year, or `<name>_target` in summary results (t/yr or TWh/yr).

    Raises InputError naming the variable if the results hold neither (a run limited by --outputs).
    """
    if f"{name}_annual" in results:
        return results[f"{name}_annual"].sel(year=year, drop=True)
    if f"{name}_target" in results and year == int(results.attrs.get("target_year", -1)):
        return results[f"{name}_target"]
    raise InputError(source, name, "the results do not hold this variable: run the scenario with every output")


def _bare(array: xr.DataArray) -> xr.DataArray:
    """A copy without attributes (units change on the way to the tables)."""
    array = array.copy()
    array.attrs = {}
    return array


def sweep_dims(array: xr.DataArray | xr.Dataset) -> list[str]:
    """The sweep dimensions of a variable or of results: every dimension but fleet, time, year, material,
    metal, draw and quantile."""
    return [d for d in array.dims if d not in NOT_SWEEP]


def _not_collected(results: xr.Dataset, year: int, by_material: xr.DataArray, source: str | None) -> xr.DataArray:
    """E-waste not collected, by material (t/yr): each step's e-waste by material times that step's
    not-collected share of the e-waste generated (`not_collected` / `ewaste_generated`, the collection
    rate's complement: docs/model.md), summed over the steps of the year. Summary results have no steps:
    there the year's shares are used."""
    per_step = {"ewaste_by_material", "not_collected", "ewaste_generated"}
    if per_step <= set(results.data_vars) and "time" in results.dims:
        in_year = np.floor(results["time"].values + 1e-9).astype(int) == year
        steps = results[sorted(per_step)].isel(time=in_year)
        generated = steps["ewaste_generated"]
        share = (steps["not_collected"] / generated.where(generated > 0)).fillna(0.0)
        return (steps["ewaste_by_material"] * share).sum("time")
    generated = annual(results, "ewaste_generated", year, source)
    share = (annual(results, "not_collected", year, source) / generated.where(generated > 0)).fillna(0.0)
    return by_material * share


@dataclass(frozen=True)
class ReuseVariable:
    """A result variable read for a reuse stream: its name, whether it is part of the e-waste balance
    (`ewaste_generated` = recovered + disposed + it: counted as waste) or outside it (units passed on
    without being discarded, e.g. a cascade into another fleet: not waste), and its mass by fleet (t/yr)."""

    name: str
    inside: bool
    mass: xr.DataArray


def _inside_balance(results: xr.Dataset, mass: xr.DataArray, candidate: str) -> bool:
    """Whether a reuse variable is part of the e-waste: e-waste generated = recovered + disposed + it, over
    every year the results hold (to 1e-9 of the largest e-waste), and not already recovered + disposed."""
    suffix = "_annual" if f"{candidate}_annual" in results else "_target"
    generated = results[f"ewaste_generated{suffix}"]
    rest = results[f"recovered{suffix}"] + results[f"disposed{suffix}"]
    mass = results[f"{candidate}{suffix}"]
    mass = mass.sum("material") if "material" in mass.dims else mass
    tolerance = 1e-9 * max(float(abs(generated).max()), 1.0)
    within = float(abs(generated - rest - mass).max()) <= tolerance
    return within and float(abs(generated - rest).max()) > tolerance


def _reuse(
    results: xr.Dataset, year: int, by_material: xr.DataArray, stream: str
) -> tuple[xr.DataArray, ReuseVariable | None]:
    """The mass of a reuse stream counted as waste, by material (t/yr; 0 if absent or outside the e-waste
    balance), and the result variable read (None if the results carry none, in tonnes).

    A variable without a material dimension is split like the fleet's e-waste generated that year."""
    for name in REUSE_VARIABLES[stream]:
        for candidate in (f"{name}_by_material", name):
            try:
                mass = annual(results, candidate, year, None)
            except InputError:
                continue
            if mass.attrs.get("units") not in ("t/yr", "t"):
                continue
            per_fleet = _bare(mass.sum("material") if "material" in mass.dims else mass)
            if not _inside_balance(results, mass, candidate):
                return xr.zeros_like(by_material), ReuseVariable(candidate, False, per_fleet)
            if "material" not in mass.dims:
                total = by_material.sum("material")
                share = (by_material / total.where(total > 0)).fillna(1.0 / by_material.sizes["material"])
                mass = mass * share
            return mass, ReuseVariable(candidate, True, per_fleet)
    return xr.zeros_like(by_material), None


def stream_masses(
    results: xr.Dataset, year: int, source: str | None
) -> tuple[xr.DataArray, dict[str, ReuseVariable | None]]:
    """The year's e-waste by fleet, material and stream (t/yr; dimension `stream` of STREAMS, plus the
    sweep and draw dimensions the flows carry), and the result variables read for the reuse streams.

    recovered = `recovered_by_material`; not_collected as in `_not_collected`; processing_losses =
    `disposed_by_material` - not_collected (disposed = not collected + processing losses, docs/outputs.md);
    tiny negatives of floating-point cancellation are set to 0. Raises InputError for missing variables.
    """
    by_material = annual(results, "ewaste_by_material", year, source)
    recovered = annual(results, "recovered_by_material", year, source)
    disposed = annual(results, "disposed_by_material", year, source)
    not_collected = _not_collected(results, year, by_material, source)
    losses = (disposed - not_collected).clip(min=0.0)
    reused, reused_from = _reuse(results, year, by_material, "reused")
    refurbished, refurbished_from = _reuse(results, year, by_material, "refurbished")
    parts = {
        "reused": reused,
        "refurbished": refurbished,
        "recovered": recovered,
        "processing_losses": losses,
        "not_collected": not_collected.clip(min=0.0),
    }
    parts = xr.broadcast(*parts.values())
    masses = xr.concat(parts, dim=xr.DataArray(list(STREAMS), dims="stream", name="stream"), coords="minimal")
    return _bare(masses), {"reused": reused_from, "refurbished": refurbished_from}


def operation_shares() -> xr.DataArray:
    """Share of each stream's mass going to each operation (dimensions stream x operation; rows sum to 1):
    reused -> prep_reuse, refurbished -> other_recovery, recovered -> recycling, processing losses and
    not collected -> the disposal operations in the shares of `ewaste/data/disposal_routes.toml`."""
    matrix = np.zeros((len(STREAMS), len(OPERATIONS)))
    direct = {"reused": "prep_reuse", "refurbished": "other_recovery", "recovered": "recycling"}
    for stream, operation in direct.items():
        matrix[STREAMS.index(stream), OPERATIONS.index(operation)] = 1.0
    for stream, (shares, _, _) in disposal_routes().items():
        for operation, share in shares.items():
            matrix[STREAMS.index(stream), OPERATIONS.index(operation)] = share
    return xr.DataArray(
        matrix, dims=("stream", "operation"), coords={"stream": list(STREAMS), "operation": list(OPERATIONS)}
    )


def waste_flows(
    results: xr.Dataset, year: int, source: str | None
) -> tuple[xr.DataArray, dict[str, ReuseVariable | None]]:
    """The year's e-waste by fleet, material, stream and operation (t/yr) and the reuse variables used: the
    atoms every waste field of the disclosure tables is a sum of. Raises InputError."""
    masses, reuse = stream_masses(results, year, source)
    return masses * operation_shares(), reuse


def energy_mwh(results: xr.Dataset, year: int, source: str | None) -> xr.DataArray:
    """The year's electricity by fleet (MWh/yr = `energy_annual` in TWh/yr x 10^6), facility overhead (PUE)
    included. Raises InputError if the results hold no energy."""
    return _bare(annual(results, "energy", year, source)) * 1e6


def board_metals_kg(results: xr.Dataset, year: int) -> xr.DataArray | None:
    """The year's circuit-board metals in the e-waste generated (kg/yr, dimension `metal`, summed over
    fleets), contained in the circuit_boards tonnage; None if the results have none."""
    if "metal" not in results.dims:
        return None
    try:
        metals = annual(results, "metal_in_ewaste", year, None)
    except InputError:
        return None
    return _bare(metals).sum("fleet") * 1e3
