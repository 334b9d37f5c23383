"""`ewaste report`: being built (issue: what the analyst hands on)."""

from __future__ import annotations

import click

from ..errors import InputError


@click.command()
@click.argument("source")
def report(source: str) -> None:
    """Not built yet."""
    raise InputError(source, None, "ewaste report is not built yet")


@click.command()
@click.argument("source")
def plot(source: str) -> None:
    """Not built yet."""
    raise InputError(source, None, "ewaste plot is not built yet")
