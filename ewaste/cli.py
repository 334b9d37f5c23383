"""The `ewaste` command."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import numpy as np

from . import __version__, catalogue, scale
from .backend import BACKENDS, PRECISION_VAR, PRECISIONS, cpu_status, get_backend, gpu_status
from .errors import EwasteError, InputError
from .grid import load_grid, save_grid, scenario_sizes
from .host import THREADS_VAR
from .io import write_results
from .model import evaluate
from .show import describe_scenario
from .summary import summarise

SUMMARY_POINTS = 10**6  # above this, a .zarr run does not load its results back to print a summary

backend_option = click.option(
    "--backend", type=click.Choice(BACKENDS), default=None, help="Array backend (default: $EWASTE_BACKEND or auto)."
)
precision_option = click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default=None,
    help="Arithmetic of the compiled engines (default: $EWASTE_PRECISION or float64).",
)


@click.group()
@click.version_option(__version__, prog_name="ewaste")
def cli() -> None:
    """E-waste, materials, recycling and energy of AI hardware, with a cohort stock-flow model."""


@cli.command()
@click.argument("scenario", required=False)
@click.option("--out", "-o", type=click.Path(), help="Write results: .nc or .csv (in memory), .zarr (streamed).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("--summary", is_flag=True, help="Keep only target-year and cumulative values (a few per grid point).")
@click.option("--workers", type=click.IntRange(1), default=None, help="Start a local dask cluster of N processes.")
@click.option("--scheduler", default=None, help="Use the dask scheduler at this address (tcp://host:port).")
@click.option("--memory-limit", default=None, help="Memory budget (e.g. 8GB); default half the memory available.")
@click.option("--resume", is_flag=True, help="Finish an interrupted .zarr run: only the missing chunks.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@backend_option
@precision_option
def run(
    scenario: str | None,
    out: str | None,
    overwrite: bool,
    summary: bool,
    workers: int | None,
    scheduler: str | None,
    memory_limit: str | None,
    resume: bool,
    quiet: bool,
    backend: str | None,
    precision: str | None,
) -> None:
    """Evaluate SCENARIO (a .toml file, a saved grid .nc, or a bundled name; default: 'default')."""
    zarr_out = bool(out) and Path(out).suffix.lower() == ".zarr"
    if workers and scheduler:
        raise InputError(None, "--workers", "choose --workers (a local cluster) or --scheduler (an existing one)")
    if out and not Path(out).resolve().parent.is_dir():
        raise InputError(out, None, "the folder does not exist")
    if out and not zarr_out and Path(out).exists() and not overwrite:
        raise InputError(out, None, "exists; pass --overwrite to replace it")
    if resume and not zarr_out:
        raise InputError(out, "--resume", "resuming needs a .zarr output")
    if precision:  # through the environment, so that every chunk and dask worker computes alike
        os.environ[PRECISION_VAR] = precision
    get_backend(backend)  # refuse a backend or precision that cannot run before any work
    path = catalogue.resolve(scenario)
    with _name_the_path(path):
        grid = load_grid(path)
        budget = scale.parse_bytes(memory_limit) if memory_limit else scale.default_memory_limit()
        # chunks run side by side: one per worker process, or one per core on dask's threaded scheduler
        n_workers = workers or (1 if scheduler else os.cpu_count() or 1)
        keep_summary = summary or not out  # the printed summary needs only the target-year values
        plan = scale.plan(grid, budget, n_workers, keep_summary, backend)
        say = (lambda text: None) if quiet else (lambda text: click.echo(text, err=True))
        if plan.n_chunks > 1 or zarr_out or workers or scheduler:
            say(f"plan: {plan.describe()}")
        if not zarr_out and plan.result_bytes > budget:
            raise InputError(
                out or "results",
                None,
                f"{plan.points:,} grid points give {scale.fmt_bytes(plan.result_bytes)} "
                f"of results, more than the memory limit of {scale.fmt_bytes(budget)}: write to a .zarr store"
                + ("" if keep_summary else ", or add --summary"),
            )
        progress = not quiet and sys.stderr.isatty() and not os.environ.get("CI")
        with _dask_client(workers, scheduler) as client:
            if zarr_out:
                scale.write_zarr(
                    grid,
                    out,
                    plan.chunks,
                    backend=backend,
                    summary=summary,
                    overwrite=overwrite,
                    resume=resume,
                    client=client,
                    progress=progress,
                )
                results = _open_zarr(out) if not quiet and plan.points <= SUMMARY_POINTS else None
                if not quiet and results is None:
                    click.echo(f"Results written to {out} ({plan.points:,} grid points; open with xarray.open_zarr)")
                    return
            elif plan.n_chunks > 1 or client is not None:
                results = scale.evaluate_lazy(grid, plan.chunks, backend, keep_summary).compute()
            else:
                results = evaluate(grid, backend, summary=keep_summary)
            if out and not zarr_out:
                write_results(results, out, overwrite)
            if not quiet:
                click.echo(summarise(results))
                if out:
                    click.echo(f"Results written to {out}")


@contextmanager
def _name_the_path(path: Path) -> Iterator[None]:
    """Errors that the model reports against the scenario's file name name the path the user gave."""
    try:
        yield
    except InputError as exc:
        if exc.source == path.name and str(path) != path.name:
            raise InputError(str(path), exc.field, exc.message) from None
        raise


def _open_zarr(path: str):
    import xarray as xr  # noqa: PLC0415

    return xr.open_zarr(path)


class _dask_client:
    """A dask client for --workers (a local cluster on 127.0.0.1) or --scheduler; none otherwise."""

    def __init__(self, workers: int | None, scheduler: str | None):
        self.workers, self.scheduler, self.client, self.cluster = workers, scheduler, None, None

    def __enter__(self):
        if self.workers is None and self.scheduler is None:
            return None
        try:
            from distributed import Client, LocalCluster  # noqa: PLC0415
        except ImportError:
            raise InputError(
                None, "--workers", "needs dask's distributed scheduler: pip install 'ewaste[dask]'"
            ) from None
        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout=10)
            except (OSError, ValueError, TypeError) as exc:
                raise InputError(self.scheduler, "--scheduler", f"cannot reach the scheduler ({exc})") from None
        else:
            self.cluster = LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=40,
                env={THREADS_VAR: "1"},  # one chunk per worker process, one core each
            )
            self.client = Client(self.cluster)
        return self.client

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


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
    sweep = list(scenario_sizes(g))
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
    click.echo(f"ewaste {__version__}")
    click.echo(f"backends: numpy (available: NumPy {np.__version__})")
    for name, (ok, why) in (("cpu", cpu_status()), ("cupy", gpu_status())):
        click.echo(f"          {name} ({'available: ' if ok else 'not available: '}{why})")
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


if __name__ == "__main__":
    main()
