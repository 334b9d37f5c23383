"""The report: one self-contained HTML page (styles inline, charts as inline SVG, no script, nothing
fetched) holding the question, the headline figures, the inputs with their sources and status, the
charts, the methodology and the provenance of a run; readable offline and printable."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from importlib import resources
from pathlib import Path
from string import Template

import numpy as np
import xarray as xr

from ..analysis.uncertainty import QUANTILES, over_draws
from ..errors import InputError
from ..files import atomic_write
from .chartkit import DRAW, ChartData, describe_point, inline_svg, render, sweep_dims
from .charts import CHARTS
from .report_html import section, table
from .report_inputs import fleets, inputs_section
from .units import row

SUFFIXES = (".html", ".htm")
HASH = ' class="hash"'
HEADLINES = [  # (label, variable): totals over the fleets
    ("e-waste generated in {target}", "ewaste_generated_target"),
    ("e-waste generated {start}–{target}", "ewaste_generated_cumulative_target"),
    ("recovered {start}–{target}", "recovered_cumulative_target"),
    ("disposed (not collected, or lost in processing) {start}–{target}", "disposed_cumulative_target"),
    ("electricity in {target}", "energy_target"),
    ("emissions in {target} (use phase, location-based)", "emissions_target"),
]
AGE_TEXT = {
    "middle": "units enter service, on average, in the middle of their step, so a cohort is half a step old "
    "at the end of its first step (flodym's default).",
    "end": "units enter service at the end of their step, so none retires in the step it enters (ODYM; "
    "flodym with inflow_at='end').",
}
NEGATIVE_TEXT = {
    "correct": "that step's inflow is set to 0 and the earlier cohorts retire early by the same share "
    "(ODYM's correction).",
    "allow": "the negative inflow is kept as it is (as ODYM and flodym do by default).",
}
DRIVER_TEXT = {
    "stock": "stock-driven: the units in service are given; the model solves for the units put in service",
    "inflow": "inflow-driven: the units put in service each year are given",
    "capacity": "capacity-driven: the capacity demanded is given; units follow from each cohort's capacity per unit",
}


def check_report_path(path: str | Path) -> None:
    """Refuse an output name that is not .html (InputError) before any work."""
    if Path(path).suffix.lower() not in SUFFIXES:
        raise InputError(str(path), None, "a report is an HTML file: use a .html name")


def build_report(data: ChartData, source: str, scenario_text: str | None = None) -> str:
    """The report of `data` (results of `source`) as one HTML page.

    scenario_text: every parameter of the scenario with its source (`ewaste.outputs.show.describe_scenario`),
    shown as an appendix where given. Charts that the data cannot feed are listed with the reason.
    """
    a = data.results.attrs
    css = resources.files("ewaste.outputs").joinpath("report.css").read_text(encoding="utf-8")
    title = escape(str(a.get("title", "scenario")))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title} — ewaste report</title>",
        f"<style>{css}</style></head><body>",
        f'<header><h1>{title}</h1><p class="lede">{escape(str(a.get("description", "")))}</p></header>',
        '<nav><a href="#question">Question</a><a href="#inputs">Inputs</a><a href="#charts">Charts</a>'
        '<a href="#method">Method</a><a href="#provenance">Provenance</a></nav>',
        _question(data),
        inputs_section(data, scenario_text),
        _charts(data),
        section("method", "Methodology", _method(data)),
        _provenance(data, source),
        f"<footer>Made by ewaste {escape(str(a.get('ewaste_version', '')))} on "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}. Self-contained: it fetches nothing.</footer>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_report(html: str, path: str | Path, overwrite: bool = False) -> None:
    """Write the page to `path` through a temporary file renamed into place.

    Raises InputError for a name that is not .html, an existing file without `overwrite`, a missing or
    read-only folder (nothing is written)."""
    check_report_path(path)
    atomic_write(path, lambda tmp: Path(tmp).write_text(html, encoding="utf-8"), overwrite)


def _grid_text(data: ChartData) -> str:
    """'162 grid points: growth (3) × refresh_cycle (6) …; 1,000 draws of the uncertain inputs'."""
    res = data.results
    dims = sweep_dims(res)
    parts = []
    if dims:
        points = int(np.prod([res.sizes[d] for d in dims]))
        parts.append(f"{points:,} sweep points: " + " × ".join(f"{d} ({res.sizes[d]})" for d in dims))
    if DRAW in res.dims:
        parts.append(f"{res.sizes[DRAW]:,} draws of the uncertain inputs")
    if "quantile" in res.dims:
        parts.append(str(res.attrs.get("draws_reduced_to", "quantiles over the draws")))
    return "; ".join(parts) or "one grid point (no sweep, no draws)"


def _spread_columns(data: ChartData) -> list[str]:
    res = data.results
    if DRAW in res.dims:
        return [f"p{q * 100:g}" for q in QUANTILES]
    if "quantile" in res.dims:
        return [f"p{float(q) * 100:g}" for q in res["quantile"].values]
    if sweep_dims(res):
        return ["at the chosen point", "sweep min", "sweep median", "sweep max"]
    return ["value"]


def _spread(da: xr.DataArray, data: ChartData) -> list[float]:
    """The values of `_spread_columns` for one figure."""
    res = data.results
    if DRAW in res.dims or "quantile" in res.dims:
        da = da.sel({d: v for d, v in data.at.items() if d in da.dims})
        if DRAW in da.dims:
            return [float(v) for v in over_draws(da, QUANTILES)[0].values]
        if "quantile" in da.dims:
            return [float(v) for v in da.values]
        return [float(da)] * len(_spread_columns(data))  # no draw moves this figure
    if sweep_dims(res):
        at = float(da.sel({d: v for d, v in data.at.items() if d in da.dims}))
        values = np.asarray(da.values, dtype=float).ravel()
        return [at, float(values.min()), float(np.median(values)), float(values.max())]
    return [float(da)]


def _question(data: ChartData) -> str:
    res, a = data.results, data.results.attrs
    target, start, end = a.get("target_year"), a.get("start_year"), a.get("end_year")
    names = ", ".join(f"<strong>{escape(f)}</strong>" for f in fleets(res))
    text = (
        f"<p>How much e-waste, recovered material, electricity and emissions do the fleets {names} cause "
        f"from {start} to {end}, and in the target year {target}? Steps: {escape(str(a.get('step')))}. "
        f"Grid: {escape(_grid_text(data))}.</p>"
    )
    columns = _spread_columns(data)
    rows = []
    for label, name in HEADLINES:
        if name in res:
            values = _spread(res[name].sum("fleet", keep_attrs=True), data)
            rows.append(_figure_row(label.format(target=target, start=start), res[name], values))
    if "stock_units_target" in res:
        for fleet in fleets(res):
            values = _spread(res["stock_units_target"].sel(fleet=fleet), data)
            rows.append(
                _figure_row(f"units in service at the end of {target}: {fleet}", res["stock_units_target"], values)
            )
    if rows:
        text += table(["figure (all fleets unless named)", *columns, "unit"], rows, numeric_from=1)
    if sweep_dims(res):
        text += (
            '<p class="note">A sweep steps through chosen values: its min / median / max is a sensitivity '
            "table, not a range of plausible outcomes. Charts of one trajectory show "
            f"<strong>{escape(describe_point(data.at))}</strong> (the middle label of each sweep unless "
            "<code>--at DIM=LABEL</code> chose another).</p>"
        )
    if DRAW in res.dims:
        text += (
            f'<p class="note">p5 / p50 / p95 over {res.sizes[DRAW]:,} draws of the uncertain inputs. Charts of '
            "one trajectory show the mean over the draws, whose parts add up.</p>"
        )
    return section("question", "The question", text)


def _figure_row(label: str, da: xr.DataArray, values: list[float]) -> list[str]:
    texts, unit = row(str(da.attrs.get("units", "")), values)
    return [escape(label), *texts, escape(unit)]


def _charts(data: ChartData) -> str:
    figures, skipped = [], []
    for name, chart in CHARTS.items():
        why = chart.needs(data)
        if why is not None:
            skipped.append(f"<li><strong>{escape(chart.title)}</strong> (<code>{name}</code>): {escape(why)}</li>")
            continue
        svg = inline_svg(render(chart, data, "svg"), chart.title)
        figures.append(
            f'<figure class="chart" id="chart-{name}" data-chart="{name}">{svg}'
            f"<figcaption><strong>{escape(chart.title)}.</strong> {escape(chart.about)}</figcaption></figure>"
        )
    body = "\n".join(figures)
    if skipped:
        body += "<h3>Not drawn</h3><ul>" + "".join(skipped) + "</ul>"
    return section("charts", "Charts", body)


def _method(data: ChartData) -> str:
    a = data.results.attrs
    template = Template(resources.files("ewaste.outputs").joinpath("report_method.html").read_text(encoding="utf-8"))
    drivers = json.loads(a.get("driver", "{}"))
    lives = json.loads(a.get("lifetime_type", "{}"))
    items = "\n".join(
        f"<li><strong>{escape(f)}</strong>: {escape(DRIVER_TEXT.get(d, d))}; lifetime {escape(lives.get(f, '?'))}.</li>"
        for f, d in drivers.items()
    )
    parts = []
    if DRAW in data.results.dims or "quantile" in data.results.dims:
        parts.append("Uncertain inputs are drawn: p5 / p50 / p95 are quantiles of each figure over the draws.")
    if sweep_dims(data.results):
        parts.append("A sweep's min / median / max shows what the chosen values do, not how likely they are.")
    ranges = " ".join(parts) or "One grid point: no sweep and no draws."
    return template.substitute(
        step_text={"year": "yearly steps", "quarter": "quarterly steps", "month": "monthly steps"}.get(
            str(a.get("step")), str(a.get("step"))
        ),
        start_year=escape(str(a.get("start_year"))),
        end_year=escape(str(a.get("end_year"))),
        drivers=items,
        age_convention=escape(str(a.get("age_convention"))),
        age_text=escape(AGE_TEXT.get(str(a.get("age_convention")), "")),
        negative_inflow=escape(str(a.get("negative_inflow"))),
        negative_text=escape(NEGATIVE_TEXT.get(str(a.get("negative_inflow")), "")),
        ranges_text=escape(ranges),
        version=escape(str(a.get("ewaste_version", ""))),
    )


def _provenance(data: ChartData, source: str) -> str:
    a = data.results.attrs
    keys = (
        "ewaste_version",
        "scenario_file",
        "scenario_sha256",
        "grid_file",
        "grid_sha256",
        "backend",
        "engine",
        "precision",
        "mode",
        "draws_reduced_to",
        "history",
        "Conventions",
    )
    rows = [[escape(k), escape(str(a[k]))] for k in keys if k in a]
    rows.insert(0, ["report made from", escape(source)])
    if data.sensitivity is not None:
        s = data.sensitivity.attrs
        rows.append(
            [
                "sensitivity",
                escape(
                    f"{s.get('method')} of {s.get('scenario_file', '?')}, {int(s.get('model_runs', 0)):,} model runs"
                ),
            ]
        )
    cells = "".join(f"<tr><th>{k}</th><td{HASH if 'sha256' in k else ''}>{v}</td></tr>" for k, v in rows)
    html = f"<table><tbody>{cells}</tbody></table>"
    return section("provenance", "Provenance", html)
