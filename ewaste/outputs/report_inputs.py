"""The report's inputs: the fleets, the sweeps, the uncertain inputs as written, the source and status of
every input given (`parameter_sources`) and every default used (`defaults_used`)."""

from __future__ import annotations

import json
import re
from html import escape

import xarray as xr

from .chartkit import ChartData, label_text, sweep_dims
from .report_html import section, table

STATUS = re.compile(r"\[(V2|V|D|R)\]|\bASSUMED\b")


def fleets(results: xr.Dataset) -> list[str]:
    """The fleet names of results, in their order."""
    return [str(f) for f in results["fleet"].values]


def _status(text: str) -> str:
    found = []
    for m in STATUS.finditer(text):
        code = m.group(1) or "ASSUMED"
        if code not in found:
            found.append(code)
    return ", ".join(found) or "—"


def inputs_section(data: ChartData, scenario_text: str | None) -> str:
    """The report's Inputs section (HTML); `scenario_text`, where given, as an appendix of every parameter."""
    res, a = data.results, data.results.attrs
    drivers, lives = json.loads(a.get("driver", "{}")), json.loads(a.get("lifetime_type", "{}"))
    units = (
        {str(f): str(u) for f, u in zip(res["fleet"].values, res["capacity_unit"].values, strict=True)}
        if "capacity_unit" in res.coords
        else {}
    )
    body = "<h3>Fleets</h3>" + table(
        ["fleet", "driver", "lifetime", "capacity unit"],
        [
            [escape(f), escape(drivers.get(f, "")), escape(lives.get(f, "")), escape(units.get(f, ""))]
            for f in fleets(res)
        ],
    )
    dims = sweep_dims(res)
    if dims:
        rows = [
            [escape(d), escape(", ".join(label_text(v) for v in res[d].values)), escape(label_text(data.at[d]))]
            for d in dims
        ]
        body += "<h3>Sweeps</h3>" + table(["dimension", "labels", "charts show"], rows)
    design = json.loads(a.get("uncertainty", "{}") or "{}")
    if design.get("parameters"):
        rows = [[escape(p), escape(_distribution(spec))] for p, spec in design["parameters"].items()]
        how = ", ".join(f"{k} {design[k]}" for k in ("draws", "sampler", "seed") if k in design)
        body += f"<h3>Uncertain inputs ({escape(how)})</h3>" + table(["parameter", "distribution as written"], rows)
    sources = json.loads(a.get("parameter_sources", "{}") or "{}")
    body += "<h3>Sources of the inputs given</h3>"
    if sources:
        rows = [
            [f"<code>{escape(k)}</code>", escape(v), f'<span class="status">{_status(v)}</span>']
            for k, v in sources.items()
        ]
        body += table(["parameter", "source", "status"], rows)
    else:
        body += "<p>The scenario names no source for its inputs.</p>"
    body += "<h3>Defaults used</h3>" + _defaults(json.loads(a.get("defaults_used", "{}") or "{}"))
    body += (
        '<p class="note">Status: <strong>V</strong> read in the source named; <strong>V2</strong> read in a '
        "secondary source quoting the primary; <strong>D</strong> derived by arithmetic from those; "
        "<strong>R</strong> recalled, not yet confirmed in a source; <strong>ASSUMED</strong> chosen to span "
        "a range, not taken from a source.</p>"
    )
    if scenario_text:
        body += "<h3>Every parameter of the scenario</h3><pre>" + escape(scenario_text) + "</pre>"
    return section("inputs", "Inputs", body)


def _distribution(spec: dict) -> str:
    """'triangular(min 102, mode 130.45, max 143) kg', as the scenario file writes it."""
    args = ", ".join(f"{k} {v}" for k, v in spec.items() if k not in ("dist", "units"))
    return f"{spec.get('dist', '?')}({args})" + (f" {spec['units']}" if spec.get("units") else "")


def _value(value: object, units: str) -> str:
    return f"{value}" if units in ("", "1") else f"{value} {units}"


def _defaults(defaults: dict) -> str:
    """The defaults a run used: one row per parameter, or per material or metal for the yields."""
    rows = []
    for name, entry in defaults.items():
        where = entry.get("where")
        if isinstance(where, dict):
            for label, d in where.items():
                rows.append(
                    [
                        f"<code>{escape(name)}</code> [{escape(label)}]",
                        escape(_value(d.get("value"), entry.get("units", ""))),
                        "",
                        escape(str(d.get("source", ""))),
                        escape(str(d.get("status") or "—")),
                    ]
                )
            continue
        shown = "all fleets" if where == "all" else ", ".join(map(str, where or []))
        rows.append(
            [
                f"<code>{escape(name)}</code>",
                escape(_value(entry.get("value"), entry.get("units", ""))),
                escape(shown),
                escape(str(entry.get("source", ""))),
                escape(str(entry.get("status") or "—")),
            ]
        )
    if not rows:
        return "<p>None: the scenario gives every input.</p>"
    return table(["parameter", "value", "where", "source", "status"], rows)
