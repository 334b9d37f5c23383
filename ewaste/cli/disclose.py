"""`ewaste disclose`: GRI 306, ESRS E5-5 and ESRS E1-5 tables of one reporting year, printed or written to a file."""

from __future__ import annotations

import sys
from contextlib import nullcontext

import click

from ..errors import InputError


def _points(source: str, given: tuple[str, ...]) -> dict[str, str]:
    """`--point DIM=LABEL` (repeatable) as a mapping; raises InputError for a malformed one."""
    out = {}
    for item in given:
        dim, sep, label = item.partition("=")
        if not sep or not dim.strip() or not label.strip():
            raise InputError(source, "--point", f"expected DIM=LABEL, not {item!r}")
        out[dim.strip()] = label.strip()
    return out


@click.command()
@click.argument("source")
@click.option("--standard", required=True, help="gri-306, esrs-e5 or esrs-e1.")
@click.option("--year", type=int, default=None, help="Reporting year (default: the target year).")
@click.option("--point", multiple=True, metavar="DIM=LABEL", help="A sweep label to report (repeatable).")
@click.option("--draw", type=int, default=None, help="With draws: report this draw (default: the median draw).")
@click.option("--basis", default="equipment", show_default=True, help="Hazardous or not: equipment or fraction.")
@click.option("--grid-mix", default=None, metavar="fossil=..,nuclear=..,renewable=..", help="Shares for esrs-e1.")
@click.option("--out", "-o", type=click.Path(dir_okay=False), help="Write the table: .csv, .xlsx or .json.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
def disclose(
    source: str,
    standard: str,
    year: int | None,
    point: tuple[str, ...],
    draw: int | None,
    basis: str,
    grid_mix: str | None,
    out: str | None,
    overwrite: bool,
) -> None:
    """Disclosure table of SOURCE (a scenario or a saved results file) for one year: GRI 306-3/4/5
    (gri-306), ESRS E5-5 (esrs-e5) or ESRS E1-5 (esrs-e1), with field IDs, units and a methodology note."""
    from ..files import claim  # noqa: PLC0415
    from ..outputs.disclosure import disclosure_table  # noqa: PLC0415
    from ..outputs.disclosure_data import parse_grid_mix  # noqa: PLC0415
    from ..outputs.disclosure_fields import STANDARDS  # noqa: PLC0415
    from ..outputs.disclosure_write import check_output, disclosure_text, print_disclosure, write_disclosure  # noqa: PLC0415
    from ..pipeline import results_of  # noqa: PLC0415

    if standard not in STANDARDS:  # before any work
        raise InputError(source, "--standard", f"unknown standard {standard!r}: choose {', '.join(STANDARDS)}")
    mix = parse_grid_mix(grid_mix, source)
    points = _points(source, point)
    if out is not None:
        check_output(out, overwrite)
    with claim(out) if out is not None else nullcontext():
        results = results_of(source)
        table = disclosure_table(
            results, standard, year, point=points, draw=draw, grid_mix=mix, basis=basis, source=source
        )
        if out is not None:
            write_disclosure(table, out, overwrite)
            click.echo(f"{standard} table for {table['year'].iloc[0]} written to {out}")
        elif sys.stdout.isatty():
            print_disclosure(table, source)
        else:
            click.echo(disclosure_text(table, source), nl=False)
