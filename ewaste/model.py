"""Scenario grid -> results: runs the cohort engine per fleet, then impacts, checks and provenance."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import xarray as xr

from . import __version__
from .backend import Backend, get_backend
from .errors import BalanceError, InputError
from .grid import DRIVER_VAR
from .lifetime import LIFETIME_TYPES
from .stockflow import SurvivalRows, check_balance, solve
from .timeaxis import STEPS_PER_YEAR, to_annual
from .variables import table

OTHER = "other"
PCB = "circuit_boards"
NON_SCENARIO_DIMS = {"time", "history", "fleet", "material", "metal", "lag"}
HOURS_PER_YEAR = 8760.0
BALANCE_RTOL = 1e-9


def _fill_defaults(grid: xr.Dataset) -> tuple[xr.Dataset, dict[str, dict]]:
    """Give every optional variable a value; return the grid and what defaults were used."""
    grid = grid.copy()
    used: dict[str, dict] = {}
    comp = (
        grid["composition"]
        if "composition" in grid
        else xr.DataArray([1.0], dims="material", coords={"material": [OTHER]})
    )
    if OTHER not in comp["material"].values:
        comp = xr.concat([comp, xr.zeros_like(comp.isel(material=0)).expand_dims(material=[OTHER])], "material")
    named = comp.fillna(0.0).where(comp["material"] != OTHER, 0.0)
    grid["composition"] = xr.where(comp["material"] == OTHER, 1.0 - named.sum("material"), named)
    for name, var in table().items():
        if var.default is None:
            continue
        if name not in grid:
            if var.extra_dim in ("material", "metal") and var.extra_dim not in grid.dims:
                continue
            grid[name] = xr.DataArray(var.default)
            used[name] = {"value": var.default, "units": var.units, "source": var.source, "where": "all"}
        if var.extra_dim in ("material", "metal"):
            full = (
                grid[name].reindex({var.extra_dim: grid[var.extra_dim].values})
                if var.extra_dim in grid[name].dims
                else grid[name]
            )
            missing = [
                str(m)
                for m in grid[var.extra_dim].values
                if var.extra_dim in full.dims and bool(full.sel({var.extra_dim: m}).isnull().any())
            ]
            if missing:
                used[name] = {"value": var.default, "units": var.units, "source": var.source, "where": missing}
            grid[name] = full.fillna(var.default)
        elif bool(grid[name].isnull().any()):
            where = (
                [str(f) for f in grid["fleet"].values if bool(grid[name].sel(fleet=f).isnull().any())]
                if "fleet" in grid[name].dims
                else "all"
            )
            used[name] = {"value": var.default, "units": var.units, "source": var.source, "where": where}
            grid[name] = grid[name].fillna(var.default)
    return grid, used


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


def _run_fleet(g: xr.Dataset, fleet: str, be: Backend) -> dict[str, xr.DataArray]:
    """Units, mass, power and materials in stock and out, per step, for one fleet."""
    driver, kind = str(g["driver"].values), str(g["lifetime_type"].values)
    dt = 1.0 / STEPS_PER_YEAR[g.attrs["step"]]
    demand = g[DRIVER_VAR[driver]]
    per_unit = g["capacity_per_unit"] if driver == "capacity" else xr.DataArray(1.0)
    if driver == "inflow":
        demand = demand * dt
    life = {p: g[f"lifetime_{p}"] for p in LIFETIME_TYPES[kind]}
    weights = _cohort_weights(g)
    in_engine = {k: w for k, w in weights.items() if "time" in w.dims}
    history = g["inflow_history"] if "inflow_history" in g and "history" in g["inflow_history"].dims else None
    n_hist = g.sizes.get("history", 0) if history is not None else 0
    dims = _scenario_dims(
        demand, per_unit, *life.values(), *in_engine.values(), *([history] if history is not None else [])
    )
    template = xr.zeros_like(g["time"], dtype=float)
    for d in dims:
        template = template.expand_dims({d: g[d].values})
    template = template.transpose("time", *dims)
    xp = be.xp
    drv = _to_engine(demand, template, 0, xp)
    if n_hist:
        hist = (history * dt * per_unit.isel(time=0, missing_dims="ignore")).rename(history="time")
        hist = hist.assign_coords(time=np.arange(n_hist))
        tmpl_h = template.isel(time=slice(0, 1)).squeeze("time", drop=True).expand_dims(time=np.arange(n_hist))
        drv = xp.concatenate(
            [xp.asarray(hist.broadcast_like(tmpl_h).transpose(*tmpl_h.dims).values.reshape(n_hist, -1)), drv]
        )
    n = drv.shape[0]
    inv_k = 1.0 / _to_engine(per_unit, template, n_hist, xp)
    attrs = [inv_k + xp.zeros_like(drv)]
    stacked: list[tuple[str, str | None, Any]] = [("units", None, None)]
    for key, w in in_engine.items():
        extra = next((d for d in w.dims if d in ("material", "metal")), None)
        for label in w[extra].values if extra else [None]:
            wl = w.sel({extra: label}) if extra else w
            attrs.append(_to_engine(wl, template, n_hist, xp) * inv_k + xp.zeros_like(drv))
            stacked.append((key, extra, label))
    if kind == "tabulated":
        cum = xp.asarray(
            np.cumsum(
                g["lifetime_weights"]
                .broadcast_like(template.isel(time=0, drop=True))
                .transpose("lag", *dims)
                .values.reshape(g.sizes["lag"], -1),
                axis=0,
            )
        )
        params = {"cumulative": cum}
    else:
        params = {p: _to_engine(v, template, n_hist, xp) for p, v in life.items()}
    rows = SurvivalRows(kind, params, n, dt, g.attrs["age_convention"], be)
    try:
        flows = solve(drv, driver != "inflow", rows, xp.stack(attrs), n_hist, g.attrs["negative_inflow"])
    except InputError as exc:
        raise InputError(g.attrs.get("scenario_file"), f"fleets.{fleet}.lifetime", exc.message) from None
    worst = check_balance(flows.stock, flows.inflow[None] * xp.stack(attrs), flows.outflow, xp)
    if not worst <= BALANCE_RTOL:
        raise BalanceError(
            f"fleet {fleet}: stock balance violated (relative error {worst:.3g}); "
            "check the inputs for values that overflow"
        )
    shape = template.shape
    wrap = lambda a: template.copy(data=be.asnumpy(a[n_hist:]).reshape(shape))  # noqa: E731
    units_in = wrap(flows.inflow * attrs[0])
    out = {"stock_units": wrap(flows.stock[0]), "outflow_units": wrap(flows.outflow[0]), "inflow_units": units_in}
    for key, w in weights.items():
        if key in in_engine:
            idx = [i for i, s in enumerate(stacked) if s[0] == key]
            extra = stacked[idx[0]][1]
            parts = {p: [wrap(getattr(flows, p)[i]) for i in idx] for p in ("stock", "outflow")}
            labels = [stacked[i][2] for i in idx]
            for p, arrs in parts.items():
                out[f"{p}_{key}"] = xr.concat(arrs, dim=xr.DataArray(labels, dims=extra)) if extra else arrs[0]
            inflow_w = wrap(flows.inflow) * (w / per_unit)
        else:
            out[f"stock_{key}"] = out["stock_units"] * w
            out[f"outflow_{key}"] = out["outflow_units"] * w
            inflow_w = units_in * w
        out[f"inflow_{key}"] = inflow_w
    out["negative_inflow_steps"] = template.isel(time=0, drop=True).copy(
        data=be.asnumpy(flows.negative_inflow_steps).reshape(shape[1:])
    )
    return out


def _cohort_weights(g: xr.Dataset) -> dict[str, xr.DataArray]:
    """Per-unit cohort attributes: mass (kg), power (kW), material mass (kg), metal mass (kg)."""
    w = {"mass": g["mass"], "power": g["power"], "material": g["mass"] * g["composition"]}
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
    put("stock_mass", f["stock_mass"] * 1e-3, "t", "mass of the units in service at the end of the step", "stock")
    put("inflow_mass", f["inflow_mass"] * 1e-3, "t", "mass of the units put in service")
    generated = f["outflow_material"] * 1e-3  # kg -> t, by material
    rate = grid["collection_rate"]
    recovered = generated * rate * grid["preprocessing_yield"] * grid["endprocessing_yield"]
    put("ewaste_generated", generated.sum("material"), "t", "e-waste generated (retired units)")
    put("ewaste_by_material", generated, "t", "e-waste generated, by material")
    put("collected", out["ewaste_generated"] * rate, "t", "e-waste collected for formal recycling")
    put(
        "not_collected",
        out["ewaste_generated"] - out["collected"],
        "t",
        "e-waste not collected (disposed without formal recycling)",
    )
    put("recovered_by_material", recovered, "t", "material recovered, by material")
    put("recovered", recovered.sum("material"), "t", "material recovered")
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


def _check_destinations(res: xr.Dataset) -> None:
    """Every tonne generated ends in exactly one destination."""
    gen = res["ewaste_generated"]
    scale = float(abs(gen).max()) or 1.0
    for lhs, rhs in (
        (res["recovered"] + res["disposed"], gen),
        (res["recovered_by_material"] + res["disposed_by_material"], res["ewaste_by_material"]),
        (res["collected"] + res["not_collected"], gen),
    ):
        err = float(abs(lhs - rhs).max())
        if not err <= BALANCE_RTOL * scale:
            raise BalanceError(f"mass balance of e-waste destinations violated (relative error {err / scale:.3g})")


def _aggregate(res: xr.Dataset, target: int) -> xr.Dataset:
    """Annual, cumulative and target-year variables beside the per-step ones."""
    out = res.copy()
    for name, da in res.data_vars.items():
        kind = da.attrs.get("kind")
        if kind is None:
            continue
        annual = to_annual(da, kind)
        per_year = da.attrs["units"] + ("/yr" if kind == "flow" else "")
        out[f"{name}_annual"] = annual.assign_attrs(
            units=per_year, long_name=da.attrs["long_name"] + " (calendar year)"
        )
        out[f"{name}_target"] = annual.sel(year=target, drop=True).assign_attrs(
            units=per_year, long_name=da.attrs["long_name"] + f" in {target}"
        )
        if kind == "flow":
            cum = annual.cumsum("year").assign_attrs(
                units=da.attrs["units"], long_name=da.attrs["long_name"] + ", cumulative from the start year"
            )
            out[f"{name}_cumulative"] = cum
            out[f"{name}_cumulative_target"] = cum.sel(year=target, drop=True).assign_attrs(
                units=da.attrs["units"], long_name=da.attrs["long_name"] + f", cumulative to {target}"
            )
    return out


def evaluate(grid: xr.Dataset, backend: str | None = None) -> xr.Dataset:
    """Evaluate a validated scenario grid; returns results with units and provenance."""
    be = get_backend(backend)
    grid, defaults = _fill_defaults(grid)
    fleets = []
    for i, fleet in enumerate(grid["fleet"].values):
        g = grid.isel(fleet=i, drop=True)
        fleets.append(xr.Dataset(_run_fleet(g, str(fleet), be)))
    flows = xr.concat(fleets, dim=xr.DataArray(grid["fleet"].values, dims="fleet"), coords="minimal")
    res = _impacts(flows, grid)
    _check_destinations(res)
    res = res.assign_coords({k: grid[k] for k in ("year", "period") if k in grid.coords})
    res = _aggregate(res, int(grid.attrs["target_year"]))
    res.attrs = _provenance(grid, defaults, be)
    return res


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
    )
    attrs = {k: grid.attrs[k] for k in keep if k in grid.attrs}
    attrs.update(
        {
            "Conventions": "CF-1.10",
            "ewaste_version": __version__,
            "backend": be.name,
            "defaults_used": json.dumps(defaults),
            "driver": json.dumps(
                dict(zip(map(str, grid["fleet"].values), map(str, grid["driver"].values), strict=True))
            ),
            "lifetime_type": json.dumps(
                dict(zip(map(str, grid["fleet"].values), map(str, grid["lifetime_type"].values), strict=True))
            ),
            "history": f"{datetime.now(UTC).isoformat(timespec='seconds')} evaluated by ewaste {__version__} "
            f"({be.name} backend) from {grid.attrs.get('scenario_file', 'an in-memory grid')}",
        }
    )
    return attrs
