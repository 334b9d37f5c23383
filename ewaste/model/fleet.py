"""One fleet through the cohort engine: the grid's xarray variables to (steps x scenarios) arrays, the
engine chosen by the backend, balance checks, and the flows back as xarray over the sweep dimensions."""

from __future__ import annotations

from collections import Counter
from dataclasses import fields, replace
from functools import partial
from typing import Any

import numpy as np
import xarray as xr

from ..engine import gpu, host, kernel
from ..engine.arrays import NUMPY, Backend
from ..engine.lifetime import LIFETIME_TYPES
from ..engine.stockflow import SurvivalRows, check_balance, reduce_flows, solve, wang2024_inflow
from ..errors import BalanceError, InputError
from ..inputs.timeaxis import STEPS_PER_YEAR
from ..inputs.validate import DRIVER_VAR, NON_SCENARIO_DIMS
from .scratch import arrays, times

PCB = "circuit_boards"
BALANCE_RTOL = {"float64": 1e-9, "float32": 1e-5}  # by the precision of the engine's arithmetic
STOCK_READERS = {"installed_capacity", "capacity_demand_ratio"}  # a capacity-driven fleet's flows made from its stock


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
        # the history has its own length, which may exceed the modelled steps: no time coordinates borrowed
        dims = [d for d in template.dims if d != "time"]
        hist = (g["inflow_history"] * dt * first_k).broadcast_like(template.isel(time=0, drop=True))
        hist = hist.transpose("history", *dims).values.reshape(g.sizes["history"], -1)
        out = xp.concatenate([xp.asarray(hist), out])
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


PARTS = ("stock", "inflow", "outflow", "in_service")


def _attribute(flow: str) -> tuple[str, str] | None:
    """A fleet flow's part and attribute: "in_service_power" -> ("in_service", "power")."""
    part = next((p for p in sorted(PARTS, key=len, reverse=True) if flow.startswith(p + "_")), None)
    return None if part is None else (part, flow[len(part) + 1 :])


def run_fleet_rules(g: xr.Dataset, fleet: str, be: Backend, reduce: bool, needed: set[str]) -> xr.Dataset:
    """The fleet flows `needed` (`outputs.flows_needed`), running the fleet once per replacement rule
    when the rule is swept (a string dimension)."""
    rule_dims = list(g["replacement"].dims)
    if not rule_dims:
        return xr.Dataset(_run_fleet(g, fleet, be, reduce, needed))
    dim = rule_dims[0]
    parts = [run_fleet_rules(g.isel({dim: j}), fleet, be, reduce, needed) for j in range(g.sizes[dim])]
    return xr.concat(parts, dim=g[dim], coords="minimal", join="outer")


def _run_fleet(g: xr.Dataset, fleet: str, be: Backend, reduce: bool, needed: set[str]) -> dict[str, xr.DataArray]:
    """Units, mass, power, materials and metals put in service, in service and retired, per step: the
    flows named in `needed` (`<part>_<attribute>`, `installed_capacity`, `capacity_demand_ratio`).

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
    wanted = [a for a in map(_attribute, needed) if a is not None]
    names = {name for _, name in wanted}
    per_driver = {name: w / per_unit for name, w in _cohort_weights(g, names).items()}
    if driver == "capacity" and "capacity" in per_driver:  # the driver is capacity: one per driver unit
        per_driver["capacity"] = xr.DataArray(1.0)
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
    source = g.attrs.get("grid_file") or g.attrs.get("scenario_file")
    options = {"single": True} if be.precision == "float32" else {}  # only the compiled engines take it
    # a run that starts from an installed base (stock, capacity or the wang2024 rule, without history)
    options["installed_base"] = (driver != "inflow") and n_hist == 0
    # the average in service (energy, GPU-years, leases) costs integrals of survival over each step
    options["averages"] = any(part == "in_service" for part, _ in wanted)
    summed = in_engine_reduce and compiled is not None  # summed as it goes: no trajectory is held
    if compiled is host.solve and not summed:  # trajectories the flows below do not read are not written
        options["series"] = _series(wanted, needed, be.precision)
    try:
        if summed:
            flows = compiled(*args, reduce=(weights, last), **options)
        else:
            flows = (compiled or solve)(*args, **options)
    except InputError as exc:
        raise InputError(source, f"fleets.{fleet}.lifetime", exc.message) from None
    _check_flows(flows, stock_driven, summed, f"fleets.{fleet}", be, source)
    if in_engine_reduce and not summed:
        flows = reduce_flows(flows, xp.asarray(weights), last, xp)
    if wang:  # negative purchases are kept, as in the authors' code, and counted
        flows.negative_inflow_steps = flows.negative_inflow_steps + (drv < 0).sum(axis=0)
    if in_engine_reduce:
        summed = xp.asarray(weights) @ (demand[:, :1] if kernel.one_trajectory(demand) else demand)
        demand = xp.concatenate([xp.broadcast_to(summed, (2, demand.shape[1])), demand[last : last + 1]])
        template = template.isel(time=0, drop=True).expand_dims(reduction=3).transpose("reduction", ...)
        n_hist = 0

    def wrap(a: Any) -> xr.DataArray:
        return template.copy(data=be.asnumpy(a[n_hist:]).reshape(template.shape))

    out = {}
    parts = {
        "stock": (flows.stock, flows.attr_stock),
        "outflow": (flows.outflow, flows.attr_outflow),
        "in_service": (flows.in_service, flows.attr_in_service),
        "inflow": (flows.inflow, None),
    }
    read = _readers(wanted, per_driver, in_engine, parts, needed, driver)
    kept = [*(getattr(flows, f.name) for f in fields(flows)), drv, demand, attrs, *arrays(g)]
    for part, name in wanted:
        if name not in per_driver:  # metals, where the fleets give no circuit-board metal content
            continue
        total, by_attribute = parts[part]
        w = per_driver[name]
        if name in in_engine and by_attribute is not None:
            pieces = [wrap(by_attribute[i]) for i, (nm, _) in enumerate(stacked) if nm == name]
            extra = _extra_dim(w)
            out[f"{part}_{name}"] = xr.concat(pieces, dim=w[extra]) if extra else pieces[0]
        elif w.ndim == 0 and float(w) == 1.0:  # units of a unit-driven fleet: no copy
            out[f"{part}_{name}"] = wrap(total)
        else:  # the series' only reader scales it in its own memory
            others = [a for a in kept if a is not total or read[part] > 1]
            out[f"{part}_{name}"] = times(wrap(total), w, others)
    if driver == "capacity" and "installed_capacity" in needed:
        out["installed_capacity"] = wrap(flows.stock)
    if driver == "capacity" and "capacity_demand_ratio" in needed:
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


def _series(wanted: list[tuple[str, str]], needed: set[str], precision: str) -> set[str]:
    """The engine's trajectories (`kernel.SERIES`, `kernel.ATTRIBUTE_SERIES`) that the `wanted` flows
    are made from; in float32 also the three whose balance `_check_flows` checks."""
    parts = {part for part, _ in wanted}
    if needed & STOCK_READERS:
        parts.add("stock")
    if precision == "float32":
        parts |= {"inflow", "stock", "outflow"}
    return parts | {f"attr_{part}" for part in parts}


def _readers(
    wanted: list[tuple[str, str]],
    per_driver: dict[str, xr.DataArray],
    in_engine: dict[str, xr.DataArray],
    parts: dict[str, tuple[Any, Any]],
    needed: set[str],
    driver: str,
) -> Counter:
    """How many of the fleet's flows read each engine series whole (attributes summed in the engine
    read their own series; a capacity-driven fleet's installed capacity reads the stock)."""
    read = Counter(p for p, n in wanted if n in per_driver and not (n in in_engine and parts[p][1] is not None))
    if driver == "capacity":
        read["stock"] += len(needed & STOCK_READERS)
    return read


def _reduction(g: xr.Dataset, n_hist: int) -> tuple[np.ndarray, int]:
    """(2, H + T) weights of the engine's steps (in the target year; up to it) and its last step."""
    year = g["year"].values
    target = int(g.attrs["target_year"])
    weights = np.zeros((2, n_hist + year.size))
    weights[0, n_hist:] = year == target
    weights[1, n_hist:] = year <= target
    return weights, n_hist + int(np.nonzero(year == target)[0][-1])


def _extra_dim(w: xr.DataArray) -> str | None:
    return next((d for d in w.dims if d in ("material", "metal")), None)


def _labels(w: xr.DataArray) -> list:
    extra = _extra_dim(w)
    return list(w[extra].values) if extra else [None]


def _select(w: xr.DataArray, label: Any) -> xr.DataArray:
    return w if label is None else w.sel({_extra_dim(w): label})


def _check_flows(flows: Any, stock_driven: bool, summed: bool, field: str, be: Backend, source: str | None) -> None:
    """Stock balance s[m] - s[m-1] = i[m] - o[m] (it holds by construction but for float32 outflows,
    summed from retirements: elsewhere the values must be finite) and, stock-driven, the stock reached
    in every step, relative to that step's own stock (the engine's `stock_error`).

    Raises BalanceError in float64 (a model bug, or values that overflow) and InputError in float32,
    whose arithmetic cannot keep its stated error on these inputs.
    """
    xp = be.xp
    if be.precision == "float32" and not summed:  # outflows summed from retirements: the balance is a check
        worst = check_balance(flows.stock, flows.inflow, flows.outflow, xp)
    else:  # the balance holds by construction (o = s[m-1] + i - s[m]): values that overflow are what can fail
        written = (flows.stock, flows.outflow, flows.inflow, flows.in_service)  # as asked for (`_series`)
        finite = all(bool(xp.isfinite(xp.sum(_distinct(a)))) for a in written if a is not None)
        worst = 0.0 if finite else np.inf
    if stock_driven and flows.stock_error.size:
        worst = max(worst, float(np.nan_to_num(be.asnumpy(flows.stock_error), nan=np.inf).max()))
    tolerance = BALANCE_RTOL[be.precision]
    if worst <= tolerance:
        return
    if be.precision == "float32":
        raise InputError(
            source,
            "--precision",
            f"float32 arithmetic misses the stock of {field} by {worst:.2g} of a step's stock, more than its "
            f"stated error of {tolerance:g}: run this scenario in float64",
        )
    raise BalanceError(
        f"{field}: stock balance violated (relative error {worst:.3g}); check the inputs for values that overflow"
    )


def _distinct(a: Any) -> Any:
    """The values of an array, once: a broadcast view (the given stock, shared by every scenario)
    without its repeats."""
    return a[tuple(slice(0, 1) if stride == 0 else slice(None) for stride in a.strides)]


def _cohort_weights(g: xr.Dataset, names: set[str]) -> dict[str, xr.DataArray]:
    """Per-unit cohort attributes among `names`: units (1), mass (kg), power (kW), GPUs and capacity
    (where the grid gives them per unit), material and metal mass (kg)."""
    w = {"units": lambda: xr.DataArray(1.0), "mass": lambda: g["mass"], "power": lambda: g["power"]}
    if "gpus_per_unit" in g:
        w["gpus"] = lambda: g["gpus_per_unit"]
    if "capacity_per_unit" in g:
        w["capacity"] = lambda: g["capacity_per_unit"]
    w["material"] = lambda: g["mass"] * g["composition"]
    if "pcb_metal_content" in g and PCB in g["material"].values:
        w["metal"] = lambda: g["mass"] * g["composition"].sel(material=PCB, drop=True) * g["pcb_metal_content"] * 1e-6
    return {name: make() for name, make in w.items() if name in names}
