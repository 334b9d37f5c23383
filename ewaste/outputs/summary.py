"""The summary `ewaste run` and `ewaste summary` print: target-year and cumulative figures as tables
(rich), one value, the spread across a sweep, or an uncertainty range over draws.

rich draws the tables: colour and box lines on a terminal, plain text otherwise. A sweep's spread is
labelled as such ("across the sweep: min / median / max") and never shown as an estimate; draws give
p5 / p50 / p95 and the mean. Units of different sizes are never added up: units in service are
shown fleet by fleet.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr
from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..analysis.uncertainty import DRAW, QUANTILES, over_draws
from .units import number, row

NOT_SWEEPS = {"fleet", "time", "year", "material", "metal", "history", "lag", DRAW, "quantile"}
MAX_POINT_TABLES = 8  # draws and a sweep: a table per sweep point up to this many, else the spread of p50
# the defaults (results' defaults_used) that each figure depends on
AFFECTS = {
    "energy": ("pue", "utilisation", "power"),
    "emissions": ("grid_intensity",),
    "recovered": ("collection_rate", "preprocessing_yield", "endprocessing_yield", "metal_preprocessing_yield"),
    "disposed": ("collection_rate", "preprocessing_yield", "endprocessing_yield"),
    "material": ("composition",),
}
NAMES = {"pue": "PUE", "utilisation": "utilisation", "power": "power", "grid_intensity": "grid intensity"}


@dataclass(frozen=True)
class Figure:
    """One row: a label, a result variable (summed over fleets unless `fleet`), its units."""

    label: str
    name: str
    units: str
    sel: tuple[tuple[str, str], ...] = ()
    affects: str | None = None


def figures(res: xr.Dataset) -> list[tuple[str, list[Figure]]]:
    """The sections and rows of the summary, as the results allow."""
    target, start = res.attrs["target_year"], res.attrs["start_year"]
    fleets = [str(f) for f in res["fleet"].values] if "fleet" in res.dims else []
    out = [
        (
            f"E-waste in {target}",
            [
                Figure("generated", "ewaste_generated_target", "t/yr"),
                Figure("recovered (material)", "recovered_target", "t/yr", affects="recovered"),
                Figure("disposed (incl. process losses)", "disposed_target", "t/yr", affects="disposed"),
            ]
            + (
                [Figure(f"  of which fleet {f}", "ewaste_generated_target", "t/yr", (("fleet", f),)) for f in fleets]
                if len(fleets) > 1
                else []
            ),
        ),
        (
            f"Cumulative {start}-{target}",
            [
                Figure("e-waste generated", "ewaste_generated_cumulative_target", "t"),
                Figure("recovered", "recovered_cumulative_target", "t", affects="recovered"),
                Figure("passed on to a second life (not e-waste)", "reused_cumulative_target", "t"),
            ],
        ),
    ]
    if "ewaste_by_material_target" in res:
        out.append(
            (
                f"E-waste by material in {target}",
                [
                    Figure(str(m), "ewaste_by_material_target", "t/yr", (("material", str(m)),), "material")
                    for m in res["material"].values
                ],
            )
        )
    if "metal_in_ewaste_target" in res:
        out.append(
            (
                f"Circuit-board metals, cumulative {start}-{target}",
                [
                    Figure(f"{m} {what}", var, "t", (("metal", str(m)),))
                    for m in res["metal"].values
                    for what, var in (
                        ("in e-waste", "metal_in_ewaste_cumulative_target"),
                        ("recovered", "metal_recovered_cumulative_target"),
                    )
                ],
            )
        )
    energy = [
        Figure("electricity", "energy_target", "TWh/yr", affects="energy"),
        Figure("emissions (use phase, location-based)", "emissions_target", "MtCO2e/yr", affects="emissions"),
    ]
    energy += [Figure(f"  of which fleet {f}", "energy_target", "TWh/yr", (("fleet", f),)) for f in fleets[1:]]
    if len(fleets) > 1:
        energy.insert(2, Figure(f"  of which fleet {fleets[0]}", "energy_target", "TWh/yr", (("fleet", fleets[0]),)))
    out.append((f"Energy in {target}", energy))
    units = []
    for f in fleets:
        sel = (("fleet", f),)
        if "in_service_units_target" in res:
            units.append(Figure(f"{f}: in service, average over {target}", "in_service_units_target", "unit", sel))
        units.append(Figure(f"{f}: in service, end of {target}", "stock_units_target", "unit", sel))
    out.append(("Units in service, fleet by fleet", units))
    if "in_service_gpus_target" in res:
        out.append(
            (
                "GPUs (units of every fleet in GPUs)",
                [
                    Figure(f"in service, average over {target}", "in_service_gpus_target", "GPU"),
                    Figure(f"retired from a fleet, {start}-{target}", "outflow_gpus_cumulative_target", "GPU"),
                    Figure(f"GPU-years in service, {start}-{target}", "gpu_years_cumulative_target", "GPU yr"),
                ],
            )
        )
    out += _capital(res, start, target)
    # a run of some results only (--outputs) shows the rows it has
    kept = [(section, [f for f in rows if f.name in res]) for section, rows in out]
    return [(section, rows) for section, rows in kept if rows]


def _capital(res: xr.Dataset, start: int, target: int) -> list[tuple[str, list[Figure]]]:
    """The money section (as reported and economic, side by side) and embodied emissions."""
    out = []
    if "capex_target" in res:
        attrs = res["capex_target"].attrs
        cur = str(attrs.get("currency", ""))
        basis = f"{cur}, {attrs.get('price_basis', '')} {attrs.get('price_year', '')} prices"
        rows = [
            Figure("capex", "capex_cumulative_target", cur),
            Figure("depreciation, as reported", "depreciation_cumulative_target", cur),
            Figure("depreciation, economic life", "depreciation_economic_cumulative_target", cur),
            Figure("  deferred by the books", "deferred_depreciation_cumulative_target", cur),
            Figure("stranded value (write-offs less resale)", "stranded_value_cumulative_target", cur),
            Figure("book value moved on to a second life", "transferred_out_cumulative_target", cur),
            Figure("cost of owning", "ownership_cost_cumulative_target", cur),
            Figure("cost of leasing the same units", "lease_cost_cumulative_target", cur),
        ]
        out.append((f"Money, cumulative {start}-{target} ({basis})", rows))
        out.append((f"Money at the end of {target}", [Figure("net book value", "net_book_value_target", cur)]))
    if "embodied_emissions_target" in res:
        rows = [
            Figure(f"at purchase, in {target}", "embodied_emissions_target", "MtCO2e/yr"),
            Figure(f"amortised over the life, in {target}", "embodied_emissions_amortised_target", "MtCO2e/yr"),
            Figure(f"at purchase, cumulative {start}-{target}", "embodied_emissions_cumulative_target", "MtCO2e"),
        ]
        out.append(("Embodied emissions (manufacturing)", rows))
    return out


def _values(res: xr.Dataset, fig: Figure) -> xr.DataArray:
    da = res[fig.name]
    sel = dict(fig.sel)
    if sel:
        da = da.sel(sel)
    if "fleet" in da.dims:
        da = da.sum("fleet", skipna=False)
    return da


def _sweeps(res: xr.Dataset) -> dict[str, int]:
    return {str(d): n for d, n in res.sizes.items() if d not in NOT_SWEEPS}


def describe_grid(res: xr.Dataset) -> str:
    """One line on what the results span: sweep points and dimensions, draws and their design."""
    sweeps = _sweeps(res)
    parts = []
    if sweeps:
        points = int(np.prod(list(sweeps.values())))
        over = " x ".join(f"{d} ({n})" for d, n in sweeps.items())
        parts.append(f"{points:,} sweep point{'s' if points > 1 else ''} over {over}")
    if DRAW in res.dims:
        design = json.loads(res.attrs.get("uncertainty", "{}"))
        how = f"{design['sampler']}, seed {design['seed']}, " if "sampler" in design else ""
        n_params = len(design.get("parameters", {}))
        one = single_draw(res)
        if one is not None:
            total = f" of {design['draws']:,}" if "draws" in design else ""
            parts.append(f"draw {one}{total} alone ({how}{n_params} uncertain parameters)")
        else:
            parts.append(f"{res.sizes[DRAW]:,} draws ({how}{n_params} uncertain parameters)")
    return "; ".join(parts) or "one scenario"


def single_draw(res: xr.Dataset) -> int | None:
    """The draw that results of one draw alone (`ewaste run --draw N`) hold, else None."""
    return int(res[DRAW].values[0]) if DRAW in res.dims and res.sizes[DRAW] == 1 else None


def _defaults_note(res: xr.Dataset, fig: Figure) -> str:
    """The defaults the figure rests on, with their source: "PUE 1.56, default: Uptime Institute ..."."""
    if fig.affects is None:
        return ""
    used = json.loads(res.attrs.get("defaults_used", "{}"))
    notes = []
    for name in AFFECTS[fig.affects]:
        entry = used.get(name)
        if not entry or not isinstance(entry.get("value"), int | float):
            continue
        source = re.split(r"[:;,(]", str(entry.get("source") or ""))[0].strip()
        notes.append(f"{NAMES.get(name, name)} {entry['value']:g}, default ({source})")
    yields = [n for n in AFFECTS[fig.affects] if n in used and "value" not in used[n]]
    if yields:
        notes.append("default yields (ewaste scenarios show)")
    return "; ".join(notes)


def _draws(res: xr.Dataset, fig: Figure, sel: dict, quantiles: Sequence[float]) -> list[float]:
    """The quantiles and the mean over the draws of a figure at the sweep point `sel` (where the
    figure varies along it): computed from the draws, or as a file saved them (`quantile`)."""
    da = _at(_values(res, fig), sel)
    if DRAW in da.dims:
        q, mean = over_draws(da, quantiles)
    elif "quantile" in da.dims:
        q, mean = da, _at(_values(res, Figure(fig.label, fig.name + "_mean", fig.units, fig.sel)), sel)
    else:  # a figure no drawn input moves: every quantile and the mean are its value
        q, mean = da.expand_dims(quantile=list(quantiles)), da
    other = [d for d in q.dims if d != "quantile"]  # the sweep's, where no point is chosen: the median
    q, mean = (q.median(other), mean.median()) if other else (q, mean)
    return [float(x) for x in np.atleast_1d(q.values)] + [float(mean)]


def _at(da: xr.DataArray, sel: dict) -> xr.DataArray:
    """da at the sweep point `sel`, along the dimensions da has (a figure the swept input leaves alone
    has not all of them)."""
    return da.sel({d: v for d, v in sel.items() if d in da.dims})


def _table(res: xr.Dataset, sel: dict, quantiles: Sequence[float], title: str | None = None) -> Table:
    """One table of every figure at the point `sel` of the sweep (or across it)."""
    draws = DRAW in res.dims or "quantile" in res.dims
    if "quantile" in res.dims:  # a file that kept the quantiles only
        quantiles = [float(q) for q in res["quantile"].values]
    sweeps = [d for d in _sweeps(res) if d not in sel]
    if draws:
        heads = [f"p{100 * q:g}" for q in quantiles] + ["mean"]
    elif sweeps:
        heads = ["min", "median", "max"]
    else:
        heads = ["value"]
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    table.add_column("")
    for h in heads:
        table.add_column(h, justify="right")
    table.add_column("unit")
    table.add_column("note", overflow="fold")
    for section, rows in figures(res):
        table.add_row(Text(section, style="bold"), *[""] * (len(heads) + 2))
        for fig in rows:
            if draws:
                vals = _draws(res, fig, sel, quantiles)
            else:
                flat = np.asarray(_at(_values(res, fig), sel).values, dtype=float).ravel()
                spread = [float(np.min(flat)), float(np.median(flat)), float(np.max(flat))]
                vals = spread if sweeps else [float(flat[0])]
            text, unit = row(fig.units, vals)
            table.add_row("  " + fig.label, *text, unit, _defaults_note(res, fig))
    return table


def _extremes(res: xr.Dataset) -> str:
    """Where the sweep's lowest and highest target-year e-waste lie (the dimensions that move it)."""
    da = res["ewaste_generated_target"].sum("fleet") if "fleet" in res.dims else res["ewaste_generated_target"]
    for dim in (DRAW, "quantile"):  # where the draws' median lies (a file of quantiles: their median)
        if dim in da.dims:
            da = da.median(dim)
    values = np.asarray(da.values, dtype=float)
    if values.size < 2 or np.ptp(values) == 0:
        return ""
    tol = 1e-12 * np.abs(values).max()
    moving = [d for i, d in enumerate(da.dims) if np.nanmax(np.ptp(values, axis=i)) > tol]

    def at(flat_index: int) -> str:
        idx = np.unravel_index(flat_index, values.shape)
        return ", ".join(f"{d}={da[d].values[i]}" for d, i in zip(da.dims, idx, strict=True) if d in moving)

    low, high = at(int(np.argmin(values))), at(int(np.argmax(values)))
    return f"E-waste in the target year: lowest at {low}; highest at {high}"


def renderables(res: xr.Dataset, quantiles: Sequence[float] = QUANTILES) -> Group:
    """The summary as rich renderables: a heading, the grid line, the tables and notes."""
    a = res.attrs
    parts: list = [
        Text(f"ewaste {a['ewaste_version']} - scenario {a.get('title', '?')!r} ({a.get('backend', '?')} backend)"),
        Text(describe_grid(res)),
    ]
    if single_draw(res) is not None:  # one scenario's values, not a range
        res = res.isel({DRAW: 0}, drop=True)
    sweeps = _sweeps(res)
    if "quantile" in res.dims:
        quantiles = [float(q) for q in res["quantile"].values]
    if DRAW in res.dims or "quantile" in res.dims:
        parts.append(Text("Uncertainty range over the draws: " + " / ".join(f"p{100 * q:g}" for q in quantiles)))
        points = int(np.prod(list(sweeps.values()))) if sweeps else 1
        if sweeps and points <= MAX_POINT_TABLES:
            for idx in np.ndindex(*sweeps.values()):
                sel = {d: res[d].values[i] for d, i in zip(sweeps, idx, strict=True)}
                parts.append(_table(res, sel, quantiles, ", ".join(f"{d}={v}" for d, v in sel.items())))
        else:
            if sweeps:
                parts.append(Text("(the median over the sweep's points of each quantile)"))
            parts.append(_table(res, {}, quantiles))
    else:
        if sweeps:
            parts.append(Text("Across the sweep: min / median / max over its points (a spread, not an estimate)"))
        parts.append(_table(res, {}, quantiles))
    if sweeps:
        parts.append(Text(_extremes(res)))
    fired = int(res["negative_inflow_steps"].sum()) if "negative_inflow_steps" in res else 0
    if fired:
        parts.append(
            Text(
                f"Note: the stock-driven inflow came out negative in {fired} fleet-step(s) across the grid; "
                f"policy '{a.get('negative_inflow', '?')}'."
            )
        )
    return Group(*parts)


def summarise(res: xr.Dataset, quantiles: Sequence[float] = QUANTILES, width: int = 140) -> str:
    """The summary as plain text (no colour, no terminal codes)."""
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, force_terminal=False).print(renderables(res, quantiles))
    return buffer.getvalue().rstrip() + "\n"


def print_summary(res: xr.Dataset, quantiles: Sequence[float] = QUANTILES) -> None:
    """Print the summary to standard output: rich tables with colour on a terminal, plain text otherwise."""
    Console().print(renderables(res, quantiles))


__all__ = ["describe_grid", "number", "print_summary", "summarise"]
