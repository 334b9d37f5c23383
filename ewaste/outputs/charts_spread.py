"""Charts of how far results move: the sweep dimension that moves them most, the p5–p95 fan over the
draws of uncertain inputs, and the one-at-a-time tornado of `ewaste sensitivity --method tornado`.

`ewaste.outputs.charts` lists them in the registry.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ..analysis.uncertainty import over_draws
from .chartkit import DRAW, ChartData, label_text, missing_variables, palette, scaled, sweep_dims
from .units import choose

# the headline the sweep chart follows: the first of these that some sweep dimension moves
SWEEP_METRICS = {
    "ewaste_generated": "e-waste generated",
    "disposed": "e-waste disposed",
    "energy": "electricity",
    "emissions": "emissions",
}
FAN = (0.05, 0.25, 0.5, 0.75, 0.95)
TORNADO_ROWS = 8  # parameters shown per output, by swing


def _total(data: ChartData, name: str) -> xr.DataArray:
    """A variable summed over fleets, mean over draws (keeps its units)."""
    da = data.results[name].sum("fleet", keep_attrs=True)
    return da.mean(DRAW, keep_attrs=True) if DRAW in da.dims else da


def _at_others(da: xr.DataArray, dim: str, data: ChartData) -> xr.DataArray:
    """`da` at the reference point of every sweep dimension but `dim`."""
    return da.sel({d: v for d, v in data.at.items() if d in da.dims and d != dim})


def strongest_sweep(data: ChartData) -> tuple[str, str] | None:
    """(metric, sweep dimension): the first metric of SWEEP_METRICS that a sweep moves, and the sweep
    dimension that moves its cumulative total to the target year most (the others at the reference
    point); None where no sweep moves any of them."""
    for metric in SWEEP_METRICS:
        name = f"{metric}_cumulative_target"
        if name not in data.results:
            continue
        total = _total(data, name)
        moves = {}
        for dim in sweep_dims(total):
            along = _at_others(total, dim, data)
            moves[dim] = float(along.max() - along.min())
        best = max(moves, key=lambda d: moves[d], default=None)
        if best is not None and moves[best] > 0:
            return metric, best
    return None


def needs_sweep(data: ChartData) -> str | None:
    """None, or why there is no sweep to draw (none, or none that moves a result)."""
    if not sweep_dims(data.results):
        return "needs a sweep dimension: results of a scenario with a sweep (e.g. refresh-cycle)"
    if strongest_sweep(data) is None:
        return "needs a sweep that moves e-waste, disposal, energy or emissions: no sweep here moves them"
    return None


def draw_sweep(fig: Figure, data: ChartData) -> None:
    """Left, where the results have annual values: the metric per year, one line per label of the
    strongest sweep dimension. Right: its cumulative total to the target year for each label, the other
    sweeps at the reference point, whiskers from their minimum to their maximum."""
    metric, dim = strongest_sweep(data)
    annual = f"{metric}_annual"
    axes = fig.subplots(1, 2) if annual in data.results else [None, fig.add_subplot()]
    labels = list(data.results[dim].values)
    colors = palette(len(labels), "viridis")
    if axes[0] is not None:
        da, units = scaled(_at_others(_total(data, annual), dim, data))
        for label, color in zip(labels, colors, strict=True):
            axes[0].plot(da["year"], da.sel({dim: label}), marker="o", ms=3, color=color, label=label_text(label))
        axes[0].legend(title=dim, fontsize=7, title_fontsize=7, frameon=False)
        axes[0].set_ylabel(f"{SWEEP_METRICS[metric]} ({units})")
        axes[0].set_xlabel("year")
    total = _total(data, f"{metric}_cumulative_target")
    factor, units = choose(str(total.attrs.get("units", "")), [float(abs(total).max())])
    bars = _at_others(total, dim, data) / factor
    others = [d for d in sweep_dims(total) if d != dim]
    low = total.min(others) / factor if others else bars
    high = total.max(others) / factor if others else bars
    x = np.arange(len(labels))
    y = np.asarray([float(bars.sel({dim: v})) for v in labels])
    lo = np.asarray([float(low.sel({dim: v})) for v in labels])
    hi = np.asarray([float(high.sel({dim: v})) for v in labels])
    axes[1].bar(x, y, color=colors, gid="sweep-bars")
    if others:
        axes[1].errorbar(x, y, yerr=[y - lo, hi - y], fmt="none", ecolor="#444444", capsize=3)
    axes[1].set_xticks(x, [label_text(v) for v in labels])
    axes[1].set_xlabel(dim)
    target = data.results.attrs.get("target_year", "")
    axes[1].set_ylabel(f"{SWEEP_METRICS[metric]}, {data.results.attrs.get('start_year', '')}–{target} ({units})")
    axes[1].set_title(f"{dim} moves {SWEEP_METRICS[metric]} most", fontsize=9)


def needs_fan(data: ChartData) -> str | None:
    """None, or what the fan misses (draws, annual values)."""
    if DRAW not in data.results.dims:
        return (
            "needs draws of uncertain inputs (the draw dimension): results of a scenario with distributions, "
            "e.g. default"
        )
    return missing_variables(data, "ewaste_generated_annual", "energy_annual")


def fan_quantiles(data: ChartData, name: str) -> xr.DataArray:
    """(quantile, year) quantiles FAN over the draws of `name` summed over fleets, at the reference
    point of the sweeps."""
    da = data.results[name].sum("fleet", keep_attrs=True)
    da = da.sel({d: v for d, v in data.at.items() if d in da.dims})
    if DRAW not in da.dims:  # a figure that no uncertain input moves: every quantile is its value
        return da.expand_dims(quantile=list(FAN)).transpose("quantile", "year")
    return over_draws(da, FAN)[0].transpose("quantile", "year")


def draw_fan(fig: Figure, data: ChartData) -> None:
    """Two panels, e-waste and electricity per year: p5–p95 and p25–p75 bands and the p50 line."""
    axes = fig.subplots(1, 2)
    for ax, name, what in zip(
        axes, ("ewaste_generated_annual", "energy_annual"), ("e-waste", "electricity"), strict=True
    ):
        q, units = scaled(fan_quantiles(data, name))
        years = q["year"].values
        ax.fill_between(
            years, q.sel(quantile=0.05), q.sel(quantile=0.95), color="#9ecae1", label="p5–p95", gid="fan-90"
        )
        ax.fill_between(years, q.sel(quantile=0.25), q.sel(quantile=0.75), color="#4292c6", label="p25–p75")
        ax.plot(years, q.sel(quantile=0.5), color="#08306b", lw=2, label="p50")
        ax.set_ylabel(f"{what} ({units})")
        ax.set_xlabel("year")
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    n = data.results.sizes[DRAW]
    fig.text(0.99, 0.01, f"{n:,} draws", ha="right", va="bottom", fontsize=7, color="#555555")


def needs_tornado(data: ChartData) -> str | None:
    """None, or what the tornado misses (a sensitivity file of the tornado method)."""
    s = data.sensitivity
    if s is None:
        return data.why_missing.get(
            "sensitivity",
            "needs a tornado: give --sensitivity FILE written by ewaste sensitivity --method tornado -o FILE",
        )
    if s.attrs.get("method") != "tornado":
        method = s.attrs.get("method", "no method")
        return f"needs a tornado: the sensitivity file holds {method} indices (run --method tornado)"
    return None


def tornado_at(data: ChartData, output: str) -> xr.Dataset:
    """The sensitivity results of one output at the reference point of any sweep they carry (else at
    that sweep's middle label)."""
    s = data.sensitivity.sel(output=output)
    for dim in [d for d in s.dims if d != "parameter"]:
        s = s.sel({dim: data.at[dim]}) if dim in data.at else s.isel({dim: s.sizes[dim] // 2})
    return s


def tornado_rows(data: ChartData, output: str) -> list[tuple[str, float, float, float]]:
    """(parameter, low, high, swing) of one output, largest swing first (the TORNADO_ROWS largest
    swings above 0), at the
    reference point of any sweep the sensitivity results carry (else their middle label)."""
    s = tornado_at(data, output)
    rows = [
        (
            str(p),
            float(s["low"].sel(parameter=p)),
            float(s["high"].sel(parameter=p)),
            float(s["swing"].sel(parameter=p)),
        )
        for p in s["parameter"].values
    ]
    return sorted((r for r in rows if r[3] > 0), key=lambda r: -r[3])[:TORNADO_ROWS]


def draw_tornado(fig: Figure, data: ChartData) -> None:
    """One panel per output (up to four): each parameter's bar from the output at its p5 to the output
    at its p95 (the others at their medians), around the base value; largest swing on top."""
    import json  # noqa: PLC0415

    s = data.sensitivity
    units = json.loads(s.attrs.get("units", "{}"))
    outputs = [str(o) for o in s["output"].values][:4]
    cols = 2 if len(outputs) > 1 else 1
    axes = np.ravel(fig.subplots((len(outputs) + 1) // 2, cols, squeeze=False))
    for ax, output in zip(axes, outputs, strict=False):
        rows = tornado_rows(data, output)[::-1]
        base = float(tornado_at(data, output)["base"])
        factor, shown = choose(units.get(output, ""), [abs(v) for r in rows for v in r[1:3]] + [abs(base)])
        y = np.arange(len(rows))
        low = np.asarray([r[1] for r in rows]) / factor
        high = np.asarray([r[2] for r in rows]) / factor
        b = base / factor
        ax.barh(y, low - b, left=b, color="#4292c6", label="parameter at p5", gid=f"tornado-low-{output}")
        ax.barh(y, high - b, left=b, color="#f4a259", label="parameter at p95", gid=f"tornado-high-{output}")
        ax.axvline(b, color="#333333", lw=1)
        if not rows:
            ax.text(0.5, 0.5, "no input moves it", transform=ax.transAxes, ha="center", va="center")
        ax.set_yticks(y, [r[0].removeprefix("fleets.") for r in rows], fontsize=7)
        ax.set_title(output, fontsize=8)
        ax.set_xlabel(shown)
        ax.grid(axis="x", color="#dddddd")
    axes[0].legend(loc="lower right", fontsize=7, frameon=False)
    for ax in axes[len(outputs) :]:
        ax.set_visible(False)
