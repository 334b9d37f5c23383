"""Disclosure tables from results: GRI 306-3/4/5, ESRS E5-5 and ESRS E1-5 for one reporting year, with stable
field IDs, units and a methodology note; every total equal to the sum of its parts, exactly.

`disclosure_table(results, "gri-306", 2030)` returns a pandas DataFrame, one row per field and sweep
point. The fields are in `disclosure_fields`, the model streams behind them in `disclosure_flows`,
the package data (waste codes, disposal routes, grid mix) in `disclosure_data`; writing and printing
in `disclosure_write`. docs/disclosure.md documents the mapping.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError
from .disclosure_data import BASES, SOURCES, GridMix, default_grid_mix, fraction_code, hazardous
from .disclosure_fields import STANDARDS, TABLES, Ledger
from .disclosure_flows import ReuseVariable, board_metals_kg, energy_mwh, reporting_year, sweep_dims, waste_flows
from .disclosure_notes import basis_text, energy_note, streams_note, waste_note

MAX_POINTS = 10_000  # sweep points in one table file; beyond, choose with --point
INNER = ("fleet", "material", "stream", "operation")


def apportion(values: np.ndarray) -> np.ndarray:
    """Round each row of non-negative `values` (shape (P, N)) to whole numbers that add up to the row's sum
    rounded (largest remainder method, Hamilton): int64 of the same shape.

    Each part moves by less than 1, and sum(row) == round(sum of the unrounded row) exactly, so every total
    built from the parts equals the sum of the parts it is built from. Negatives (floating-point noise) are 0.
    """
    x = np.clip(values, 0.0, None)
    base = np.floor(x)
    short = np.round(x.sum(axis=1)) - base.sum(axis=1)
    short = np.clip(short, 0, x.shape[1]).astype(np.int64)
    order = np.argsort(base - x, axis=1, kind="stable")  # largest fractional part first
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(x.shape[1]), x.shape), axis=1)
    return base.astype(np.int64) + (rank < short[:, None])


def select_point(results: xr.Dataset, point: Mapping[str, str] | None, source: str | None) -> xr.Dataset:
    """The results at the sweep labels `point` (dimension -> label as text; numbers compare as numbers),
    each dimension kept with its one label. Raises InputError (field `--point`) for an unknown one."""
    for dim, label in (point or {}).items():
        dims = sweep_dims(results)
        if dim not in dims:
            raise InputError(
                source, "--point", f"no sweep dimension {dim!r} (the results have: {', '.join(dims) or 'none'})"
            )
        values = list(results[dim].values)
        found = [i for i, v in enumerate(values) if _same(v, label)]
        if not found:
            shown = ", ".join(str(v) for v in values[:12]) + (", ..." if len(values) > 12 else "")
            raise InputError(source, "--point", f"{dim} has no label {label!r} (its labels: {shown})")
        results = results.isel({dim: found[:1]})
    return results


def _same(value: object, label: str) -> bool:
    if str(value) == label:
        return True
    try:
        return float(value) == float(label)
    except (TypeError, ValueError):
        return False


def _one_draw(results: xr.Dataset, draw: int | None, source: str | None) -> xr.Dataset:
    if draw is None:
        return results
    if "draw" not in results.dims:
        raise InputError(source, "--draw", "these results have no draws of uncertain inputs")
    labels = (
        [int(d) for d in results["draw"].values] if "draw" in results.coords else list(range(results.sizes["draw"]))
    )
    if draw not in labels:
        raise InputError(source, "--draw", f"draws are numbered {labels[0]} to {labels[-1]}")
    return results.isel(draw=[labels.index(draw)])


def median_draw(total: xr.DataArray) -> xr.DataArray:
    """Position along `draw` of the median draw of `total` at each point: the ceil(n/2)-th smallest of n
    (nearest rank; the lower middle for even n), so that a table holds one draw's figures, which add up."""
    k = math.ceil(total.sizes["draw"] / 2) - 1
    pick = lambda v: np.argsort(v, axis=-1, kind="stable")[..., k]  # noqa: E731
    return xr.apply_ufunc(pick, total.compute(), input_core_dims=[["draw"]])  # small: one value per draw and point


def _flat(array: xr.DataArray, dims: list[str], template: xr.DataArray, inner: tuple[str, ...] = ()) -> np.ndarray:
    """Values over the sweep points (C order of `dims`) then the inner dimensions: shape (P, *inner)."""
    array = array.broadcast_like(template).transpose(*dims, *inner)
    return np.asarray(array.values).reshape(-1, *[array.sizes[d] for d in inner])


def disclosure_table(
    results: xr.Dataset,
    standard: str,
    year: int | None = None,
    *,
    point: Mapping[str, str] | None = None,
    draw: int | None = None,
    grid_mix: GridMix | None = None,
    basis: str = "equipment",
    source: str | None = None,
) -> pd.DataFrame:
    """The disclosure table of `standard` ("gri-306", "esrs-e5" or "esrs-e1") for the calendar `year`
    (default: the results' target year).

    Returns a DataFrame with columns standard, year, one per sweep dimension (the point's label), draw
    (only with draws: the draw reported), field_id, reference, description, unit (t, kg, MWh, %, text)
    and value: one row per field and sweep point. Masses are whole kilograms in t (exact decimals),
    energy whole kWh in MWh, so totals equal the sums of their parts exactly (`apportion`).
    `point` picks sweep labels; with draws each point reports one draw, `draw` or else the median draw of
    total waste generated (esrs-e1: of total energy), so that its figures add up. `basis` is "equipment"
    (whole retired units) or "fraction" (materials at depollution) for hazardous vs non-hazardous
    (`ewaste/data/waste_codes.toml`); `grid_mix` the shares of fossil, nuclear and renewable
    generation (default: `ewaste/data/grid_mix.toml`). `source` names the results in errors.

    Raises InputError: unknown standard or basis, year outside the results, unknown point or draw,
    results reduced to quantiles, a variable missing, NaN in the flows, too many points.
    """
    if standard not in STANDARDS:
        raise InputError(source, "--standard", f"unknown standard {standard!r}: choose {', '.join(STANDARDS)}")
    if basis not in BASES:
        raise InputError(source, "--basis", f"unknown basis {basis!r}: choose {' or '.join(BASES)}")
    if "quantile" in results.dims:
        raise InputError(
            source,
            "quantile",
            "results reduced to quantiles over draws: quantiles of parts do not add up to quantiles of totals; "
            "save every draw (ewaste run SCENARIO -o r.nc, without --summary) or give the scenario",
        )
    year = reporting_year(results, year, source)
    results = _one_draw(select_point(results, point, source), draw, source)
    if standard == "esrs-e1":
        arrays, reuse = {"energy": energy_mwh(results, year, source)}, {}
        totals = arrays["energy"].sum("fleet")
    else:
        flows, reuse = waste_flows(results, year, source)
        arrays = {"flows": flows}
        metals = board_metals_kg(results, year)
        if metals is not None:
            arrays["metals"] = metals
        for stream, found in reuse.items():
            if found is not None and not found.inside:  # reported apart: not waste, not in the totals
                arrays[f"not_waste:{stream}"] = found.mass.sum("fleet")
        totals = flows.sum(INNER)
    arrays, drawn, draws_text = _choose_draws(arrays, totals, results, draw, standard)
    dims = [d for d in results.dims if any(d in a.dims for a in arrays.values()) and d not in (*INNER, "metal")]
    template = _template(arrays, dims)
    points = int(np.prod([template.sizes[d] for d in dims]))
    if points > MAX_POINTS:
        raise InputError(source, "--point", f"{points:,} sweep points: choose fewer with --point DIM=LABEL")
    table_basis = basis_text(year, dims, draws_text)
    if standard == "esrs-e1":
        mix = grid_mix or default_grid_mix()
        ledger = _energy_ledger(_flat(arrays["energy"], dims, template, ("fleet",)), mix, source)
        notes = {"energy": energy_note(results, mix, table_basis)}
    else:
        materials = [str(m) for m in results["material"].values]
        ledger = _waste_ledger(arrays, dims, template, materials, basis, reuse, source)
        notes = {"waste": waste_note(results, basis, materials, reuse, table_basis), "streams": streams_note(results)}
    return _frame(standard, year, _labels(template, dims, drawn), TABLES[standard](ledger, notes))


def _template(arrays: dict[str, xr.DataArray], dims: list[str]) -> xr.DataArray:
    """Zeros over the sweep dimensions `dims` (their union across `arrays`), in that order."""
    heads = [a.isel({d: 0 for d in a.dims if d not in dims}, drop=True) for a in arrays.values()]
    template = xr.zeros_like(xr.broadcast(*heads)[0])
    return template.transpose(*dims) if dims else template


def _energy_ledger(mwh: np.ndarray, mix: GridMix, source: str | None) -> Ledger:
    """The electricity (MWh, shape (P, fleet)) split by the grid mix's shares into whole kWh."""
    _check_finite(mwh, "energy", source)
    shares = np.array([mix.shares[s] for s in SOURCES])
    kwh = apportion((mwh[..., None] * shares * 1000).reshape(mwh.shape[0], -1))
    return Ledger([], energy_kwh=kwh.reshape(*mwh.shape, len(SOURCES)))


def _waste_ledger(
    arrays: dict[str, xr.DataArray],
    dims: list[str],
    template: xr.DataArray,
    materials: list[str],
    basis: str,
    reuse: Mapping[str, ReuseVariable | None],
    source: str | None,
) -> Ledger:
    """The e-waste parts in whole kilograms (t x 1,000, apportioned per point), hazardous or not by
    `basis`, the board metals in grams and the reuse variables outside the e-waste balance in kilograms."""
    t = _flat(arrays["flows"], dims, template, INNER)
    _check_finite(t, "ewaste_by_material", source)
    ledger = Ledger(materials, kg=apportion(t.reshape(t.shape[0], -1) * 1000).reshape(t.shape))
    ledger.hazardous = _hazardous(t.sum(axis=(3, 4)), materials, basis)
    if "metals" in arrays:
        kg = _flat(arrays["metals"], dims, template, ("metal",))
        ledger.metals_g = {str(m): np.round(kg[:, i] * 1000) for i, m in enumerate(arrays["metals"]["metal"].values)}
    ledger.not_waste_kg = {
        (stream, found.name): np.round(_flat(arrays[f"not_waste:{stream}"], dims, template).reshape(-1) * 1e3)
        for stream, found in reuse.items()
        if f"not_waste:{stream}" in arrays
    }
    return ledger


def _choose_draws(
    arrays: dict[str, xr.DataArray], totals: xr.DataArray, results: xr.Dataset, draw: int | None, standard: str
) -> tuple[dict[str, xr.DataArray], xr.DataArray | None, str | None]:
    """One draw per sweep point: the draw asked for, or the median draw of `totals`; the chosen draw's
    label per point, and a sentence saying so."""
    if "draw" not in totals.dims:
        return arrays, None, None
    names = results["draw"].values if "draw" in results.coords else np.arange(results.sizes["draw"])
    n = results.sizes["draw"]
    if draw is not None:
        pick = xr.zeros_like(totals.isel(draw=0, drop=True), dtype=np.int64)
        text = f"Uncertain inputs: the figures of draw {draw}, as asked (--draw)."
    else:
        pick = median_draw(totals)
        what = "total energy consumption" if standard == "esrs-e1" else "total waste generated"
        text = (
            f"Uncertain inputs: each table gives the figures of one draw, the median draw of {what} over the "
            f"{n:,} draws of the scenario (rank {math.ceil(n / 2)} from the smallest, nearest rank; column draw), "
            "so that its figures add up; quantiles field by field would not."
        )
    chosen = {k: (a.isel(draw=pick) if "draw" in a.dims else a) for k, a in arrays.items()}
    drawn = xr.DataArray(np.asarray(names)[pick.values], dims=pick.dims, coords=pick.coords)
    return chosen, drawn, text


def _check_finite(values: np.ndarray, name: str, source: str | None) -> None:
    if not np.isfinite(values).all():
        raise InputError(source, name, "NaN or infinite values in the results for this year")


def _hazardous(by_fleet_material: np.ndarray, materials: list[str], basis: str) -> np.ndarray:
    """Hazardous or not, per point, fleet and material (bool, shape as `by_fleet_material`, t):
    "fraction": each material's own List of Waste code; "equipment": every material of a fleet whose
    e-waste at that point holds a material classified hazardous (a unit with hazardous components)."""
    risky = np.array([hazardous(fraction_code(m).value) for m in materials], dtype=bool)
    if basis == "fraction":
        return np.broadcast_to(risky, by_fleet_material.shape).copy()
    fleet = ((by_fleet_material > 0) & risky).any(axis=2, keepdims=True)
    return np.broadcast_to(fleet, by_fleet_material.shape).copy()


def _labels(template: xr.DataArray, dims: list[str], drawn: xr.DataArray | None) -> pd.DataFrame:
    """One row per sweep point (C order of `dims`): its label on each dimension and, with draws, the draw."""
    if dims:
        labels = pd.MultiIndex.from_product([template[d].values for d in dims], names=dims).to_frame(index=False)
    else:
        labels = pd.DataFrame(index=[0])
    if drawn is not None:
        labels["draw"] = _flat(drawn, dims, template).reshape(-1)
    return labels


def _frame(standard: str, year: int, labels: pd.DataFrame, rows: list) -> pd.DataFrame:
    """The long table: for each point (outer) every field (inner), in the order the standard lists them."""
    records = []
    points = labels.to_dict("records") if len(labels.columns) else [{}] * len(labels)
    for p, point in enumerate(points):
        for field, value in rows:
            number = value if isinstance(value, str) else _number(value[p])
            records.append(
                {
                    "standard": standard,
                    "year": year,
                    **point,
                    "field_id": field.id,
                    "reference": field.reference,
                    "description": field.description,
                    "unit": field.unit,
                    "value": number,
                }
            )
    return pd.DataFrame.from_records(records)


def _number(value: np.generic) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


__all__ = ["apportion", "disclosure_table", "median_draw", "select_point"]
