"""The `ewaste` command: thin commands over the public Python API, one-line errors with exit codes.

Heavy libraries (xarray, scipy, dask) are imported inside the commands, so `ewaste --help` starts fast.
"""

from __future__ import annotations

import os
import sys

import click

from ..errors import EwasteError
from ..version import __version__
from .commands import grid, info, run, scenarios, validate


@click.group()
@click.version_option(__version__, prog_name="ewaste")
def cli() -> None:
    """E-waste, materials, recycling and energy of AI hardware, with a cohort stock-flow model."""


for command in (run, grid, validate, scenarios, info):
    cli.add_command(command)


def main() -> None:
    """Entry point: bad input -> one line on stderr and exit code 2, never a traceback."""
    try:
        cli.main(standalone_mode=False)
    except EwasteError as exc:
        click.echo(f"ewaste: error: {exc}", err=True)
        sys.exit(getattr(exc, "exit_code", 1))
    except click.exceptions.Abort:
        click.echo("ewaste: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # usage errors: one line too, exit 2
        click.echo(f"ewaste: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug: say so in one line, traceback on request
        if os.environ.get("EWASTE_DEBUG"):
            raise
        click.echo(
            f"ewaste: internal error: {exc.__class__.__name__}: {exc} (set EWASTE_DEBUG=1 for a traceback)", err=True
        )
        sys.exit(1)
