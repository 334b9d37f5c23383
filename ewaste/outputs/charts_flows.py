"""Charts of one trajectory per year: e-waste by fleet and by material, where it goes (recovered by
material, processing losses, not collected), energy and emissions, units in service by cohort age.

Each draws on an empty figure at the reference sweep point (mean over draws, where there are draws);
`ewaste.outputs.charts` lists them in the registry.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from .chartkit import ChartData, missing_variables, one_trajectory, palette, scaled, stacked_bars
from .units import choose

OLDEST = 10  # cohorts this many whole years old or more share one band of the age chart
MAX_FLEETS = 4  # fleets drawn side by side in the age chart (units of different fleets are never added)


def _years(da: xr.DataArray) -> np.ndarray:
    return np.asarray(da["year"].values)


def _by(da: xr.DataArray, dim: str) -> list[tuple[str, np.ndarray]]:
    """(label, values over year) for each label of `dim`."""
    return [(str(label), np.asarray(da.sel({dim: label}).values, dtype=float)) for label in da[dim].values]


def material_colors(materials: list[str]) -> dict[str, tuple]:
    """One colour per material, the same in every chart of a report."""
    return dict(zip(materials, palette(len(materials), "tab20" if len(materials) > 10 else "tab10"), strict=True))


def needs_ewaste_by_fleet(data: ChartData) -> str | None:
    """None, or what the by-fleet chart misses (annual e-waste)."""
    return missing_variables(data, "ewaste_generated_annual")


def draw_ewaste_by_fleet(fig: Figure, data: ChartData) -> None:
    """Stacked bars: e-waste generated per calendar year, one segment per fleet."""
    da, units = scaled(one_trajectory(data.results["ewaste_generated_annual"], data).transpose("fleet", "year"))
    ax = fig.add_subplot()
    parts = _by(da, "fleet")
    stacked_bars(ax, _years(da), parts, palette(len(parts)))
    ax.set_ylabel(f"e-waste generated ({units})")
    ax.set_xlabel("year")


def needs_ewaste_by_material(data: ChartData) -> str | None:
    """None, or what the by-material chart misses (annual e-waste by material)."""
    return missing_variables(data, "ewaste_by_material_annual")


def draw_ewaste_by_material(fig: Figure, data: ChartData) -> None:
    """Stacked bars: e-waste generated per calendar year (all fleets), one segment per material."""
    da = one_trajectory(data.results["ewaste_by_material_annual"], data).sum("fleet", keep_attrs=True)
    da, units = scaled(da.transpose("material", "year"))
    colors = material_colors([str(m) for m in data.results["material"].values])
    parts = _by(da, "material")
    ax = fig.add_subplot()
    stacked_bars(ax, _years(da), parts, [colors[label] for label, _ in parts])
    ax.set_ylabel(f"e-waste generated ({units})")
    ax.set_xlabel("year")


def needs_destinations(data: ChartData) -> str | None:
    """None, or what the destinations chart misses (annual recovered, losses, not collected)."""
    return missing_variables(data, "recovered_by_material_annual", "processing_losses_annual", "not_collected_annual")


def destinations(data: ChartData) -> tuple[list[tuple[str, np.ndarray]], str, np.ndarray]:
    """The destinations of each year's e-waste (all fleets), in one unit: recovered by material (materials
    with some recovery), lost in processing, not collected; they add up to the e-waste generated.
    Returns (label, values over year) parts, the unit, and the years."""
    res = data.results

    def total(name: str) -> xr.DataArray:
        """`name` over the fleets at the reference point (mean over draws)."""
        return one_trajectory(res[name], data).sum("fleet", keep_attrs=True)

    recovered = total("recovered_by_material_annual").transpose("material", "year")
    losses, not_collected = total("processing_losses_annual"), total("not_collected_annual")
    top = float((recovered.sum("material") + losses + not_collected).max())
    factor, units = choose(str(res["processing_losses_annual"].attrs.get("units", "t/yr")), [top])
    parts = [
        (f"recovered: {label}", values / factor)
        for label, values in _by(recovered, "material")
        if np.nanmax(np.abs(values)) > 0
    ]
    parts.append(("lost in processing", np.asarray(losses.values, dtype=float) / factor))
    parts.append(("not collected", np.asarray(not_collected.values, dtype=float) / factor))
    return parts, units, _years(recovered)


def draw_destinations(fig: Figure, data: ChartData) -> None:
    """Stacked bars: each year's e-waste by destination."""
    parts, units, years = destinations(data)
    colors = material_colors([str(m) for m in data.results["material"].values])
    shades = [colors[label.removeprefix("recovered: ")] for label, _ in parts[:-2]]
    ax = fig.add_subplot()
    stacked_bars(ax, years, parts, [*shades, "#f4a259", "#9e9e9e"])
    ax.set_ylabel(f"e-waste by destination ({units})")
    ax.set_xlabel("year")


def needs_energy_emissions(data: ChartData) -> str | None:
    """None, or what the energy chart misses (annual electricity and emissions)."""
    return missing_variables(data, "energy_annual", "emissions_annual")


def draw_energy_emissions(fig: Figure, data: ChartData) -> None:
    """Two panels of stacked bars per fleet: electricity (TWh/yr) and use-phase emissions."""
    axes = fig.subplots(1, 2)
    for ax, name, what in zip(
        axes, ("energy_annual", "emissions_annual"), ("electricity", "emissions, location-based"), strict=True
    ):
        da, units = scaled(one_trajectory(data.results[name], data).transpose("fleet", "year"))
        parts = _by(da, "fleet")
        stacked_bars(ax, _years(da), parts, palette(len(parts)))
        ax.set_ylabel(f"{what} ({units})")
        ax.set_xlabel("year")


def needs_cohort_age(data: ChartData) -> str | None:
    """None, or why there are no units by cohort age (no scenario found for a results file)."""
    if data.cohorts is None:
        return data.why_missing.get("cohorts", "needs the units in service by cohort age (the scenario)")
    return None


def ages_at_year_end(data: ChartData) -> xr.DataArray:
    """Units in service at the end of each calendar year by whole years of age (`age` 0, 1, ...;
    OLDEST gathers the older ones), per fleet, at the reference point: (fleet, year, age)."""
    da = one_trajectory(data.cohorts, data)
    ends = [int(np.nonzero(da["year"].values == y)[0][-1]) for y in np.unique(da["year"].values)]
    da = da.isel(time=ends).swap_dims(time="year").drop_vars([c for c in ("time", "period") if c in da.coords])
    whole = np.minimum(np.floor(np.round(da["age"].values, 9)), OLDEST).astype(int)
    da = da.assign_coords(age=whole).groupby("age").sum()
    return da.transpose("fleet", "year", "age")


def draw_cohort_age(fig: Figure, data: ChartData) -> None:
    """Per fleet (side by side, never added), stacked bars of the units in service at each year's end,
    one segment per age in whole years (the ages that hold some units)."""
    da = ages_at_year_end(data)
    fleets = [str(f) for f in da["fleet"].values][:MAX_FLEETS]
    axes = np.atleast_1d(fig.subplots(1, len(fleets), squeeze=False)[0])
    colors = palette(OLDEST + 1, "viridis")[::-1]
    for ax, fleet in zip(axes, fleets, strict=True):
        one, units = scaled(da.sel(fleet=fleet).transpose("age", "year"), "unit")
        ages = [int(a) for a in one["age"].values if float(np.abs(one.sel(age=a)).sum()) > 0] or [0]
        parts = [(_age_label(a), np.asarray(one.sel(age=a).values)) for a in ages]
        stacked_bars(ax, one["year"].values, parts, [colors[a] for a in ages])
        ax.legend(title="years in service", loc="upper left", fontsize=7, title_fontsize=7, frameon=False)
        ax.set_title(fleet, fontsize=9)
        ax.set_ylabel(f"in service at year end ({units})")
        ax.set_xlabel("year")


def _age_label(age: int) -> str:
    return f"{age}+" if age >= OLDEST else str(age)
