"""Results as an Excel workbook (openpyxl through pandas): one sheet per table, units in the headers,
numbers stored as numbers.

Sheets: `Annual` (every quantity without a material or metal, by fleet, grid point and year: the
value in the year and the cumulative total), `Annual by material` and `Annual by metal`, `Target year`
(the target year's value and the total from the start year to it), `Destinations` (e-waste generated,
collected, not collected, recovered in all and by material, processing losses, disposed), `Energy and
emissions` (embodied emissions too, where given), `Money` (capex, depreciation as reported and
economic, stranded value, net book value, ..., in the scenario's currency, with [finance]), `Inputs`
(the grid's parameters with their sources), `Defaults used` and `Provenance`.
A summary's sheets by year hold the target year only; `year` keeps only that year in them.
"""

from __future__ import annotations

import pandas as pd
import xarray as xr

from ..errors import InputError
from .provenance import defaults_table, inputs_table, provenance_table
from .tables import ANNUAL, CUMULATIVE, by_year, quantities, target_year, wide_table

MAX_ROWS = 1_048_576  # rows of an Excel sheet, its header included
DESTINATIONS = ("ewaste_generated", "collected", "not_collected", "recovered", "processing_losses", "disposed")
ENERGY = ("in_service_units", "energy", "emissions", "embodied_emissions", "embodied_emissions_amortised")
MONEY = (
    "capex",
    "depreciation",
    "depreciation_economic",
    "deferred_depreciation",
    "written_off",
    "resale_value",
    "stranded_value",
    "gain_on_disposal",
    "ownership_cost",
    "lease_cost",
    "transferred_in",
    "transferred_out",
    "net_book_value",
    "net_book_value_economic",
)
WIDTH = (10, 48)  # the narrowest and widest column, in characters


def write_xlsx(results: xr.Dataset, tmp: str, year: int | None = None, grid: xr.Dataset | None = None) -> None:
    """Write the workbook of `results` to `tmp` (`grid`: the scenario grid for the inputs sheet).

    Raises InputError if a sheet has more rows than Excel holds (1,048,576).
    """
    sheets = workbook(results, year, grid)
    for name, frame in sheets.items():
        check_rows(frame, name)
    with open(tmp, "wb") as f, pd.ExcelWriter(f, engine="openpyxl") as writer:  # a handle: tmp ends in .part
        for name, frame in sheets.items():
            frame.to_excel(writer, sheet_name=name, index=False)
            _lay_out(writer.sheets[name], frame)


def workbook(results: xr.Dataset, year: int | None = None, grid: xr.Dataset | None = None) -> dict[str, pd.DataFrame]:
    """The sheets, name -> table, in order (sheets with nothing to show left out)."""
    scalar = [n for n in quantities(results) if not _breakdown(results, n)]
    by_material = [n for n in quantities(results) if _breakdown(results, n) == "material"]
    by_metal = [n for n in quantities(results) if _breakdown(results, n) == "metal"]
    sheets = {
        "Annual": _by_year(results, scalar, year),
        "Annual by material": _by_year(results, by_material, year),
        "Annual by metal": _by_year(results, by_metal, year),
        "Target year": _target(results, scalar),
        "Destinations": _destinations(results, year),
        "Energy and emissions": _by_year(results, [n for n in ENERGY if n in scalar], year),
        "Money": _by_year(results, [n for n in MONEY if n in scalar], year),
        "Inputs": inputs_table(grid, results.attrs),
        "Defaults used": defaults_table(results),
        "Provenance": provenance_table(results),
    }
    return {name: frame for name, frame in sheets.items() if frame is not None and len(frame.columns)}


def check_rows(frame: pd.DataFrame, sheet: str) -> None:
    """Raises InputError (no file named: the writer names it) if `frame` does not fit in one sheet."""
    if len(frame) + 1 > MAX_ROWS:
        raise InputError(
            None,
            "--out",
            f"sheet {sheet!r} would have {len(frame):,} rows, more than Excel's {MAX_ROWS - 1:,}: "
            "write .nc or .csv, or narrow it with --year or --summary",
        )


def _breakdown(results: xr.Dataset, name: str) -> str | None:
    da = by_year(results, name)
    return next((d for d in ("material", "metal") if da is not None and d in da.dims), None)


def _header(name: str, da: xr.DataArray, what: str = "") -> str:
    """A column's header: the quantity, what of it, and its units (`energy, cumulative (TWh)`)."""
    return f"{name}{', ' + what if what else ''} ({da.attrs.get('units', '')})"


def _by_year(results: xr.Dataset, names: list[str], year: int | None) -> pd.DataFrame | None:
    """Each quantity's value in the year and its cumulative total (flows), by year."""
    columns = {}
    for name in names:
        for kind in (ANNUAL, CUMULATIVE):
            da = by_year(results, name, kind, year)
            if da is not None:
                columns[_header(name, da, "" if kind == ANNUAL else "cumulative")] = da
    return wide_table(columns) if columns else None


def _target(results: xr.Dataset, names: list[str]) -> pd.DataFrame | None:
    """Each quantity in the target year and its total from the start year to the target year."""
    start, end = results.attrs.get("start_year"), target_year(results)
    columns = {}
    for name in names:
        for kind, what in ((ANNUAL, f"in {end}"), (CUMULATIVE, f"{start}-{end}")):
            da = by_year(results, name, kind, end)
            if da is not None:
                columns[_header(name, da, what)] = da.squeeze("year", drop=True)
    return wide_table(columns) if columns else None


def _destinations(results: xr.Dataset, year: int | None) -> pd.DataFrame | None:
    """Where the e-waste of each year goes: collected or not, recovered (by material) or lost."""
    columns = {}
    for name in DESTINATIONS:
        da = by_year(results, name, ANNUAL, year)
        if da is not None:
            columns[_header(name, da)] = da
        by_material = by_year(results, "recovered_by_material", ANNUAL, year) if name == "recovered" else None
        if by_material is not None:
            for material in by_material["material"].values:
                part = by_material.sel(material=material, drop=True)
                columns[_header(f"recovered {material}", by_material)] = part
    return wide_table(columns) if columns else None


def _lay_out(sheet, frame: pd.DataFrame) -> None:  # noqa: ANN001 - an openpyxl worksheet
    """The header row frozen and filtered, columns wide enough for their headers."""
    from openpyxl.utils import get_column_letter  # noqa: PLC0415

    sheet.freeze_panes = "A2"
    if len(frame.columns):
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(frame.columns))}{len(frame) + 1}"
    for i, column in enumerate(frame.columns, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = min(max(len(str(column)) + 2, WIDTH[0]), WIDTH[1])
