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
from .units import row

COLUMNS = {
    "sobol": [("S1", "S1_conf", "first-order S1"), ("ST", "ST_conf", "total ST")],
    "morris": [("mu_star", "mu_star_conf", "mu*"), ("sigma", None, "sigma")],
    "tornado": [("low", None, "at p5"), ("high", None, "at p95"), ("swing", None, "swing")],
}
NOTE = {
    "sobol": "share of the output's variance: S1 alone, ST with all its interactions ({runs:,} model runs; "
    "+/- the half-width of a {conf:.0%} bootstrap confidence interval)",
    "morris": "elementary effects over each parameter's p1..p99, in the output's units ({runs:,} model runs)",
    "tornado": "one at a time: each parameter at its p5 and p95, the others at their medians ({runs:,} model runs)",
}


def _at_largest(da: xr.DataArray) -> xr.DataArray:
    other = [d for d in da.dims if d not in ("parameter",)]
    return da.max(other) if other else da


def renderables(res: xr.Dataset) -> Group:
    """A table per output, parameters ranked by importance."""
    method = res.attrs["method"]
    units = json.loads(res.attrs.get("units", "{}"))
    parts: list = [Text(NOTE[method].format(runs=int(res.attrs["model_runs"]), conf=res.attrs.get("conf_level", 0)))]
    if res.attrs.get("correlations_not_applied"):
        n = int(res.attrs["correlations_not_applied"])
        note = f"Note: the scenario's {n} rank correlation(s) are not applied here: the parameters vary independently"
        parts.append(Text(note))
    if any(d not in ("output", "parameter") for d in res.dims):
        parts.append(Text("(a sweep: each figure at the sweep point where it is largest)"))
    for output in map(str, res["output"].values):
        table = Table(title=output, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
        table.add_column("parameter")
        for _, _, head in COLUMNS[method]:
            table.add_column(head, justify="right")
        at = res.sel(output=output)
        unit = units.get(output, "")
        for name in ranked(res, output):
            cells = []
            for key, conf, _ in COLUMNS[method]:
                value = float(_at_largest(at[key].sel(parameter=name)))
                if method == "sobol":
                    cells.append(f"{value:.3f} +/- {float(_at_largest(at[conf].sel(parameter=name))):.3f}")
                else:
                    text, shown = row(unit, [value])
                    cells.append(f"{text[0]} {shown}".strip())
            table.add_row(name, *cells)
        parts.append(table)
    return Group(*parts)


def sensitivity_text(res: xr.Dataset, width: int = 140) -> str:
    """The tables as plain text."""
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, force_terminal=False).print(renderables(res))
    return buffer.getvalue().rstrip() + "\n"
