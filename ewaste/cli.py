"""The `ewaste` command."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from . import __version__, catalogue
from .backend import BACKENDS, cupy_status, get_backend
from .errors import EwasteError, InputError
from .grid import load_grid, save_grid
from .io import write_results
from .model import evaluate
from .show import describe_scenario
from .summary import summarise

backend_option = click.option(
    "--backend", type=click.Choice(BACKENDS), default=None, help="Array backend (default: $EWASTE_BACKEND or auto)."
)


@click.group()
@click.version_option(__version__, prog_name="ewaste")
def cli() -> None:
    """E-waste, materials, recycling and energy of AI hardware, with a cohort stock-flow model."""


@cli.command()
@click.argument("scenario", required=False)
@click.option("--out", "-o", type=click.Path(dir_okay=False), help="Write results (.nc or .csv).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--quiet", "-q", is_flag=True, help="Do not print the summary.")
@backend_option
def run(scenario: str | None, out: str | None, overwrite: bool, quiet: bool, backend: str | None) -> None:
    """Evaluate SCENARIO (a .toml file, a saved grid .nc, or a bundled name; default: 'default')."""
    if out and Path(out).exists() and not overwrite:
        raise InputError(out, None, "exists; pass --overwrite to replace it")
    results = evaluate(load_grid(catalogue.resolve(scenario)), backend)
    if out:
        write_results(results, out, overwrite)
    if not quiet:
        click.echo(summarise(results))
        if out:
            click.echo(f"Results written to {out}")


@cli.command()
@click.argument("spec")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="Grid file to write (.nc).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def grid(spec: str, out: str, overwrite: bool) -> None:
    """Build the scenario grid of SPEC (TOML) and save it as NetCDF."""
    g = load_grid(catalogue.resolve(spec))
    save_grid(g, out, overwrite)
    dims = ", ".join(f"{d}={n}" for d, n in g.sizes.items())
    click.echo(f"Grid written to {out} ({dims})")


@cli.command()
@click.argument("file")
def validate(file: str) -> None:
    """Check a scenario file or grid without running it."""
    g = load_grid(catalogue.resolve(file))
    sweep = [d for d in g.dims if d not in ("time", "history", "fleet", "material", "metal", "lag")]
    click.echo(f"{file}: valid ({g.sizes['fleet']} fleet(s), sweep dimensions: {', '.join(sweep) or 'none'})")


@cli.group(invoke_without_command=True)
@click.pass_context
def scenarios(ctx: click.Context) -> None:
    """List the bundled scenarios (`ewaste scenarios show NAME` for one in full)."""
    if ctx.invoked_subcommand is not None:
        return
    for name, path in sorted(catalogue.bundled().items()):
        text, source = catalogue.describe(path)
        click.echo(f"{name:<20} {text}" + (f"  [source: {source}]" if source else ""))


@scenarios.command("show")
@click.argument("name")
def scenarios_show(name: str) -> None:
    """Print the parameters of scenario NAME (bundled name or file) with their sources."""
    click.echo(describe_scenario(load_grid(catalogue.resolve(name))))


@cli.command()
def info() -> None:
    """Version and the backends available here."""
    ok, why = cupy_status()
    click.echo(f"ewaste {__version__}")
    click.echo("backends: numpy (available)")
    click.echo(f"          cupy ({'available: ' + why if ok else 'not available: ' + why})")
    click.echo(f"auto selects: {get_backend('auto').name}")


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
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug: say so in one line, traceback on request
        if os.environ.get("EWASTE_DEBUG"):
            raise
        click.echo(
            f"ewaste: internal error: {exc.__class__.__name__}: {exc} (set EWASTE_DEBUG=1 for a traceback)", err=True
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
