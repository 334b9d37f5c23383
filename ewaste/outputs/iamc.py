"""Results in the IAMC long format (model, scenario, region, variable, unit, year, value), the layout
of the integrated-assessment community that pyam reads: hierarchical variable names, one scenario per
grid point.

Variables: ROOTS gives each quantity's place. The total over fleets is `ROOT|REST` (e.g.
`Waste|Electronic|Recovered|Copper`); each fleet's own is `ROOT|FLEET|REST` (its name as written in
the scenario file, e.g. `Waste|Electronic|servers|Recovered|Copper`); quantities in units (units in
service, put in service, retired) are per fleet only, as units of different fleets do not add up.
Where draws were reduced to quantiles, each variable ends in `|5.0th Percentile`, `|Mean`, ... (the
convention of the IPCC AR6 database); fleets are then not added up, unless there is only one, as
quantiles do not add. Scenarios: the scenario's title, followed by the grid point's coordinates
(`sweep (servers_lifetime_mean=2, recycling_collection_rate=0.223)`), every draw kept being a point.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import xarray as xr

from ..version import __version__
from .tables import ANNUAL, STATISTIC, by_year

REGION = "World"  # ewaste's scenarios are not regional
NOT_GRID = {"fleet", "year", "time", "material", "metal", "quantile", STATISTIC}
WASTE, HARDWARE = "Waste|Electronic", "AI Hardware"
ENERGY, EMISSIONS = "Final Energy|Electricity|AI Hardware", "Emissions|CO2|Use Phase"
# quantity -> (root, rest, breakdown dimension or None, whether fleets add up)
ROOTS: dict[str, tuple[str, str, str | None, bool]] = {
    "ewaste_generated": (WASTE, "Generated", None, True),
    "ewaste_by_material": (WASTE, "Generated", "material", True),
    "metal_in_ewaste": (WASTE, "Generated|Circuit Boards", "metal", True),
    "collected": (WASTE, "Collected", None, True),
    "not_collected": (WASTE, "Not Collected", None, True),
    "recovered": (WASTE, "Recovered", None, True),
    "recovered_by_material": (WASTE, "Recovered", "material", True),
    "metal_recovered": (WASTE, "Recovered|Circuit Boards", "metal", True),
    "processing_losses": (WASTE, "Processing Losses", None, True),
    "disposed": (WASTE, "Disposed", None, True),
    "disposed_by_material": (WASTE, "Disposed", "material", True),
    "metal_disposed": (WASTE, "Disposed|Circuit Boards", "metal", True),
    "energy": (ENERGY, "", None, True),
    "emissions": (EMISSIONS, "", None, True),
    "stock_units": (HARDWARE, "In Service", None, False),
    "inflow_units": (HARDWARE, "Put in Service", None, False),
    "outflow_units": (HARDWARE, "Retired", None, False),
    "stock_gpus": (f"{HARDWARE}|GPUs", "In Service", None, True),
    "outflow_gpus": (f"{HARDWARE}|GPUs", "Retired", None, True),
    "embodied_emissions": ("Emissions|CO2|Embodied", "", None, True),
    "embodied_emissions_amortised": ("Emissions|CO2|Embodied (amortised)", "", None, True),
    "capex": (f"Investment|{HARDWARE}", "", None, True),
    "depreciation": (f"Depreciation|{HARDWARE}", "Reported", None, True),
    "depreciation_economic": (f"Depreciation|{HARDWARE}", "Economic", None, True),
    "stranded_value": (f"Stranded Value|{HARDWARE}", "", None, True),
    "net_book_value": (f"Net Book Value|{HARDWARE}", "", None, True),
}
ELEMENTS = {
    "Ag": "Silver", "Al": "Aluminium", "Au": "Gold", "Co": "Cobalt", "Cu": "Copper", "Fe": "Iron", "Ga": "Gallium",
    "In": "Indium", "Ir": "Iridium", "Ni": "Nickel", "Pb": "Lead", "Pd": "Palladium", "Pt": "Platinum",
    "Rh": "Rhodium", "Ru": "Ruthenium", "Sn": "Tin", "Ta": "Tantalum", "Zn": "Zinc",
}  # fmt: skip
COLUMNS = ["model", "scenario", "region", "variable", "unit", "year", "value"]


def iamc_table(results: xr.Dataset, year: int | None = None) -> pd.DataFrame:
    """The results' annual values (or a summary's target year; `year`: only that year) in the IAMC
    long format: columns COLUMNS, one row per scenario (grid point), variable and year, rows with
    no value left out. Variables, scenarios and statistics as the module says; units as ewaste's
    (`t/yr`, `TWh/yr`), CO2e spelt as iam-units reads it (`Mt CO2e/yr`).
    """
    series = list(_series(results, year))
    grid = _grid_dims(results, [da for _, da, _ in series])
    points = _points(results, grid)
    frames = [_rows(da.broadcast_like(points), variable, unit, grid) for variable, da, unit in series]
    data = pd.concat(frames, ignore_index=True).dropna(subset=["value"])
    data.insert(0, "model", _model(results))
    data.insert(1, "scenario", _scenarios(data, _title(results), grid))
    data.insert(2, "region", REGION)
    return data[COLUMNS]


def meta_table(results: xr.Dataset) -> pd.DataFrame:
    """One row per scenario of `iamc_table`: model, scenario and its grid coordinates (pyam's meta
    indicators)."""
    grid = _grid_dims(results, [da for _, da, _ in _series(results, None)])
    points = _points(results, grid).to_dataframe().reset_index() if grid else pd.DataFrame(index=[0])
    points.insert(0, "scenario", _scenarios(points, _title(results), grid))
    points.insert(0, "model", _model(results))
    return points[["model", "scenario", *grid]]


def _series(results: xr.Dataset, year: int | None) -> Iterator[tuple[str, xr.DataArray, str]]:
    """(variable name, values by year, unit) of every IAMC variable the results have."""
    for name, (root, rest, breakdown, adds) in ROOTS.items():
        da = by_year(results, name, ANNUAL, year)
        if da is not None:
            unit = _unit(da)
            for variable, part in _parts(da, root, rest, breakdown, adds):
                yield variable, part, unit


def _grid_dims(results: xr.Dataset, arrays: list[xr.DataArray]) -> list[str]:
    """The grid dimensions of these values (sweeps, draws kept), in the results' order."""
    used = {str(d) for da in arrays for d in da.dims}
    return [str(d) for d in results.dims if str(d) in used and d not in NOT_GRID]


def _model(results: xr.Dataset) -> str:
    return f"ewaste {results.attrs.get('ewaste_version', __version__)}"


def _title(results: xr.Dataset) -> str:
    return str(results.attrs.get("title") or "ewaste")


def write_iamc(results: xr.Dataset, tmp: str, suffix: str, year: int | None, float_format: str) -> None:
    """Write `iamc_table` to `tmp`: CSV, or an Excel file with sheets `data` and `meta` (the
    layout pyam reads and writes)."""
    data = iamc_table(results, year)
    if suffix == ".csv":
        data.to_csv(tmp, index=False, float_format=float_format)
        return
    from .xlsx import check_rows  # noqa: PLC0415

    check_rows(data, "data")
    with open(tmp, "wb") as f, pd.ExcelWriter(f, engine="openpyxl") as writer:  # a handle: tmp ends in .part
        data.to_excel(writer, sheet_name="data", index=False)
        meta_table(results).to_excel(writer, sheet_name="meta", index=False)


def _parts(
    da: xr.DataArray, root: str, rest: str, breakdown: str | None, adds: bool
) -> Iterator[tuple[str, xr.DataArray]]:
    """(variable name, values without fleet or breakdown dimension) of one quantity: its total over
    fleets (where fleets add up: not for units, nor for quantiles of several fleets), then each
    fleet's; each statistic of quantiles its own variable."""
    fleets = [str(f) for f in da["fleet"].values]
    one = len(fleets) == 1
    wholes = []
    if adds and (one or STATISTIC not in da.dims):
        wholes.append((root, da.isel(fleet=0, drop=True) if one else da.sum("fleet", skipna=False)))
    wholes += [(f"{root}|{fleet}", da.isel(fleet=i, drop=True)) for i, fleet in enumerate(fleets)]
    for head, whole in wholes:
        labels = whole[breakdown].values if breakdown else [None]
        for label in labels:
            part = whole.sel({breakdown: label}, drop=True) if breakdown else whole
            path = "|".join(p for p in (head, rest, _label(breakdown, label)) if p)
            yield from _statistics(path, part)


def _statistics(path: str, da: xr.DataArray) -> Iterator[tuple[str, xr.DataArray]]:
    """Each statistic of quantiles as its own variable (`PATH|50.0th Percentile`, `PATH|Mean`)."""
    if STATISTIC not in da.dims:
        yield path, da
        return
    for label in da[STATISTIC].values:
        name = "Mean" if label == "mean" else f"{float(str(label)[1:]):.1f}th Percentile"
        yield f"{path}|{name}", da.sel({STATISTIC: label}, drop=True)


def _label(dim: str | None, label: object) -> str:
    """A material or metal as a variable-name level: `circuit_boards` -> `Circuit Boards`, `Au` -> `Gold`."""
    if dim is None:
        return ""
    text = str(label)
    if dim == "metal" and text in ELEMENTS:
        return ELEMENTS[text]
    return " ".join(w[:1].upper() + w[1:] for w in text.replace("_", " ").split())


def _unit(da: xr.DataArray) -> str:
    return str(da.attrs.get("units", "")).replace("MtCO2e", "Mt CO2e")


def _points(results: xr.Dataset, grid: list[str]) -> xr.Dataset:
    """A dataset of the grid's coordinates alone: what every variable is broadcast to."""
    return xr.Dataset(coords={d: results[d].values for d in grid})


def _rows(da: xr.DataArray, variable: str, unit: str, grid: list[str]) -> pd.DataFrame:
    df = da.drop_vars([c for c in da.coords if c not in da.dims]).to_dataframe(name="value").reset_index()
    df["variable"], df["unit"] = variable, unit
    return df[[*grid, "variable", "unit", "year", "value"]]


def _scenarios(df: pd.DataFrame, title: str, grid: list[str]) -> pd.Series | str:
    """The scenario name of each row: the title, then the grid point as `(dim=label, ...)`."""
    if not grid:
        return title
    parts = [df[d].map({v: f"{d}={_text(v)}" for v in df[d].unique()}) for d in grid]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + ", " + part
    return title + " (" + joined + ")"


def _text(value: object) -> str:
    return f"{value:.12g}" if isinstance(value, float) else str(value)
