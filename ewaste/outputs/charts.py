"""The charts of the report and of `ewaste plot`, by name: a registry of `Chart` entries (name, caption,
what the chart needs, how it draws), in the order the report shows them.

To add a chart: write `needs_x(data) -> str | None` and `draw_x(fig, data) -> None` in a module of
`ewaste.outputs` (see `charts_flows`), and add one `Chart` line to CHARTS below. The report and
`ewaste plot --chart NAME` pick it up; `ewaste.outputs.chartkit` has the shared helpers.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from ..errors import InputError
from ..files import atomic_write
from . import charts_capital as capital
from . import charts_flows as flows
from . import charts_spread as spread
from . import waterfall
from .chartkit import Chart, ChartData, describe_point, render

CHARTS: dict[str, Chart] = {
    chart.name: chart
    for chart in (
        Chart(
            "ewaste-by-fleet",
            "E-waste generated per year, by fleet",
            "Mass of the units retired in each calendar year, one segment per fleet.",
            flows.needs_ewaste_by_fleet,
            flows.draw_ewaste_by_fleet,
        ),
        Chart(
            "ewaste-by-material",
            "E-waste generated per year, by material",
            "The same e-waste split by material (the fleets' compositions; circuit-board metals are inside "
            "circuit_boards, not added to it).",
            flows.needs_ewaste_by_material,
            flows.draw_ewaste_by_material,
        ),
        Chart(
            "destinations",
            "Where the e-waste goes",
            "Each year's e-waste by destination: recovered, by material; collected but lost in pre- and "
            "end-processing; not collected for formal recycling. The segments add up to the e-waste generated.",
            flows.needs_destinations,
            flows.draw_destinations,
        ),
        Chart(
            "cohort-age",
            "Units in service by age",
            "Units in service at the end of each year, by the whole years since their cohort entered service "
            "(fleets side by side: units of different kinds are never added).",
            flows.needs_cohort_age,
            flows.draw_cohort_age,
        ),
        Chart(
            "energy-emissions",
            "Electricity and emissions per year",
            "Electricity of the units in service (facility overhead, PUE, included) and its emissions: use "
            "phase, location-based (the grid average); embodied emissions are in the chart of their own.",
            flows.needs_energy_emissions,
            flows.draw_energy_emissions,
        ),
        Chart(
            "money",
            "Money per year: capex, depreciation, stranded value",
            "Left: capex (bars) and depreciation over the accounting life as reported and over the economic "
            "life the units serve (lines). Right: the book value retirements write off above their resale value "
            "(stranded value, bars) and the net book value at each year's end. In the scenario's currency.",
            capital.needs_money,
            capital.draw_money,
        ),
        Chart(
            "embodied",
            "Embodied and use-phase emissions per year",
            "Use-phase emissions (bars) with the embodied (manufacturing) emissions amortised over the life the "
            "units serve on top, and the embodied emissions counted in the year of purchase (line).",
            capital.needs_embodied,
            capital.draw_embodied,
        ),
        Chart(
            "sweep",
            "The sweep that moves the result most",
            "The result per year for each label of the sweep dimension that moves it most (left), and its "
            "total from the start year to the target year (right; whiskers: the other sweeps' minimum to "
            "maximum).",
            spread.needs_sweep,
            spread.draw_sweep,
        ),
        Chart(
            "fan",
            "Uncertainty range over the draws",
            "p5–p95 and p25–p75 of e-waste and electricity per year over the draws of the uncertain inputs, "
            "with the median (p50).",
            spread.needs_fan,
            spread.draw_fan,
        ),
        Chart(
            "tornado",
            "Which uncertain input moves each figure (tornado)",
            "One at a time, each uncertain input at its p5 and at its p95 with the others at their medians: "
            "the output's value against the base (vertical line); largest swing on top.",
            spread.needs_tornado,
            spread.draw_tornado,
            height=6.0,
        ),
        Chart(
            "waterfall",
            "What explains the difference between two scenarios",
            "Cumulative e-waste in A, each group of differing inputs' share of B - A (Shapley values: they add "
            "up exactly; red raises, green lowers), and B. From `ewaste diff A B -o FILE.nc`, given with --diff.",
            waterfall.needs_diff,
            waterfall.draw_diff,
        ),
    )
}
IMAGE_FORMATS = (".svg", ".png")


def chart(name: str, where: str | None = None) -> Chart:
    """The chart named `name`.

    Raises InputError (naming `where`, e.g. the output file, and the field --chart) for an unknown
    name, listing the valid ones."""
    if name not in CHARTS:
        raise InputError(where, "--chart", f"unknown chart {name!r}; charts: {', '.join(CHARTS)}")
    return CHARTS[name]


def check_image_path(path: str | Path) -> str:
    """The image format of an output name (.svg or .png). Raises InputError for another suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_FORMATS:
        raise InputError(str(path), None, f"unknown image format {suffix!r}; use {' or '.join(IMAGE_FORMATS)}")
    return suffix[1:]


def save_chart(
    name: str, data: ChartData, path: str | Path, overwrite: bool = False, source: str | None = None
) -> None:
    """Draw chart `name` from `data` and write it to `path` (.svg or .png) through a temporary file
    renamed into place.

    Raises InputError (exit code 2, nothing written) for an unknown chart or format, data that lacks
    what the chart needs (naming `source` and what is missing), an existing file without `overwrite`,
    a missing or read-only folder.
    """
    fmt = check_image_path(path)
    entry = chart(name, str(path))
    why = entry.needs(data)
    if why is not None:
        raise InputError(source, f"chart {name}", why)
    point = textwrap.fill(f"at {describe_point(data.at)}", 110) if data.at else ""
    image = render(entry, data, fmt, title=entry.title + (f"\n{point}" if point else ""))
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(image), overwrite)
