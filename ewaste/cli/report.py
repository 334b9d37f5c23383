"""`ewaste report` (one self-contained HTML page) and `ewaste plot` (one chart as SVG or PNG), over
`ewaste.outputs.report` and `ewaste.outputs.charts`; the output is claimed and checked before any work."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import InputError
from .commands import backend_option

sensitivity_option = click.option(
    "--sensitivity",
    type=click.Path(dir_okay=False),
    help="Tornado to draw: the .nc that `ewaste sensitivity SCENARIO --method tornado -o FILE.nc` wrote.",
)
diff_option = click.option(
    "--diff",
    type=click.Path(dir_okay=False),
    help="Waterfall to draw: the .nc that `ewaste diff A B -o FILE.nc` wrote.",
)
at_option = click.option(
    "--at",
    multiple=True,
    metavar="DIM=LABEL",
    help="The sweep point that charts of one trajectory show (repeatable; default: each sweep's middle label).",
)
overwrite_option = click.option("--overwrite", is_flag=True, help="Replace an existing output.")


def _pairs(at: tuple[str, ...]) -> dict[str, str]:
    """DIM=LABEL options as a dict. Raises InputError for one without '='."""
    out = {}
    for item in at:
        dim, eq, label = item.partition("=")
        if not eq or not dim.strip():
            raise InputError(None, "--at", f"{item!r}: give DIM=LABEL, e.g. refresh_cycle=4")
        out[dim.strip()] = label.strip()
    return out


def _free(out: str, overwrite: bool) -> None:
    """Refuse, before any work, an output that exists (without --overwrite) or whose folder is missing."""
    path = Path(out)
    if not path.resolve().parent.is_dir():
        raise InputError(out, None, "the folder does not exist")
    if path.exists() and not overwrite:
        raise InputError(out, None, "exists; pass --overwrite to replace it")


@click.command()
@click.argument("source")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="The report to write (.html).")
@sensitivity_option
@diff_option
@at_option
@overwrite_option
@backend_option
def report(
    source: str,
    out: str,
    sensitivity: str | None,
    diff: str | None,
    at: tuple[str, ...],
    overwrite: bool,
    backend: str | None,
) -> None:
    """Write one self-contained HTML report of SOURCE (a scenario name or file, a grid, or saved results)."""
    from ..files import claim  # noqa: PLC0415
    from ..outputs.chartdata import gather  # noqa: PLC0415
    from ..outputs.report import build_report, check_report_path, write_report  # noqa: PLC0415
    from ..outputs.show import describe_scenario  # noqa: PLC0415
    from ..pipeline import results_of  # noqa: PLC0415

    check_report_path(out)
    where = _pairs(at)
    _free(out, overwrite)
    with claim(out):
        data = gather(results_of(source, backend), source, sensitivity=sensitivity, at=where, diff=diff)
        text = describe_scenario(data.grid) if data.grid is not None else None
        write_report(build_report(data, source, text), out, overwrite)
    click.echo(f"Report written to {out}")


@click.command()
@click.argument("source")
@click.option("--chart", "name", required=True, help="The chart's name (an unknown name lists them).")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="The image to write (.svg or .png).")
@sensitivity_option
@diff_option
@at_option
@overwrite_option
@backend_option
def plot(
    source: str,
    name: str,
    out: str,
    sensitivity: str | None,
    diff: str | None,
    at: tuple[str, ...],
    overwrite: bool,
    backend: str | None,
) -> None:
    """Draw one chart of SOURCE (a scenario name or file, a grid, or saved results) as SVG or PNG."""
    from ..files import claim  # noqa: PLC0415
    from ..outputs.chartdata import gather  # noqa: PLC0415
    from ..outputs.charts import chart, check_image_path, save_chart  # noqa: PLC0415
    from ..pipeline import results_of  # noqa: PLC0415

    check_image_path(out)
    chart(name, out)
    where = _pairs(at)
    _free(out, overwrite)
    with claim(out):
        data = gather(results_of(source, backend), source, sensitivity=sensitivity, at=where, diff=diff)
        save_chart(name, data, out, overwrite, source)
    click.echo(f"Chart {name} written to {out}")
