"""`ewaste disclose`: being built (issue: what the analyst hands on)."""

from __future__ import annotations

import click

from ..errors import InputError


@click.command()
@click.argument("source")
def disclose(source: str) -> None:
    """Not built yet."""
    raise InputError(source, None, "ewaste disclose is not built yet")
