"""Pieces of the report's HTML: a section with its heading and a table of cells."""

from __future__ import annotations

from html import escape


def section(anchor: str, heading: str, body: str) -> str:
    """A <section> with an anchor and a heading; `body` is HTML."""
    return f'<section id="{anchor}"><h2>{escape(heading)}</h2>\n{body}\n</section>'


def table(head: list[str], rows: list[list[str]], numeric_from: int | None = None) -> str:
    """An HTML table; cells are HTML already (escape text first); columns from `numeric_from` right-aligned."""

    def cls(i: int) -> str:
        return ' class="num"' if numeric_from is not None and i >= numeric_from else ""

    top = "".join(f"<th{cls(i)}>{h}</th>" for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{top}</tr></thead><tbody>{body}</tbody></table>"
