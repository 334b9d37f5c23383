"""The waterfall chart of a diff: figure A, each group of inputs' Shapley contribution as a floating
bar (largest first), and figure B, drawn with matplotlib (an object-oriented Figure: no pyplot state)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ..errors import InputError
from ..files import atomic_write
from .chartkit import ChartData
from .units import choose, number

FORMATS = (".svg", ".png", ".pdf")
UP, DOWN, TOTAL, UNKNOWN = "#c0392b", "#2e8b57", "#5d6d7e", "#bfc9ca"
TOP = 10  # groups drawn as bars; the others are one bar


def waterfall_chart(diff: xr.Dataset, figure: str = "ewaste_generated_target", top: int = TOP) -> Figure:
    """The waterfall of one figure of a diff dataset (`ewaste.analysis.diff.diff_grids` or
    `ewaste.outputs.diff.compare`): a bar for A, a floating bar per group of inputs (its Shapley
    contribution, red where it raises the figure, green where it lowers it; the `top` largest, the
    others as one bar), and a bar for B, in a unit chosen for the figure (t, kt, Mt, TWh, ...).
    Without contributions (`no_attribution`), one grey bar for B - A, with the reason under the chart.

    Returns a matplotlib Figure (save it with `fig.savefig`, or `write_chart`).
    Raises InputError (field --figure) for a figure the dataset does not hold.
    """
    names = [str(f) for f in diff["figure"].values]
    if figure not in names:
        raise InputError(None, "--figure", f"unknown figure {figure!r}; the figures are {', '.join(names)}")
    steps = len(_steps(diff.sel(figure=figure), top)[1])
    width = max(6.0, 1.1 * (steps + 2) + 1.5)
    fig = Figure(figsize=(width, 5.0), layout="constrained")
    draw_waterfall(fig, diff, figure, top)
    return fig


def draw_waterfall(fig: Figure, diff: xr.Dataset, figure: str = "ewaste_generated_target", top: int = TOP) -> None:
    """Draw the waterfall of `waterfall_chart` on an empty figure (the report's registry draws so)."""
    row = diff.sel(figure=figure)
    a, b = float(row["a"]), float(row["b"])
    labels, steps, colours = _steps(row, top)
    factor, unit = choose(str(row["units"].values), [a, b, *steps])
    width = fig.get_figwidth()
    ax = fig.add_subplot()
    level = a
    ax.bar(0, a / factor, color=TOTAL)
    _label(ax, 0, a / factor, a / factor)
    for x, step in enumerate(steps, start=1):
        bottom = min(level, level + step)
        ax.bar(x, abs(step) / factor, bottom=bottom / factor, color=colours[x - 1])
        _label(ax, x, max(level, level + step) / factor, step / factor, signed=True)
        ax.plot([x - 1.4, x + 0.4], [level / factor] * 2, color="#7f8c8d", linewidth=0.6, linestyle=":")
        level += step
    end = len(steps) + 1
    ax.plot([end - 1.4, end + 0.4], [level / factor] * 2, color="#7f8c8d", linewidth=0.6, linestyle=":")
    ax.bar(end, b / factor, color=TOTAL)
    _label(ax, end, b / factor, b / factor)
    ax.set_xticks(range(end + 1), ["A", *labels, "B"], rotation=25, ha="right")
    ax.set_ylabel(unit)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    lines = [str(row["label"].values), f"A: {diff.attrs.get('a', 'A')}", f"B: {diff.attrs.get('b', 'B')}"]
    ax.set_title("\n".join(textwrap.fill(t, int(width * 12)) for t in lines), fontsize=9)
    if "contribution" not in diff:
        note = textwrap.fill(f"Not attributed: {diff.attrs.get('no_attribution', '')}", 110)
        fig.text(0.01, 0.0, note, fontsize=7, va="bottom", ha="left")
        fig.get_layout_engine().set(rect=(0, 0.08, 1, 0.92))


REPORTED = "ewaste_generated_cumulative_target"  # the figure the report's waterfall shows


def needs_diff(data: ChartData) -> str | None:
    """None, or why the report has no waterfall (no diff given, or not of cumulative e-waste)."""
    if data.diff is None:
        return "needs a diff: give --diff FILE written by ewaste diff A B -o FILE.nc"
    if REPORTED not in [str(f) for f in data.diff["figure"].values]:
        return f"needs the diff's figure {REPORTED}"
    return None


def draw_diff(fig: Figure, data: ChartData) -> None:
    """The report's waterfall: cumulative e-waste to the target year."""
    draw_waterfall(fig, data.diff, REPORTED)


def _steps(row: xr.Dataset, top: int) -> tuple[list[str], list[float], list[str]]:
    """The floating bars: group names, contributions (largest |c| first, the rest as one) and colours."""
    if "contribution" not in row:
        return ["B - A (not attributed)"], [float(row["difference"])], [UNKNOWN]
    parts = np.asarray(row["contribution"].values, dtype=float)
    names = [str(g) for g in row["group"].values]
    order = list(np.argsort(-np.abs(parts), kind="stable"))
    labels = [names[j] for j in order[:top]]
    steps = [float(parts[j]) for j in order[:top]]
    if len(order) > top:
        labels.append(f"{len(order) - top} other groups")
        steps.append(float(parts[order[top:]].sum()))
    return labels, steps, [UP if s > 0 else DOWN for s in steps]


def _label(ax, x: float, y: float, value: float, signed: bool = False) -> None:  # noqa: ANN001 - an Axes
    text = number(value)
    ax.annotate(
        ("+" if signed and value > 0 else "") + text,
        (x, y),
        xytext=(0, 2),
        textcoords="offset points",
        ha="center",
        va="bottom",
        fontsize=8,
    )


def write_chart(fig: Figure, path: str | Path, overwrite: bool = False) -> None:
    """Save `fig` as .svg, .png or .pdf (by the suffix), to a temporary file renamed into place.

    Raises InputError for another suffix, an existing file without `overwrite`, a missing folder or a
    failed write (`ewaste.files.atomic_write`).
    """
    path = Path(path)
    fmt = path.suffix.lower()
    if fmt not in FORMATS:
        raise InputError(str(path), None, f"unknown chart format {fmt!r}; use one of {', '.join(FORMATS)}")
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt[1:], metadata=_metadata(fmt)), overwrite)


def _metadata(fmt: str) -> dict:
    """No time stamp in the file, so the same diff gives the same bytes."""
    return {"Date": None} if fmt in (".svg", ".pdf") else {}
