"""Scenario grid -> results: runs the cohort engine per fleet, then impacts, checks and provenance."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np
import xarray as xr

from . import __version__, gpu, host
from .backend import NUMPY, Backend, describe, get_backend
from .errors import BalanceError, InputError
from .grid import DRIVER_VAR, NON_SCENARIO_DIMS, validate
from .lifetime import LIFETIME_TYPES
from .stockflow import SurvivalRows, check_balance, reduce_flows, solve, wang2024_inflow
from .timeaxis import STEPS_PER_YEAR, to_annual
from .variables import recycling_yields, table

OTHER = "other"
PCB = "circuit_boards"
HOURS_PER_YEAR = 8760.0
BALANCE_RTOL = {"float64": 1e-9, "float32": 1e-5}  # by the precision of the engine's arithmetic


def _fill_defaults(grid: xr.Dataset) -> tuple[xr.Dataset, dict[str, dict]]:
    """Give every optional variable a value; return the grid and which defaults were used where."""
    grid = grid.copy()
    used: dict[str, dict] = {}
    _default_composition(grid, used)
    for name, var in table().items():
        if var.default is None:
            continue
        if var.extra_dim in ("material", "metal"):
            _default_yields(grid, name, var.extra_dim, used)
            continue
        if name not in grid:
            if var.read_by == "history":
                continue  # no fleet has an inflow history: nothing to fill
            grid[name] = xr.DataArray(var.default)
            used[name] = _record(var.default, var.units, var.source, var.status, "all")
        elif bool(grid[name].isnull().any()):
            where = "all"
            if "fleet" in grid[name].dims:
                where = [str(f) for f in grid["fleet"].values if bool(grid[name].sel(fleet=f).isnull().any())]
            used[name] = _record(var.default, var.units, var.source, var.status, where)
            grid[name] = grid[name].fillna(var.default)
    return grid, used


def _record(value: Any, units: str, source: str | None, status: str | None, where: Any) -> dict:
    """One entry of the results' `defaults_used`: a default, its source and where it applied."""
    return {"value": value, "units": units, "source": source, "status": status, "where": where}


def _default_composition(grid: xr.Dataset, used: dict) -> None:
    """Composition with 'other' as the rest; all 'other' where a fleet gives none."""
    comp = (
        grid["composition"]
        if "composition" in grid
        else xr.DataArray([1.0], dims="material", coords={"material": [OTHER]})
    )
    bare = "all"
    if "composition" in grid:
        bare = [str(f) for f in grid["fleet"].values if "fleet" in comp.dims and bool(comp.sel(fleet=f).isnull().all())]
    if bare:
        used["composition"] = _record(
            {OTHER: 1.0}, "1", "mass not split by material unless a composition is given", "-", bare
        )
    if OTHER not in comp["material"].values:
        comp = xr.concat([comp, xr.zeros_like(comp.isel(material=0)).expand_dims(material=[OTHER])], "material")
    named = comp.fillna(0.0).where(comp["material"] != OTHER, 0.0)
    grid["composition"] = xr.where(comp["material"] == OTHER, 1.0 - named.sum("material"), named)


def _default_yields(grid: xr.Dataset, name: str, dim: str, used: dict) -> None:
    """Yields not given for a material or metal: the sourced table (recycling.toml), else 0."""
    if dim not in grid.dims:
        return
    labels = [str(m) for m in grid[dim].values]
    given = grid[name] if name in grid else xr.DataArray(np.nan)
    full = given.reindex({dim: labels}) if dim in given.dims else given.expand_dims({dim: labels}).copy()
    stage = "endprocessing" if "endprocessing" in name else "preprocessing"
    sourced = recycling_yields()[stage]
    defaults = {}
    for label in labels:
        if bool(full.sel({dim: label}).isnull().any()):
            entry = sourced.get(label, {"value": 0.0, "source": table()[name].source, "status": "-"})
            defaults[label] = entry
            full = full.where(full[dim] != label, full.fillna(entry["value"]))
    if defaults:
        used[name] = {"units": "1", "where": defaults}
    grid[name] = full


def _scenario_dims(*arrays: xr.DataArray) -> list[str]:
    dims: list[str] = []
    for da in arrays:
        dims += [d for d in da.dims if d not in NON_SCENARIO_DIMS and d not in dims]
    return dims


def _to_engine(da: xr.DataArray, template: xr.DataArray, n_hist: int, xp: Any) -> Any:
    """(N, S) array over the engine's scenario dims; (1, S) where `da` has no time dimension.

    History steps (the first `n_hist` rows) repeat the first cohort's value.
    """
    dims = [d for d in template.dims if d != "time"]
    if "time" not in da.dims:
        return xp.asarray(da.broadcast_like(template.isel(time=0)).transpose(*dims).values.reshape(1, -1))
    arr = da.broadcast_like(template).transpose("time", *dims).values
    arr = arr.reshape(arr.shape[0], -1)
    if n_hist:
        arr = np.concatenate([np.repeat(arr[:1], n_hist, axis=0), arr], axis=0)
    return xp.asarray(arr)


def _template(g: xr.Dataset, *arrays: xr.DataArray) -> xr.DataArray:
    """Zeros over (time, scenario dims of `arrays`): the shape the engine runs over."""
    template = xr.zeros_like(g["time"], dtype=float)
    dims = _scenario_dims(*arrays)
    for d in dims:
        template = template.expand_dims({d: g[d].values})
    return template.transpose("time", *dims)


def _driver(g: xr.Dataset, driver: str, per_unit: xr.DataArray, template: xr.DataArray, xp: Any) -> Any:
    """(H + T, S) driver: inflow history, then inflow per step, stock or demand (driver units)."""
    dt = 1.0 / STEPS_PER_YEAR[g.attrs["step"]]
    given = g[DRIVER_VAR[driver]] * (dt if driver == "inflow" else 1.0)
    out = _to_engine(given.broadcast_like(template), template, 0, xp)  # a constant holds every step
    if "history" in g.dims and "inflow_history" in g:
        first_k = per_unit.isel(time=0, drop=True) if "time" in per_unit.dims else per_unit
        hist = (g["inflow_history"] * dt * first_k).rename(history="time")
        hist = hist.assign_coords(time=template["time"].values[: g.sizes["history"]])
        tmpl = template.isel(time=slice(0, g.sizes["history"]))
        out = xp.concatenate([_to_engine(hist, tmpl, 0, xp), out])
    return out


def _lifetime_table(g: xr.Dataset, template: xr.DataArray) -> np.ndarray:
    """(L, S) retirement shares by lag of a tabulated lifetime."""
    dims = [d for d in template.dims if d != "time"]
    w = g["lifetime_weights"].broadcast_like(template.isel(time=0, drop=True)).transpose("lag", *dims)
    return w.values.reshape(g.sizes["lag"], -1)


def _survival_rows(g: xr.Dataset, kind: str, template: xr.DataArray, n: int, be: Backend) -> SurvivalRows:
    dt = 1.0 / STEPS_PER_YEAR[g.attrs["step"]]
    n_hist = n - template.sizes["time"]
    if kind == "tabulated":
        params = {"cumulative": be.xp.asarray(np.cumsum(_lifetime_table(g, template), axis=0))}
    else:
        params = {p: _to_engine(g[f"lifetime_{p}"], template, n_hist, be.xp) for p in LIFETIME_TYPES[kind]}
    return SurvivalRows(kind, params, n, dt, g.attrs["age_convention"], be)


def _run_fleet(g: xr.Dataset, fleet: str, be: Backend, reduce: bool = False) -> dict[str, xr.DataArray]:
    """Units, mass, power, materials and metals put in service, in service and retired, per step.

    Attributes per driver unit (per unit of capacity for capacity-driven fleets) that change by
    cohort are summed cohort by cohort in the engine; the others scale its results afterwards.
    With `reduce`, the step axis becomes `reduction`: the sum over the target year, the sum up to
    it, and the value at its last step (see `_reduction`); no trajectory is kept.
    """
    driver, kind = str(g["driver"].values), str(g["lifetime_type"].values)
    compiled = {"cpu": host.solve, "cupy": partial(gpu.solve, be=be)}.get(be.name)
    if be.name == "cupy":  # arrays stay on the host: the GPU engine streams them through the device in batches
        be = replace(NUMPY, precision=be.precision)
    xp = be.xp
    per_unit = g["capacity_per_unit"] if driver == "capacity" else xr.DataArray(1.0)
    per_driver = {name: w / per_unit for name, w in _cohort_weights(g).items()}
    in_engine = {name: w for name, w in per_driver.items() if "time" in w.dims}
    life = [g[f"lifetime_{p}"] for p in LIFETIME_TYPES[kind] if p != "weights"]
    template = _template(
        g,
        g[DRIVER_VAR[driver]],
        per_unit,
        *life,
        *in_engine.values(),
        *([g["lifetime_weights"]] if kind == "tabulated" else []),
        *([g["inflow_history"]] if "inflow_history" in g else []),
    )
    drv = _driver(g, driver, per_unit, template, xp)
    n, n_hist = drv.shape[0], drv.shape[0] - template.sizes["time"]
    rows = _survival_rows(g, kind, template, n, be)
    stacked = [(name, label) for name, w in in_engine.items() for label in _labels(w)]
    attrs = None
    if stacked:
        attrs = xp.stack(
            [
                _to_engine(_select(in_engine[name], label), template, n_hist, xp) + xp.zeros_like(drv)
                for name, label in stacked
            ]
        )
    demand, stock_driven = drv, driver != "inflow"
    wang = str(g["replacement"].values) == "wang2024"
    if wang:  # the authors' rule fixes the inflow; the cohorts then retire as usual
        k = _to_engine(per_unit.broadcast_like(template), template, n_hist, xp)
        drv = wang2024_inflow(drv, k, xp.asarray(_lifetime_table(g, template)), xp) * k
        stock_driven = False
    weights, last = _reduction(g, n_hist) if reduce else (None, None)
    # Attributes that change by cohort scale the inflow step by step: those fleets reduce at the end.
    in_engine_reduce = reduce and not stacked
    args = (drv, stock_driven, rows, attrs, n_hist, g.attrs["negative_inflow"])
    try:
        single = {"single": True} if be.precision == "float32" else {}  # only the compiled engines take it
        if in_engine_reduce and compiled:  # summed as it goes: no trajectory is held
            flows = compiled(*args, reduce=(weights, last), **single)
            _check_reduced(flows, drv, stock_driven, last, fleet, be)
        else:
            flows = (compiled or solve)(*args, **single)
            _check_fleet(flows, drv, stock_driven, n_hist, fleet, be)
            flows = reduce_flows(flows, xp.asarray(weights), last, xp) if in_engine_reduce else flows
    except InputError as exc:
        raise InputError(g.attrs.get("scenario_file"), f"fleets.{fleet}.lifetime", exc.message) from None
    if wang:  # negative purchases are kept, as in the authors' code, and counted
        flows.negative_inflow_steps = flows.negative_inflow_steps + (drv < 0).sum(axis=0)
    if in_engine_reduce:
        demand = xp.concatenate([xp.asarray(weights) @ demand, demand[last : last + 1]])
        template = template.isel(time=0, drop=True).expand_dims(reduction=3).transpose("reduction", ...)
        n_hist = 0

    def wrap(a: Any) -> xr.DataArray:
        return template.copy(data=be.asnumpy(a[n_hist:]).reshape(template.shape))

    out = {}
    for name, w in per_driver.items():
        if name in in_engine:
            for part, arrays in (("stock", flows.attr_stock), ("outflow", flows.attr_outflow)):
                pieces = [wrap(arrays[i]) for i, (nm, _) in enumerate(stacked) if nm == name]
                extra = _extra_dim(w)
                out[f"{part}_{name}"] = xr.concat(pieces, dim=w[extra]) if extra else pieces[0]
        else:
            out[f"stock_{name}"] = wrap(flows.stock) * w
            out[f"outflow_{name}"] = wrap(flows.outflow) * w
        out[f"inflow_{name}"] = wrap(flows.inflow) * w
    if driver == "capacity":
        out["installed_capacity"] = wrap(flows.stock)
        out["capacity_demand_ratio"] = wrap(flows.stock / xp.where(demand > 0, demand, xp.nan))
    out["negative_inflow_steps"] = template.isel({template.dims[0]: 0}, drop=True).copy(
        data=be.asnumpy(flows.negative_inflow_steps).reshape(template.shape[1:])
    )
    if reduce and not in_engine_reduce:
        w = xr.DataArray(weights[:, n_hist:], dims=("reduction", "time"))
        for name, da in out.items():
            if "time" in da.dims:
                at_last = da.isel(time=last - n_hist, drop=True).expand_dims(reduction=1)
                reduced = xr.concat([(da * w).sum("time"), at_last], dim="reduction")
                out[name] = reduced.transpose("reduction", ...).drop_vars(["year", "period"], errors="ignore")
    return out


def _reduction(g: xr.Dataset, n_hist: int) -> tuple[np.ndarray, int]:
    """(2, H + T) weights of the engine's steps (in the target year; up to it) and its last step."""
    year = g["year"].values
    target = int(g.attrs["target_year"])
    weights = np.zeros((2, n_hist + year.size))
    weights[0, n_hist:] = year == target
    weights[1, n_hist:] = year <= target
    return weights, n_hist + int(np.nonzero(year == target)[0][-1])


def _check_reduced(flows: Any, drv: Any, stock_driven: bool, last: int, fleet: str, be: Backend) -> None:
    """What can be checked without trajectories: finite values and, stock-driven, the stock reached.

    The stock balance holds by construction in the compiled engine (outflow = s[m-1] + i[m] - s[m]).
    """
    xp = be.xp
    worst = 0.0 if bool(xp.isfinite(flows.stock).all() & xp.isfinite(flows.outflow).all()) else np.inf
    if stock_driven:
        scale = xp.maximum(xp.abs(drv).max(axis=0), 1e-300)
        worst = max(worst, float(xp.nan_to_num(xp.abs(flows.stock[2] - drv[last]) / scale, nan=xp.inf).max()))
    if not worst <= BALANCE_RTOL[be.precision]:
        raise BalanceError(f"fleet {fleet}: stock balance violated; check the inputs for values that overflow")


def _extra_dim(w: xr.DataArray) -> str | None:
    return next((d for d in w.dims if d in ("material", "metal")), None)


def _labels(w: xr.DataArray) -> list:
    extra = _extra_dim(w)
    return list(w[extra].values) if extra else [None]


def _select(w: xr.DataArray, label: Any) -> xr.DataArray:
    return w if label is None else w.sel({_extra_dim(w): label})


def _check_fleet(flows: Any, drv: Any, stock_driven: bool, n_hist: int, fleet: str, be: Backend) -> None:
    """Stock balance s[m] - s[m-1] = i[m] - o[m] and, for stock-driven steps, stock = the given stock."""
    xp = be.xp
    worst = check_balance(flows.stock, flows.inflow, flows.outflow, xp)
    if stock_driven:
        given, got = drv[n_hist:], flows.stock[n_hist:]
        scale = xp.maximum(xp.abs(given).max(axis=0), 1e-300)
        worst = max(worst, float(xp.nan_to_num(xp.abs(got - given).max(axis=0) / scale, nan=xp.inf).max()))
    if not worst <= BALANCE_RTOL[be.precision]:
        raise BalanceError(
            f"fleet {fleet}: stock balance violated (relative error {worst:.3g}); "
            "check the inputs for values that overflow"
        )


def _cohort_weights(g: xr.Dataset) -> dict[str, xr.DataArray]:
    """Per-unit cohort attributes: units (1), mass (kg), power (kW), material and metal mass (kg)."""
    w = {"units": xr.DataArray(1.0), "mass": g["mass"], "power": g["power"], "material": g["mass"] * g["composition"]}
    if "pcb_metal_content" in g and PCB in g["material"].values:
        w["metal"] = g["mass"] * g["composition"].sel(material=PCB, drop=True) * g["pcb_metal_content"] * 1e-6
    return w


def _impacts(f: xr.Dataset, grid: xr.Dataset) -> xr.Dataset:
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


def _check_destinations(res: xr.Dataset, suffix: str = "") -> None:
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


def _aggregate(res: xr.Dataset, target: int) -> xr.Dataset:
    """Annual, cumulative and target-year variables beside the per-step ones."""
    out = res.copy()
    for name, da in res.data_vars.items():
        kind = da.attrs.get("kind")
        if kind is None:
            continue
        annual = to_annual(da, kind)
        out[f"{name}_annual"] = annual.assign_attrs(_period_attrs(da, "annual", target))
        cum = annual.cumsum("year", skipna=False) if kind == "flow" else None
        if cum is not None:
            out[f"{name}_cumulative"] = cum.assign_attrs(_period_attrs(da, "cumulative", target))
        out.update(
            _targets(
                name,
                da,
                annual.sel(year=target, drop=True),
                None if cum is None else cum.sel(year=target, drop=True),
                target,
            )
        )
    return out


def _period_attrs(da: xr.DataArray, which: str, target: int) -> dict[str, str]:
    """Units and long name of a per-step variable aggregated to years, to the target year or cumulated."""
    flow = da.attrs["kind"] == "flow"
    units = da.attrs["units"] + ("/yr" if flow and which in ("annual", "target") else "")
    suffix = {
        "annual": " (calendar year)",
        "target": f" in {target}",
        "cumulative": ", cumulative from the start year",
        "cumulative_target": f", cumulative to {target}",
    }
    return {"units": units, "long_name": da.attrs["long_name"] + suffix[which]}


def _targets(
    name: str, da: xr.DataArray, in_target: xr.DataArray, cumulative: xr.DataArray | None, target: int
) -> dict[str, xr.DataArray]:
    """The summary variables of one per-step variable."""
    out = {f"{name}_target": in_target.assign_attrs(_period_attrs(da, "target", target))}
    if cumulative is not None:
        out[f"{name}_cumulative_target"] = cumulative.assign_attrs(_period_attrs(da, "cumulative_target", target))
    return out


def _label_capacity(res: xr.Dataset, grid: xr.Dataset) -> xr.Dataset:
    """Each fleet's capacity unit as a coordinate; the installed capacity in it where all agree."""
    res = res.assign_coords(capacity_unit=grid["capacity_unit"])
    units = {
        str(u) for u, d in zip(grid["capacity_unit"].values, grid["driver"].values, strict=True) if d == "capacity"
    }
    label = next(iter(units)) if len(units) == 1 else "see capacity_unit"
    for name in res.data_vars:
        if str(name).startswith("installed_capacity"):
            res[name].attrs["units"] = label
    return res


IMPACT_PARAMS = (
    "utilisation",
    "collection_rate",
    "pue",
    "grid_intensity",
    "preprocessing_yield",
    "endprocessing_yield",
    "metal_preprocessing_yield",
    "metal_endprocessing_yield",
)


def _summable(grid: xr.Dataset) -> bool:
    """Whether summaries can come from flows reduced over time first: no impact parameter changes over
    time (then impacts are linear in the summed flows and the sweep dimensions of the impact
    parameters are never crossed with the time axis)."""
    return not any("time" in grid[p].dims for p in IMPACT_PARAMS if p in grid)


def _fast_summary(flows: xr.Dataset, grid: xr.Dataset) -> xr.Dataset:
    """Summary values from fleet flows reduced over time (`_run_fleet(..., reduce=True)`)."""
    target = int(grid.attrs["target_year"])
    summed = xr.Dataset()
    for name, da in flows.data_vars.items():
        if "reduction" not in da.dims:
            summed[name] = da
        elif name.startswith(("inflow_", "outflow_")) or name == "stock_power":  # energy sums power
            summed[name] = da.isel(reduction=[0, 1]).rename(reduction="time")
        else:  # stocks and ratios: the value at the end of the target year, in both slots
            summed[name] = xr.concat([da.isel(reduction=2, drop=True)] * 2, dim="time")
    res = _impacts(summed, grid)
    out = xr.Dataset()
    for name, da in res.data_vars.items():
        kind = da.attrs.get("kind")
        if kind is None:
            out[name] = da
            continue
        out.update(
            _targets(
                name, da, da.isel(time=0, drop=True), da.isel(time=1, drop=True) if kind == "flow" else None, target
            )
        )
    return out


SUMMARY_SUFFIXES = ("_target", "_cumulative_target")


def evaluate(
    grid: xr.Dataset, backend: str | None = None, summary: bool = False, precision: str | None = None
) -> xr.Dataset:
    """Evaluate a validated scenario grid; returns results with units and provenance.

    With `summary=True` only the target-year and cumulative-to-target values are kept (and the
    negative-inflow count): a few numbers per grid point, for sweeps whose trajectories would not fit.
    precision: "float64" (default, or $EWASTE_PRECISION) or "float32" arithmetic in the compiled
    engines (results stay float64 arrays; see docs/model.md for the error).
    """
    be = get_backend(backend, precision)
    grid = validate(grid, str(grid.attrs.get("grid_file") or grid.attrs.get("scenario_file") or "grid"))
    grid, defaults = _fill_defaults(grid)
    reduce = summary and _summable(grid)
    fleets = [
        _run_fleet_rules(grid.isel(fleet=i, drop=True), str(f), be, reduce) for i, f in enumerate(grid["fleet"].values)
    ]
    flows = xr.concat(fleets, dim=xr.DataArray(grid["fleet"].values, dims="fleet"), coords="minimal")
    if reduce:
        fast = _fast_summary(flows, grid)
        fast = _label_capacity(fast, grid)
        _check_destinations(fast, "_cumulative_target")
        fast.attrs = {**_provenance(grid, defaults, be), "mode": "summary"}
        return fast
    res = _impacts(flows, grid)
    _check_destinations(res)
    res = res.assign_coords({k: grid[k] for k in ("year", "period") if k in grid.coords})
    res = _label_capacity(res, grid)
    res = _aggregate(res, int(grid.attrs["target_year"]))
    res.attrs = _provenance(grid, defaults, be)
    if summary:
        keep = [v for v in res.data_vars if str(v).endswith(SUMMARY_SUFFIXES) or v == "negative_inflow_steps"]
        res = res[keep]
        res = res.drop_vars([c for c in res.coords if {"time", "year"} & set(res[c].dims)])
        res.attrs["mode"] = "summary"
    return res


def _run_fleet_rules(g: xr.Dataset, fleet: str, be: Backend, reduce: bool = False) -> xr.Dataset:
    """Run a fleet once per replacement rule when the rule is swept (a string dimension)."""
    rule_dims = list(g["replacement"].dims)
    if not rule_dims:
        return xr.Dataset(_run_fleet(g, fleet, be, reduce))
    dim = rule_dims[0]
    parts = [_run_fleet_rules(g.isel({dim: j}), fleet, be, reduce) for j in range(g.sizes[dim])]
    return xr.concat(parts, dim=g[dim], coords="minimal", join="outer")


def _provenance(grid: xr.Dataset, defaults: dict, be: Backend) -> dict[str, Any]:
    keep = (
        "title",
        "description",
        "sources",
        "start_year",
        "end_year",
        "step",
        "target_year",
        "age_convention",
        "negative_inflow",
        "scenario_file",
        "scenario_sha256",
        "grid_file",
        "grid_sha256",
        "parameter_sources",
    )
    attrs = {k: grid.attrs[k] for k in keep if k in grid.attrs}
    attrs.update(
        {
            "Conventions": "CF-1.10",
            "ewaste_version": __version__,
            "backend": be.name,
            "engine": describe(be),
            "precision": be.precision,
            "defaults_used": json.dumps(defaults),
            "driver": json.dumps(
                dict(zip(map(str, grid["fleet"].values), map(str, grid["driver"].values), strict=True))
            ),
            "lifetime_type": json.dumps(
                dict(zip(map(str, grid["fleet"].values), map(str, grid["lifetime_type"].values), strict=True))
            ),
            "history": f"{datetime.now(UTC).isoformat(timespec='seconds')} evaluated by ewaste {__version__} "
            f"from {grid.attrs.get('scenario_file', 'an in-memory grid')}",
        }
    )
    return attrs
