"""Readable summaries of results: target-year and cumulative values, over the grid."""

from __future__ import annotations

import numpy as np
import xarray as xr

SCALES = {
    "t": [(1e6, "Mt"), (1e3, "kt"), (1.0, "t")],
    "TWh": [(1.0, "TWh")],
    "MtCO2e": [(1.0, "MtCO2e")],
    "unit": [(1e6, "M units"), (1e3, "k units"), (1.0, "units")],
}


def fmt(value: float, units: str) -> str:
    """A number with a readable unit prefix (t -> kt -> Mt)."""
    base, _, per = units.partition("/")
    for factor, name in SCALES.get(base, [(1.0, base)]):
        if abs(value) >= factor or factor == 1.0:
            return f"{value / factor:,.3g} {name}" + (f"/{per}" if per else "")
    return f"{value:g} {units}"


def _point(da: xr.DataArray, flat_index: int, own_dims: tuple) -> str:
    """The grid point at a flat index, as dim=label pairs over the dimensions that matter."""
    idx = np.unravel_index(flat_index, da.shape)
    pairs = [f"{d}={da[d].values[i]}" for d, i in zip(da.dims, idx, strict=True) if d in own_dims]
    return ", ".join(pairs) or "every point"


def _varying(da: xr.DataArray) -> tuple[str, ...]:
    """The dimensions along which the values actually change."""
    values = np.asarray(da.values, dtype=float)
    tol = 1e-12 * (np.nanmax(np.abs(values)) if values.size else 0.0)
    return tuple(d for i, d in enumerate(da.dims) if np.nanmax(np.ptp(values, axis=i)) > tol)


def describe(da: xr.DataArray, units: str) -> str:
    """One value, or min / median / max over the grid with the points that give the extremes
    (named by the dimensions along which the quantity changes)."""
    own_dims = _varying(da)
    values = np.asarray(da.values, dtype=float)
    if values.size == 1:
        return fmt(float(values.reshape(-1)[0]), units)
    flat = values.reshape(-1)
    lo, hi = int(np.argmin(flat)), int(np.argmax(flat))
    if flat[lo] == flat[hi]:
        return f"{fmt(flat[lo], units)} at every grid point"
    return (
        f"min {fmt(flat[lo], units)} [{_point(da, lo, own_dims)}]  median {fmt(float(np.median(flat)), units)}  "
        f"max {fmt(flat[hi], units)} [{_point(da, hi, own_dims)}]"
    )


def summarise(res: xr.Dataset) -> str:
    """The summary `ewaste run` prints: totals over all fleets."""
    target, start = res.attrs["target_year"], res.attrs["start_year"]
    total = res.sum("fleet") if "fleet" in res.dims else res
    grid_dims = [d for d in total.dims if d not in ("time", "year", "material", "metal", "history", "lag")]
    points = xr.DataArray(
        np.zeros([total.sizes[d] for d in grid_dims]), dims=grid_dims, coords={d: total[d] for d in grid_dims}
    )
    n_points = points.size
    lines = [
        f"ewaste {res.attrs['ewaste_version']} - scenario {res.attrs.get('title', '?')!r} "
        f"({n_points} grid point{'s' if n_points > 1 else ''}"
        + (f" over {', '.join(grid_dims)}" if grid_dims else "")
        + f"; {res.attrs['backend']} backend)"
    ]

    def row(label: str, name: str, units: str, **sel) -> None:
        da = total[name].sel(sel) if sel else total[name]
        full = da.broadcast_like(points).transpose(*grid_dims)
        lines.append(f"  {label:<34} {describe(full, units)}")

    lines.append(f"E-waste in {target}")
    row("generated", "ewaste_generated_target", "t/yr")
    row("recovered (material)", "recovered_target", "t/yr")
    row("disposed (incl. process losses)", "disposed_target", "t/yr")
    lines.append(f"Cumulative {start}-{target}")
    row("e-waste generated", "ewaste_generated_cumulative_target", "t")
    row("recovered", "recovered_cumulative_target", "t")
    lines.append(f"E-waste by material in {target}")
    for m in total["material"].values:
        row(str(m), "ewaste_by_material_target", "t/yr", material=m)
    if "metal_in_ewaste_target" in total:
        lines.append(f"Circuit-board metals, cumulative {start}-{target} (in e-waste / recovered)")
        for m in total["metal"].values:
            row(f"{m} in e-waste", "metal_in_ewaste_cumulative_target", "t", metal=m)
            row(f"{m} recovered", "metal_recovered_cumulative_target", "t", metal=m)
    lines.append(f"Energy in {target}")
    row("electricity", "energy_target", "TWh/yr")
    row("emissions", "emissions_target", "MtCO2e/yr")
    row(f"units in service, end of {target}", "stock_units_target", "unit")
    fired = int(res["negative_inflow_steps"].sum())
    if fired:
        lines.append(
            f"Note: the stock-driven inflow came out negative in {fired} fleet-step(s) across the grid; "
            f"policy '{res.attrs['negative_inflow']}'."
        )
    return "\n".join(lines)
