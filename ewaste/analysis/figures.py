"""The headline figures of a grid point's results, the ones a diff compares: e-waste generated,
recovered and disposed, electricity and emissions, each in the target year and cumulative, and the
units in service of each fleet (units of different fleets are never added up)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import InputError

TOTALS = (
    ("ewaste_generated_target", "e-waste generated in {target}"),
    ("ewaste_generated_cumulative_target", "e-waste generated, cumulative {start}-{target}"),
    ("recovered_target", "recovered in {target}"),
    ("recovered_cumulative_target", "recovered, cumulative {start}-{target}"),
    ("disposed_target", "disposed in {target} (incl. process losses)"),
    ("disposed_cumulative_target", "disposed, cumulative {start}-{target}"),
    ("energy_target", "electricity in {target}"),
    ("energy_cumulative_target", "electricity, cumulative {start}-{target}"),
    ("emissions_target", "emissions in {target} (use phase, location-based)"),
    ("emissions_cumulative_target", "emissions, cumulative {start}-{target} (use phase, location-based)"),
)
"""Figures summed over the fleets: result variable -> label."""
PER_FLEET = (("stock_units_target", "units in service at the end of {target}, {fleet}"),)
"""Figures shown fleet by fleet: result variable -> label; the figure is named `variable[fleet]`."""
OUTPUTS = ("ewaste_generated", "recovered", "disposed", "energy", "emissions", "stock_units")
"""The results a diff evaluates (`ewaste.evaluate(outputs=...)`)."""


def figures(res: xr.Dataset, dim: str | None = None) -> tuple[list[str], list[str], list[str], np.ndarray]:
    """The headline figures of results `res` that it holds: their names, labels, units and values.

    `res` has no sweep dimension but `dim` (if given); values: array (figures,) without `dim`, else
    (len(dim), figures), a figure that does not vary along `dim` repeated.
    Raises InputError where a figure still has another dimension than fleet and `dim`.
    """
    fill = {"target": res.attrs.get("target_year", ""), "start": res.attrs.get("start_year", "")}
    fleets = [str(f) for f in res["fleet"].values] if "fleet" in res.dims else []
    ids, labels, units, columns = [], [], [], []
    for name, label in TOTALS:
        if name in res:
            ids.append(name)
            labels.append(label.format(**fill))
            units.append(res[name].attrs.get("units", ""))
            columns.append(res[name].sum("fleet") if "fleet" in res[name].dims else res[name])
    for name, label in PER_FLEET:
        if name in res:
            for f in fleets:
                ids.append(f"{name}[{f}]")
                labels.append(label.format(fleet=f, **fill))
                units.append(res[name].attrs.get("units", ""))
                columns.append(res[name].sel(fleet=f, drop=True))
    return ids, labels, units, np.stack([_values(c, dim, res) for c in columns], axis=-1)


def _values(da: xr.DataArray, dim: str | None, res: xr.Dataset) -> np.ndarray:
    """One figure's values: a number, or an array along `dim` (broadcast where it does not vary)."""
    extra = [d for d in da.dims if d != dim]
    if extra:
        raise InputError(None, str(da.name), f"has dimensions {', '.join(map(str, extra))} left: not one grid point")
    if dim is None:
        return np.asarray(da.values, dtype=float)
    return np.asarray(da.broadcast_like(res[dim]).transpose(dim).values, dtype=float)
