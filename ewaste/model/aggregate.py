"""Per-step results to calendar years, cumulative sums and target-year values; summary mode from
flows already reduced over time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from ..inputs.timeaxis import STEPS_PER_YEAR
from .impacts import impacts


def to_annual(da: xr.DataArray, kind: str) -> xr.DataArray:
    """A per-step variable by calendar year: flows summed, averages averaged over the year's steps,
    stocks and ratios taken at the year's end.

    NaN is not skipped: a flow or an average with a NaN step is NaN for its year, a stock is the value
    of the year's last step whatever it is. With annual steps the steps are the years.
    """
    if np.unique(da["year"].values).size == da.sizes["time"]:
        out = da.drop_vars([c for c in da.coords if "time" in da[c].dims]).rename(time="year")
        out = out.assign_coords(year=("year", da["year"].values, da["year"].attrs))
    else:
        grouped = da.groupby("year")
        if kind == "flow":
            out = grouped.sum("time", skipna=False)
        elif kind == "average":
            out = grouped.mean("time", skipna=False)
        else:
            out = grouped.last(skipna=False)
    out.attrs = dict(da.attrs)
    return out


def aggregate(res: xr.Dataset, target: int) -> xr.Dataset:
    """Annual, cumulative and target-year variables beside the per-step ones (merged into the
    results once: each merge aligns every variable)."""
    out: dict[str, xr.DataArray] = {}
    for name, da in res.data_vars.items():
        kind = da.attrs.get("kind")
        if kind is None:
            continue
        annual = to_annual(da, kind)
        out[f"{name}_annual"] = annual.assign_attrs(_period_attrs(da, "annual", target))
        cum = cumulative(annual) if kind == "flow" else None
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
    return res.assign(out)


def cumulative(da: xr.DataArray) -> xr.DataArray:
    """Running sum of an annual variable over "year", NaN propagating (as `cumsum(skipna=False)`).

    Year after year, each a whole contiguous slice: the same additions in the same order as NumPy's
    `cumsum`, which along an outer axis runs one strided column at a time (about 4x slower at 1e5
    scenarios x 31 years).
    """
    axis = da.get_axis_num("year")
    if axis == da.ndim - 1:
        return da.copy(data=np.cumsum(da.values, axis=axis))
    out = np.empty_like(da.values)
    src, dst = np.moveaxis(da.values, axis, 0), np.moveaxis(out, axis, 0)
    if len(src):
        dst[0] = src[0]
    for k in range(1, len(src)):
        np.add(dst[k - 1], src[k], out=dst[k])
    return da.copy(data=out)


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


CAPACITY_RESULTS = {"installed_capacity": "", "in_service_capacity": "", "capacity_years": " yr"}


def label_capacity(res: xr.Dataset, grid: xr.Dataset) -> xr.Dataset:
    """Each fleet's capacity unit as a coordinate; the capacity results in it where all fleets that count
    capacity (capacity-driven, or giving a capacity per unit) agree, else "see capacity_unit"."""
    res = res.assign_coords(capacity_unit=grid["capacity_unit"])
    given = grid["capacity_per_unit"] > 0 if "capacity_per_unit" in grid else xr.zeros_like(grid["driver"], bool)
    counted = given.any([d for d in given.dims if d != "fleet"]) | (grid["driver"] == "capacity")
    units = {str(u) for u, c in zip(grid["capacity_unit"].values, np.atleast_1d(counted.values), strict=True) if c}
    label = next(iter(units)) if len(units) == 1 else "see capacity_unit"
    for name in res.data_vars:
        suffix = next((s for base, s in CAPACITY_RESULTS.items() if str(name).startswith(base)), None)
        if suffix is not None:
            res[name].attrs["units"] = label + suffix
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


def summable(grid: xr.Dataset) -> bool:
    """Whether summaries can come from flows reduced over time first: no impact parameter changes over
    time (then impacts are linear in the summed flows and the sweep dimensions of the impact
    parameters are never crossed with the time axis)."""
    return not any("time" in grid[p].dims for p in IMPACT_PARAMS if p in grid)


def fast_summary(flows: xr.Dataset, grid: xr.Dataset, results: Sequence[str]) -> xr.Dataset:
    """Summary values of `results` from fleet flows reduced over time (`_run_fleet(..., reduce=True)`)."""
    target = int(grid.attrs["target_year"])
    summed = xr.Dataset()
    for name, da in flows.data_vars.items():
        if "reduction" not in da.dims:
            summed[name] = da
        elif name.startswith(("inflow_", "outflow_", "in_service_")):  # sums over the target year, up to it
            # (in service: energy, GPU-years and capacity-years sum them; the averages divide below)
            summed[name] = da.isel(reduction=slice(0, 2)).rename(reduction="time")  # a view
        else:  # stocks and ratios: the value at the end of the target year, in both slots (a view)
            summed[name] = da.isel(reduction=2, drop=True).expand_dims(time=2, axis=da.dims.index("reduction"))
    res = impacts(summed, grid, results)
    steps = STEPS_PER_YEAR[grid.attrs["step"]]
    out = xr.Dataset()
    for name, da in res.data_vars.items():
        kind = da.attrs.get("kind")
        if kind is None:
            out[name] = da
            continue
        in_target = da.isel(time=0, drop=True)
        if kind == "average":  # the mean over the target year's steps
            in_target = in_target / steps
        out.update(_targets(name, da, in_target, da.isel(time=1, drop=True) if kind == "flow" else None, target))
    return out


SUMMARY_SUFFIXES = ("_target", "_cumulative_target")
