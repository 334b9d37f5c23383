"""Sensitivity results for people: one table per output, parameters ranked by importance (the Sobol'
total index, Morris' mu*, or the tornado's swing)."""

from __future__ import annotations

import io
import json

import xarray as xr
from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..analysis.sensitivity import ranked
from .units import choose, number

COLUMNS = {
    "sobol": [("S1", "S1_conf", "first-order S1"), ("ST", "ST_conf", "total ST")],
    "morris": [("mu_star", "mu_star_conf", "mu*"), ("sigma", None, "sigma")],
    "tornado": [("low", None, "at p5"), ("high", None, "at p95"), ("swing", None, "swing")],
}
NOTE = {
    "sobol": "share of the output's variance: S1 alone, ST with all its interactions ({runs:,} model runs; "
    "+/- the half-width of the {conf:.0%} bootstrap interval)",
    "morris": "elementary effects over each parameter's p1..p99 ({runs:,} model runs; mu* +/- the half-width of "
    "its {conf:.0%} bootstrap interval)",
    "tornado": "one at a time: each parameter at its p5 and p95, the others at their medians ({runs:,} model runs)",
}


def _at_largest(da: xr.DataArray) -> xr.DataArray:
    other = [d for d in da.dims if d not in ("parameter",)]
    return da.max(other) if other else da


def renderables(res: xr.Dataset) -> Group:
    """A heading, then a table per output, parameters ranked by importance."""
    a = res.attrs
    method = a["method"]
    seed = f", seed {a['seed']}" if "seed" in a else ""
    parts: list = [
        Text(f"ewaste {a.get('ewaste_version', '?')} - sensitivity of {a.get('scenario_file', '?')} ({method}{seed})"),
        Text(NOTE[method].format(runs=int(a["model_runs"]), conf=a.get("conf_level", 0))),
    ]
    if a.get("correlations_not_applied"):
        n = int(a["correlations_not_applied"])
        note = f"Note: the scenario's {n} rank correlation(s) are not applied here: the parameters vary independently"
        parts.append(Text(note))
    if any(d not in ("output", "parameter") for d in res.dims):
        parts.append(Text("(a sweep: each figure at the sweep point where it is largest)"))
    units = json.loads(a.get("units", "{}"))
    parts += [_table(res, output, units.get(output, "")) for output in map(str, res["output"].values)]
    return Group(*parts)


def _table(res: xr.Dataset, output: str, units: str) -> Table:
    """One output's table: Sobol' indices as shares, other methods in one unit for the whole table
    (chosen from its largest value)."""
    method = res.attrs["method"]
    at = res.sel(output=output)
    # each column over the parameters, at the sweep point where it is largest
    cols = {k: _at_largest(at[k]) for key, conf, _ in COLUMNS[method] for k in (key, conf) if k}
    table = Table(title=output, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    table.add_column("parameter")
    factor, unit = 1.0, ""
    if method != "sobol":
        factor, unit = choose(units, [float(v) for key, _, _ in COLUMNS[method] for v in cols[key].values])
    for _, _, head in COLUMNS[method]:
        table.add_column(f"{head} ({unit})" if unit else head, justify="right")
    for name in ranked(res, output):
        cells = []
        for key, conf, _ in COLUMNS[method]:
            value = float(cols[key].sel(parameter=name))
            half = float(cols[conf].sel(parameter=name)) if conf else None
            if method == "sobol":
                cells.append(f"{value:.3f} +/- {half:.3f}")
            else:
                cells.append(number(value / factor) + ("" if half is None else f" +/- {number(half / factor)}"))
        table.add_row(name, *cells)
    return table


def sensitivity_text(res: xr.Dataset, width: int = 140) -> str:
    """The tables as plain text."""
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, force_terminal=False).print(renderables(res))
    return buffer.getvalue().rstrip() + "\n"
