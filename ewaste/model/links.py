"""Fleets that feed each other, in the model: the fleets run in link order, a linked fleet's inflow is
its source's retirements (x the cascade share or the replacement ratio), a cascade's cohorts arrive
with the per-unit mass, power, materials, metals, GPUs and capacity of the units its source retired in that
step, and what a fleet passes on to a second life is `reused`, not e-waste.

The chain's mass balance: the tonnes a first fleet buys end, over the chain, as e-waste or stock of
some fleet (tests/test_links.py). Scenario syntax: ewaste.inputs.links.
"""

from __future__ import annotations

import xarray as xr

from ..engine.arrays import NUMPY, Backend
from ..inputs.links import check_links, grid_links
from ..inputs.timeaxis import STEPS_PER_YEAR
from .fleet import PCB, run_fleet_rules

ARRIVALS = {
    "outflow_units",
    "outflow_mass",
    "outflow_power",
    "outflow_material",
    "outflow_metal",
    "outflow_gpus",
    "outflow_capacity",
}
"""The flows of a source fleet its linked fleets are made from."""
PASSED = ("outflow_mass", "outflow_material", "outflow_metal")  # what a cascade takes out of the source's e-waste


def arrive(g: xr.Dataset, source: xr.Dataset, kind: str, share: xr.DataArray, dt: float) -> xr.Dataset:
    """The grid of a linked fleet (no fleet dimension) with its inflow (unit/yr) from `source`'s flows
    per step, and for a cascade the per-unit values of the units that arrive, by cohort."""
    units = source["outflow_units"]
    g = g.assign(inflow=(share * units / dt).assign_attrs(g["inflow"].attrs))
    if kind != "cascade":
        return g
    some = units.where(units > 0)

    def per_unit(flow: str, name: str, scale: float = 1.0) -> None:
        if flow in source and name in g:
            g[name] = (source[flow] / some * scale).fillna(g[name]).assign_attrs(g[name].attrs)

    per_unit("outflow_mass", "mass")
    per_unit("outflow_power", "power")
    per_unit("outflow_gpus", "gpus_per_unit")
    per_unit("outflow_capacity", "capacity_per_unit")
    if "outflow_material" in source:
        mass = source["outflow_mass"].where(source["outflow_mass"] > 0)
        g["composition"] = (
            (source["outflow_material"] / mass).fillna(g["composition"]).assign_attrs(g["composition"].attrs)
        )
    if "outflow_metal" in source and "pcb_metal_content" in g:
        boards = source["outflow_material"].sel(material=PCB, drop=True)
        g["pcb_metal_content"] = (
            (source["outflow_metal"] / boards.where(boards > 0) * 1e6)
            .fillna(g["pcb_metal_content"])
            .assign_attrs(g["pcb_metal_content"].attrs)
        )
    return g


def passed_on(sources: dict[str, str], kinds: dict[str, str], shares: dict[str, xr.DataArray]) -> xr.DataArray:
    """(fleet, ...) the share of each fleet's retired units that cascades into other fleets."""
    names = list(sources)
    parts = []
    for name in names:
        taken = [shares[t] for t in names if sources[t] == name and kinds[t] == "cascade"]
        parts.append(sum(taken, xr.DataArray(0.0)))
    return xr.concat(parts, dim=xr.DataArray(names, dims="fleet"), coords="minimal")


def reuse(flows: xr.Dataset, share: xr.DataArray) -> xr.Dataset:
    """Flows with what cascades on taken out of the e-waste flows and kept as `reused_mass` (kg)."""
    out = flows.copy()
    out["reused_mass"] = flows["outflow_mass"] * share
    for name in PASSED:
        if name in flows:
            out[name] = flows[name] * (1.0 - share)
    return out


def run_linked(
    grid: xr.Dataset, be: Backend, reduce: bool, needed: set[str]
) -> tuple[dict[str, xr.Dataset], dict[str, xr.Dataset]]:
    """Every fleet through the engine, sources before the fleets they feed: (each fleet's grid as it
    ran, without the fleet dimension; its flows, `fleet.run_fleet_rules`), by fleet name. A source's
    flows include ARRIVALS whenever a fleet is linked (and are then not reduced over time)."""
    sources, kinds, shares = grid_links(grid)
    linked = any(sources.values())
    needed = needed | (ARRIVALS if linked else set())
    names = [str(f) for f in grid["fleet"].values]
    dt = 1.0 / STEPS_PER_YEAR[grid.attrs["step"]]
    grids, flows = {}, {}
    for name in check_links(sources, kinds, shares, "grid"):
        g = grid.isel(fleet=names.index(name), drop=True)
        if sources[name]:
            g = arrive(g, flows[sources[name]], kinds[name], shares[name], dt)
        grids[name], flows[name] = g, run_fleet_rules(g, name, be, reduce and not linked, needed)
    return grids, flows


def linked_grids(grid: xr.Dataset) -> dict[str, xr.Dataset]:
    """Each fleet's grid as the model runs it (a linked fleet's inflow from its source), by name."""
    if not any(grid_links(grid)[0].values()):
        return {str(f): grid.isel(fleet=i, drop=True) for i, f in enumerate(grid["fleet"].values)}
    return run_linked(grid, NUMPY, False, set())[0]
