"""Charts of the capital side (`ewaste.model.finance`): money per year, as reported and economic,
with what retirements strand; embodied emissions next to the use phase.

Each draws on an empty figure at the reference sweep point (mean over draws), summed over fleets;
`ewaste.outputs.charts` lists them in the registry.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .chartkit import ChartData, missing_variables, one_trajectory, palette
from .units import choose

MONEY = ("capex_annual", "depreciation_annual", "depreciation_economic_annual", "stranded_value_annual")


def _total(data: ChartData, name: str) -> np.ndarray:
    da = one_trajectory(data.results[name], data)
    return np.asarray((da.sum("fleet") if "fleet" in da.dims else da).values, dtype=float)


def needs_money(data: ChartData) -> str | None:
    """None, or what the money chart misses (a scenario with a [finance] section)."""
    why = missing_variables(data, *MONEY, "net_book_value_annual")
    return None if why is None else why + " (give the scenario a [finance] section: docs/finance.md)"


def draw_money(fig: Figure, data: ChartData) -> None:
    """Left: capex per year (bars), depreciation as reported and over the economic life (lines).
    Right: stranded value per year (bars) and the net book value at each year's end (line)."""
    years = np.asarray(data.results["year"].values)
    currency = str(data.results["capex_annual"].attrs.get("currency", ""))
    left, right = fig.subplots(1, 2)
    series = {name: _total(data, name) for name in (*MONEY, "net_book_value_annual")}
    factor, unit = choose(currency, [float(np.nanmax(np.abs(v))) for v in series.values()])
    blue, orange, green, red = palette(4)
    left.bar(years, series["capex_annual"] / factor, color=blue, label="capex", gid="bar-capex")
    left.plot(years, series["depreciation_annual"] / factor, color=orange, lw=2, label="depreciation, as reported")
    economic = series["depreciation_economic_annual"] / factor
    left.plot(years, economic, color=green, lw=2, ls="--", label="depreciation, economic life")
    left.set_ylabel(f"per year ({unit})")
    right.bar(years, series["stranded_value_annual"] / factor, color=red, label="stranded value", gid="bar-stranded")
    right.plot(years, series["net_book_value_annual"] / factor, color=blue, lw=2, label="net book value, year end")
    right.set_ylabel(unit)
    for ax in (left, right):
        ax.set_xlabel("year")
        ax.legend(loc="upper left", fontsize=8, frameon=False)


def needs_embodied(data: ChartData) -> str | None:
    """None, or what the embodied chart misses (embodied emissions per unit in the scenario)."""
    why = missing_variables(
        data, "embodied_emissions_annual", "embodied_emissions_amortised_annual", "emissions_annual"
    )
    return None if why is None else why + " (give the fleets embodied emissions, or an archetype that has them)"


def draw_embodied(fig: Figure, data: ChartData) -> None:
    """Emissions per year: use phase (bars) with embodied amortised on top, and embodied counted at
    purchase (line)."""
    years = np.asarray(data.results["year"].values)
    names = ("emissions_annual", "embodied_emissions_amortised_annual", "embodied_emissions_annual")
    use, amortised, purchase = (_total(data, name) for name in names)
    factor, unit = choose("MtCO2e/yr", [float(np.nanmax(use + amortised)), float(np.nanmax(purchase))])
    ax = fig.add_subplot()
    blue, orange, green = palette(3)
    ax.bar(years, use / factor, color=blue, label="use phase (location-based)", gid="bar-use")
    ax.bar(
        years, amortised / factor, bottom=use / factor, color=orange, label="embodied, amortised", gid="bar-embodied"
    )
    ax.plot(years, purchase / factor, color=green, lw=2, label="embodied, at purchase")
    ax.set_ylabel(f"emissions ({unit})")
    ax.set_xlabel("year")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
