"""What every chart shares: the data a chart draws from (`ChartData`), a chart's entry in the registry
(`Chart`), the grid point a single trajectory is shown at, units scaled for reading, and the rendering of
a matplotlib figure to SVG or PNG (no pyplot: no global state, no interactive backend)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from .units import choose

NOT_SWEEPS = {"fleet", "time", "year", "material", "metal", "draw", "quantile", "age", "history", "lag"}
DRAW = "draw"
WIDTH, HEIGHT = 8.0, 4.0  # inches: a chart fills the report's column, 96 dpi on screen
STYLE = {
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "grid.color": "#dddddd",
    "axes.axisbelow": True,
    "svg.fonttype": "path",  # text drawn as paths: no font to fetch or to miss
}


@dataclass
class ChartData:
    """What the charts draw from.

    results: an ewaste results Dataset (`ewaste.evaluate`, or a saved file read back).
    cohorts: units in service by cohort age (`ewaste.model.cohorts.stock_by_age`), or None.
    sensitivity: what `ewaste sensitivity -o` wrote (variables base, low, high, swing), or None.
    at: the label of each sweep dimension at which single trajectories are shown (`reference_point`).
    why_missing: for an absent piece ("cohorts", "sensitivity"), why it is absent, to say so.
    grid: the scenario grid the results come from, where known (`ewaste.load_grid`), or None.
    diff: what `ewaste diff -o FILE.nc` wrote (figures in A and B, contributions by group), or None.
    """

    results: xr.Dataset
    cohorts: xr.DataArray | None = None
    sensitivity: xr.Dataset | None = None
    at: dict[str, Any] = field(default_factory=dict)
    why_missing: dict[str, str] = field(default_factory=dict)
    grid: xr.Dataset | None = None
    diff: xr.Dataset | None = None


@dataclass(frozen=True)
class Chart:
    """One chart of the registry.

    name: what `ewaste plot --chart` takes. title, about: the caption (what it shows, how to read it).
    needs: a function of ChartData returning None when the chart can be drawn, else what is missing.
    draw: a function (Figure, ChartData) -> None that draws on an empty figure.
    height: the figure's height in inches (its width is WIDTH).
    """

    name: str
    title: str
    about: str
    needs: Callable[[ChartData], str | None]
    draw: Callable[[Figure, ChartData], None]
    height: float = HEIGHT  # inches, at the report's width (WIDTH)


def sweep_dims(ds: xr.Dataset | xr.DataArray) -> list[str]:
    """The sweep dimensions of results (all but fleet, time, year, material, metal, draw, quantile)."""
    return [str(d) for d in ds.dims if d not in NOT_SWEEPS]


def reference_point(results: xr.Dataset, given: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The label of each sweep dimension at which single trajectories are drawn: `given` (dimension ->
    label as text), else the middle label (the upper of two).

    Raises ValueError naming the dimension or label where `given` names one the results do not have.
    """
    given = dict(given or {})
    at = {}
    for dim in sweep_dims(results):
        labels = results[dim].values
        if dim in given:
            text = given.pop(dim)
            match = [v for v in labels if str(v) == text or _same_number(v, text)]
            if not match:
                raise ValueError(f"{dim}={text}: no such label; labels: {', '.join(map(str, labels))}")
            at[dim] = match[0]
        else:
            at[dim] = labels[len(labels) // 2]
    if given:
        raise ValueError(f"no sweep dimension {next(iter(given))!r}; sweep dimensions: {', '.join(at) or 'none'}")
    return at


def _same_number(value: Any, text: str) -> bool:
    try:
        return float(value) == float(text)
    except (TypeError, ValueError):
        return False


def describe_point(at: Mapping[str, Any]) -> str:
    """'refresh_cycle = 4, growth = central', or '' for results without sweeps."""
    return ", ".join(f"{d} = {label_text(v)}" for d, v in at.items())


def label_text(value: Any) -> str:
    """A coordinate label for people: 4 rather than 4.0, text as it is."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, float | np.floating):
        return f"{float(value):g}"
    return str(value)


def one_trajectory(da: xr.DataArray, data: ChartData) -> xr.DataArray:
    """`da` at the reference sweep point and, with draws, its mean over the draws (means add up, so
    stacked parts still sum to their total)."""
    da = da.sel({d: v for d, v in data.at.items() if d in da.dims})
    return da.mean(DRAW) if DRAW in da.dims else da


def missing_variables(data: ChartData, *names: str) -> str | None:
    """None if the results hold every variable named, else what is missing and how to get it."""
    absent = [n for n in names if n not in data.results]
    if not absent:
        return None
    mode = " (these are summary results: run without --summary)" if data.results.attrs.get("mode") == "summary" else ""
    return f"needs {', '.join(absent)}, which these results lack{mode}"


def scaled(da: xr.DataArray, units: str | None = None) -> tuple[xr.DataArray, str]:
    """Values divided into a unit that reads well (t -> kt or Mt, ...) and that unit's name."""
    units = units or str(da.attrs.get("units", ""))
    factor, name = choose(units, [float(np.nanmax(np.abs(da.values)))] if da.size else [0.0])
    return da / factor, name


def palette(n: int, name: str = "tab10") -> list:
    """n distinct colours (a matplotlib colormap's)."""
    from matplotlib import colormaps  # noqa: PLC0415

    cmap = colormaps[name]
    if getattr(cmap, "N", 256) < 64:  # a qualitative map: its own colours, cycled
        return [cmap(i % cmap.N) for i in range(n)]
    return [cmap(x) for x in np.linspace(0.1, 0.9, max(n, 1))][:n]


def stacked_bars(ax: Any, x: np.ndarray, parts: list[tuple[str, np.ndarray]], colors: list) -> None:
    """Bars of `parts` (label, values over x) stacked from 0 upwards, in order, with a legend."""
    bottom = np.zeros(len(x))
    for (label, values), color in zip(parts, colors, strict=True):
        values = np.nan_to_num(np.asarray(values, dtype=float))
        ax.bar(x, values, bottom=bottom, label=label, color=color, width=0.8, gid=f"bar-{label}")
        bottom += values
    ax.legend(loc="upper left", fontsize=8, frameon=False, ncols=2 if len(parts) > 4 else 1)


def new_figure(height: float = HEIGHT) -> Figure:
    """An empty figure of the report's width (constrained layout)."""
    return Figure(figsize=(WIDTH, height), layout="constrained")


def figure(chart: Chart, data: ChartData, title: str | None = None) -> Figure:
    """The chart drawn on a new figure (with `title` above it, if given).

    Raises ValueError if it needs what the data lacks (the message says what)."""
    import matplotlib  # noqa: PLC0415

    why = chart.needs(data)
    if why is not None:
        raise ValueError(why)
    with matplotlib.rc_context(STYLE):
        fig = new_figure(chart.height)
        chart.draw(fig, data)
        if title:
            fig.suptitle(title, fontsize=10)
    return fig


def render(chart: Chart, data: ChartData, fmt: str = "svg", title: str | None = None, dpi: int = 150) -> bytes:
    """The chart drawn and saved as `fmt` ("svg" or "png"). SVG ids are salted with the chart's name,
    so that several charts inlined in one page never share an id. Raises ValueError as `figure`."""
    import matplotlib  # noqa: PLC0415

    with matplotlib.rc_context({**STYLE, "svg.hashsalt": chart.name}):
        fig = figure(chart, data, title)
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=dpi, metadata=_metadata(fmt))
    return buffer.getvalue()


def _metadata(fmt: str) -> dict[str, Any]:
    """No time stamp in the file: the same results give the same bytes."""
    if fmt == "svg":
        return {"Date": None}
    return {"Software": None} if fmt == "png" else {}


def inline_svg(svg: bytes, title: str) -> str:
    """SVG bytes as an element to put in HTML: without the XML declaration and DOCTYPE, scaled to the
    page's width, with a title for screen readers."""
    text = svg.decode("utf-8")
    text = re.sub(r"^<\?xml[^>]*>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    text = re.sub(r'<svg ([^>]*?)width="[^"]*" height="[^"]*"', r'<svg \1role="img"', text, count=1)
    from html import escape  # noqa: PLC0415

    return text.replace(">", f"><title>{escape(title)}</title>", 1) if "<svg" in text else text
