"""Disclosure tables to files (.csv, .xlsx, .json), written whole or not at all, and to the terminal (rich).

Files are claimed and written beside the target, then renamed (`ewaste.files.atomic_write`); an
existing file is replaced only with `overwrite`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..errors import InputError
from ..files import atomic_write
from .disclosure_fields import TITLES

FORMATS = (".csv", ".xlsx", ".json")
FIELD_COLUMNS = ("field_id", "reference", "description", "unit", "value")
MAX_PRINTED = 6  # sweep points printed side by side; more go to a file
TEXT_UNIT = "text"


def point_columns(table: pd.DataFrame) -> list[str]:
    """The columns that label a sweep point (sweep dimensions and draw): all but standard, year and the field's."""
    return [c for c in table.columns if c not in ("standard", "year", *FIELD_COLUMNS)]


def check_output(path: str | Path, overwrite: bool = False) -> None:
    """Refuse, before any work, an output ewaste cannot write: unknown suffix, missing folder, an existing
    file without `overwrite`. Raises InputError naming the file."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise InputError(str(path), None, f"unknown format {path.suffix or '(none)'!r}: choose {', '.join(FORMATS)}")
    if not path.parent.is_dir():
        raise InputError(str(path), None, "the folder does not exist")
    if path.exists() and not overwrite:
        raise InputError(str(path), None, "exists; pass --overwrite to replace it")


def write_disclosure(table: pd.DataFrame, path: str | Path, overwrite: bool = False) -> None:
    """Write a disclosure table (`disclosure_table`) to `path`: .csv (the long table, one row per field and
    sweep point; numbers as their shortest exact decimals), .xlsx (the same table on one sheet, numbers
    stored as numbers, text as text) or .json (the tables by sweep point).

    Raises InputError for an unknown suffix, a missing or read-only folder, an existing file without
    `overwrite`, another run writing it; nothing is written then.
    """
    check_output(path, overwrite)
    writer = {".csv": _csv, ".xlsx": _xlsx, ".json": _json}[Path(path).suffix.lower()]
    atomic_write(path, lambda tmp: writer(table, tmp), overwrite)


def _csv(table: pd.DataFrame, tmp: str) -> None:
    table.to_csv(tmp, index=False, encoding="utf-8")


def _xlsx(table: pd.DataFrame, tmp: str) -> None:
    sheet = str(table["standard"].iloc[0]) if len(table) else "disclosure"
    buffer = io.BytesIO()  # pandas picks the engine by suffix and refuses the temporary file's ".part"
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        table.to_excel(writer, sheet_name=sheet, index=False, freeze_panes=(1, 0))
        cells = writer.sheets[sheet]
        for n, column in enumerate(table.columns):
            width = 60 if column in ("description", "value") else max(len(str(column)), 12) + 2
            cells.column_dimensions[cells.cell(row=1, column=n + 1).column_letter].width = min(width, 60)
    Path(tmp).write_bytes(buffer.getvalue())


def as_json(table: pd.DataFrame) -> dict:
    """The table as a JSON document: standard, year, and one entry per sweep point with its labels (and
    draw) and its fields (field_id, reference, description, unit, value)."""
    labels = point_columns(table)
    points = []
    for key, rows in table.groupby(labels, sort=False, dropna=False) if labels else [((), table)]:
        key = key if isinstance(key, tuple) else (key,)
        fields = rows[list(FIELD_COLUMNS)].astype(object).where(rows[list(FIELD_COLUMNS)].notna(), None)
        point = {k: _plain(v) for k, v in zip(labels, key, strict=True)}
        points.append({"point": point, "fields": fields.to_dict("records")})
    first = table.iloc[0] if len(table) else {}
    return {"standard": _plain(first.get("standard")), "year": _plain(first.get("year")), "points": points}


def _plain(value: object) -> object:
    """A NumPy scalar as the Python value JSON writes."""
    return value.item() if hasattr(value, "item") else value


def _json(table: pd.DataFrame, tmp: str) -> None:
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(as_json(table), out, indent=1, ensure_ascii=False, allow_nan=False)
        out.write("\n")


def _shown(value: object, unit: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if unit == "%":
        return f"{value:,.2f}"
    return f"{value:,.3f}"


def renderables(table: pd.DataFrame, source: str | None = None) -> Group:
    """The table for people: one row per field, one value column per sweep point (at most MAX_PRINTED),
    then the text fields as paragraphs. Raises InputError (field `--point`) for more points."""
    labels = point_columns(table)
    points = table[labels].drop_duplicates() if labels else pd.DataFrame(index=[0])
    if len(points) > MAX_PRINTED:
        dims = ", ".join(c for c in labels if c != "draw")
        raise InputError(
            source,
            "--point",
            f"{len(points)} sweep points are too many to print side by side: choose with --point DIM=LABEL "
            f"(dimensions: {dims}), or write them all with -o FILE (.csv, .xlsx, .json)",
        )
    first = table.iloc[0]
    heading = Text(f"{TITLES[first['standard']]}, {first['year']} (estimated with a model)", style="bold")
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    grid.add_column("field_id", no_wrap=True)
    grid.add_column("unit", no_wrap=True)
    columns = []
    for _, point in points.iterrows():
        mask = (table[labels] == point[labels]).all(axis=1) if labels else pd.Series(True, index=table.index)
        columns.append(table[mask])
        shown = [_shown(v, u) for v, u in zip(columns[-1]["value"], columns[-1]["unit"], strict=True) if u != TEXT_UNIT]
        title = "\n".join(f"{c}={point[c]}" for c in labels) or "value"
        width = max([len(line) for line in title.splitlines()] + [len(v) for v in shown])
        grid.add_column(title, justify="right", no_wrap=True, min_width=width)
    grid.add_column("reference", overflow="fold")
    notes = []
    for i, row in enumerate(columns[0].itertuples(index=False)):
        if row.unit == TEXT_UNIT:
            notes.append(Text(f"\n{row.field_id} ({row.reference}): {row.value}"))
            continue
        values = (Text(_shown(c["value"].iloc[i], row.unit)) for c in columns)
        grid.add_row(Text(row.field_id), Text(row.unit), *values, Text(row.reference))
    return Group(heading, grid, *notes)


def disclosure_text(table: pd.DataFrame, source: str | None = None, width: int | None = None) -> str:
    """The printed table as plain text (no colour, no terminal codes), `width` characters wide (default: wide
    enough for the values of every sweep point). Raises InputError as `renderables`."""
    points = len(table[point_columns(table)].drop_duplicates()) if point_columns(table) else 1
    width = width or 100 + 20 * points
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, force_terminal=False).print(renderables(table, source))
    return buffer.getvalue().rstrip() + "\n"


def print_disclosure(table: pd.DataFrame, source: str | None = None) -> None:
    """Print the table to standard output: rich with colour on a terminal. Raises InputError as `renderables`."""
    Console().print(renderables(table, source))
