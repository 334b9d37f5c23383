"""`ewaste diff A B`: two grid points compared, the difference attributed to the inputs that differ."""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from pathlib import Path

import click

from ..errors import InputError
from .commands import backend_option

TABLES = (".csv", ".json", ".nc")
CHARTS = (".svg", ".png", ".pdf")


@click.command()
@click.argument("a")
@click.argument("b")
@click.option("--at", multiple=True, help="dim=label[,dim=label]: labels for the sweep dimensions A and B leave out.")
@click.option("--group", "groups", multiple=True, help="NAME=input,input: attribute to these inputs as one group.")
@click.option("--method", type=click.Choice(("auto", "exact", "sampled")), default="auto", show_default=True)
@click.option("--permutations", type=click.IntRange(1), default=256, show_default=True, help="Sampled: random orders.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Sampled: seed of the orders.")
@click.option("--out", "-o", type=click.Path(dir_okay=False), help="Write the diff: .csv, .json or .nc.")
@click.option("--chart", type=click.Path(dir_okay=False), help="Write the waterfall: .svg, .png or .pdf.")
@click.option("--figure", default="ewaste_generated_target", show_default=True, help="The figure --chart draws.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@backend_option
def diff(
    a: str,
    b: str,
    at: tuple[str, ...],
    groups: tuple[str, ...],
    out: str | None,
    chart: str | None,
    figure: str,
    overwrite: bool,
    **options,
) -> None:
    """Compare grid points A and B: each a scenario (name, .toml, grid .nc) or a results file, with
    @dim=label,... to pick a sweep point (B may be just @dim=label,... for a point of A's source).
    Prints each headline figure in A and B, B - A, and B - A split among the inputs that differ
    (Shapley values: exact up to 10 groups of inputs, sampled from random orders beyond)."""
    from ..analysis.points import parse_labels  # noqa: PLC0415
    from ..files import claim  # noqa: PLC0415
    from ..outputs.diff import compare, diff_text, print_diff  # noqa: PLC0415

    outputs = [(p, kinds) for p, kinds in ((out, TABLES), (chart, CHARTS)) if p is not None]
    _check_outputs(outputs, overwrite)
    shared: dict[str, str] = {}
    for text in at:
        for dim, label in parse_labels(text, None, "--at").items():
            if shared.setdefault(dim, label) != label:
                raise InputError(None, "--at", f"dimension {dim!r} given twice")
    with ExitStack() as stack:
        for path, _ in outputs:  # claimed before the work: two runs cannot write one file
            stack.enter_context(claim(path))
        ds = compare(a, b, at=shared, groups=_groups(groups), **options)
        fig = _chart(ds, figure) if chart else None
        if sys.stdout.isatty():
            print_diff(ds)
        else:
            click.echo(diff_text(ds), nl=False)
        if out:
            from ..outputs.writers import write_table  # noqa: PLC0415

            write_table(ds, out, overwrite)
            click.echo(f"Diff written to {out}")
        if fig is not None:
            from ..outputs.waterfall import write_chart  # noqa: PLC0415

            write_chart(fig, chart, overwrite)
            click.echo(f"Waterfall of {figure} written to {chart}")


def _chart(ds, figure: str):  # noqa: ANN001, ANN202 - a Dataset in, a matplotlib Figure out
    from ..outputs.waterfall import waterfall_chart  # noqa: PLC0415

    return waterfall_chart(ds, figure)


def _groups(texts: tuple[str, ...]) -> dict[str, list[str]]:
    """--group NAME=input,input (repeatable) as NAME -> inputs."""
    out: dict[str, list[str]] = {}
    for text in texts:
        name, eq, members = (s.strip() for s in text.partition("="))
        inputs = [m.strip() for m in members.split(",") if m.strip()]
        if not eq or not name or not inputs:
            raise InputError(
                None, "--group", f"{text!r}: write NAME=input,input (e.g. lifetime=lifetime_mean,lifetime_std)"
            )
        if name in out:
            raise InputError(None, "--group", f"group {name!r} given twice")
        out[name] = inputs
    return out


def _check_outputs(outputs: list[tuple[str, tuple[str, ...]]], overwrite: bool) -> None:
    """Refuse, before any work, an output that cannot be written: its format, its folder, a file there."""
    paths = [Path(p) for p, _ in outputs]
    if len(paths) == 2 and paths[0].resolve() == paths[1].resolve():
        raise InputError(str(paths[0]), None, "--out and --chart name the same file")
    for path, kinds in ((Path(p), k) for p, k in outputs):
        if path.suffix.lower() not in kinds:
            raise InputError(str(path), None, f"unknown format {path.suffix.lower()!r}; use one of {', '.join(kinds)}")
        folder = path.resolve().parent
        if not folder.is_dir():
            raise InputError(str(path), None, "the folder does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(str(path), None, "the folder is not writable")
        if path.exists() and not overwrite:
            raise InputError(str(path), None, "exists; pass --overwrite to replace it")
