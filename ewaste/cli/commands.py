"""The commands of `ewaste`: each a few lines over the public Python API."""

from __future__ import annotations

import logging
import os
import sys

import click

BACKENDS = ("auto", "numpy", "cpu", "cupy")  # ewaste.engine.backend.BACKENDS (a test keeps them equal)
PRECISIONS = ("float64", "float32")

backend_option = click.option(
    "--backend", type=click.Choice(BACKENDS), default=None, help="Array backend (default: $EWASTE_BACKEND or auto)."
)


def _names(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    """A comma-separated list of names."""
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _shares(ctx: click.Context, param: click.Parameter, value: str | None) -> list[float] | None:
    """A comma-separated list of quantiles in [0, 1]."""
    if value is None:
        return None
    try:
        q = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r}: numbers between 0 and 1, e.g. 0.05,0.5,0.95") from None
    if not q or any(not 0.0 <= x <= 1.0 for x in q):
        raise click.BadParameter(f"{value!r}: numbers between 0 and 1, e.g. 0.05,0.5,0.95")
    return sorted(set(q))  # columns and the file's `quantile` coordinate in increasing order


outputs_option = click.option(
    "--outputs", callback=_names, help="Only these results, comma-separated (e.g. ewaste_generated,energy)."
)
precision_option = click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default=None,
    help="Arithmetic of the compiled engines (default: $EWASTE_PRECISION or float64).",
)


@click.command()
@click.argument("scenario", required=False)
@click.option("--out", "-o", type=click.Path(), help="Write results: .nc, .csv (+ .csv.json), .xlsx, .zarr (streamed).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("--summary", is_flag=True, help="Keep only target-year and cumulative values (a few per grid point).")
@click.option("--year", type=int, default=None, help="In a .csv or .xlsx table: only this calendar year.")
@click.option(
    "--format", "format", default=None, metavar="iamc", help="iamc: the .csv or .xlsx in the IAMC format (pyam)."
)
@click.option("--comments", is_flag=True, help="CSV: provenance as leading '# key: value' lines, not in OUT.json.")
@click.option("--workers", type=click.IntRange(1), default=None, help="Start a local dask cluster of N processes.")
@click.option("--scheduler", default=None, help="Use the dask scheduler at this address (tcp://host:port).")
@click.option("--memory-limit", default=None, help="Memory budget (e.g. 8GB); default half the memory available.")
@click.option("--resume", is_flag=True, help="Finish an interrupted .zarr run: only the missing chunks.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@outputs_option
@click.option("--quantiles", callback=_shares, help="Quantiles over the draws (default 0.05,0.5,0.95).")
@click.option("--every-draw", is_flag=True, help="With --summary: keep every draw in the file, not the quantiles.")
@click.option("--draw", type=click.IntRange(0), default=None, help="Run only this draw of the uncertain parameters.")
@backend_option
@precision_option
def run(scenario: str | None, out: str | None, quiet: bool, **options) -> None:
    """Evaluate SCENARIO (a .toml file, a saved grid .nc, or a bundled name; default: 'default')."""
    from ..pipeline import run as run_scenario  # noqa: PLC0415

    progress = not quiet and sys.stderr.isatty() and not os.environ.get("CI")
    say = (lambda text: None) if quiet else (lambda text: click.echo(text, err=True))
    if quiet:
        logging.getLogger("ewaste").setLevel(logging.WARNING)
    results = run_scenario(scenario, out, progress=progress, say=say, **options)
    if not quiet:
        _print(results, options["quantiles"], f"(open {out} with xarray.open_zarr)")
        if out:
            click.echo(f"Results written to {out}")


def _print(results, quantiles: list[float] | None, otherwise: str = "") -> None:  # noqa: ANN001
    """The summary: rich tables on a terminal, plain text otherwise."""
    from ..analysis.uncertainty import QUANTILES  # noqa: PLC0415
    from ..outputs.summary import print_summary, summarise  # noqa: PLC0415

    if results is None:
        click.echo(otherwise)
    elif sys.stdout.isatty():
        print_summary(results, quantiles or QUANTILES)
    else:
        click.echo(summarise(results, quantiles or QUANTILES), nl=False)


@click.command()
@click.argument("results")
@click.option("--quantiles", callback=_shares, help="Quantiles over the draws (default 0.05,0.5,0.95).")
def summary(results: str, quantiles: list[float] | None) -> None:
    """Print the summary of a saved results file (.nc or .zarr)."""
    from ..outputs.readers import load_results  # noqa: PLC0415

    _print(load_results(results), quantiles)


@click.command()
@click.argument("scenario")
@click.option("--method", type=click.Choice(("sobol", "morris", "tornado")), default="sobol", show_default=True)
@click.option(
    "--samples", type=click.IntRange(2), default=None, help="Sobol': base samples (2^k, 1024); Morris: trajectories."
)
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
@outputs_option
@click.option("--out", "-o", type=click.Path(), help="Write the indices: .nc, .csv or .json.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@backend_option
def sensitivity(scenario: str, out: str | None, **options) -> None:
    """Which uncertain parameter of SCENARIO drives each result: Sobol' indices, Morris or a tornado."""
    from ..outputs.sensitivity import sensitivity_text  # noqa: PLC0415
    from ..pipeline import sensitivity as analyse  # noqa: PLC0415

    click.echo(sensitivity_text(analyse(scenario, out, **options)), nl=False)
    if out:
        click.echo(f"Indices written to {out}")


@click.command()
@click.argument("spec")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="Grid file to write (.nc).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def grid(spec: str, out: str, overwrite: bool) -> None:
    """Build the scenario grid of SPEC (TOML) and save it as NetCDF."""
    from ..files import claim  # noqa: PLC0415
    from ..inputs.load import load_grid, save_grid  # noqa: PLC0415

    with claim(out):  # before the work: two commands writing one file cannot both succeed
        g = load_grid(spec)
        save_grid(g, out, overwrite)
    click.echo(f"Grid written to {out} ({', '.join(f'{d}={n}' for d, n in g.sizes.items())})")


@click.command()
@click.argument("file")
def validate(file: str) -> None:
    """Check a scenario file or grid without running it."""
    from ..inputs.load import load_grid  # noqa: PLC0415
    from ..inputs.validate import scenario_sizes  # noqa: PLC0415

    g = load_grid(file)
    sweep = ", ".join(scenario_sizes(g)) or "none"
    click.echo(f"{file}: valid ({g.sizes['fleet']} fleet(s), sweep dimensions: {sweep})")


@click.group(invoke_without_command=True)
@click.pass_context
def scenarios(ctx: click.Context) -> None:
    """List the bundled scenarios (`ewaste scenarios show NAME` for one in full)."""
    from ..inputs import catalogue  # noqa: PLC0415

    if ctx.invoked_subcommand is None:
        for name, path in sorted(catalogue.bundled().items()):
            text, source = catalogue.describe(path)
            click.echo(f"{name:<20} {text}" + (f"  [source: {source}]" if source else ""))


@scenarios.command("show")
@click.argument("name")
def scenarios_show(name: str) -> None:
    """Print the parameters of scenario NAME (bundled name or file) with their sources."""
    from ..inputs.load import load_grid  # noqa: PLC0415
    from ..outputs.show import describe_scenario  # noqa: PLC0415

    click.echo(describe_scenario(load_grid(name)))


@click.command()
def info() -> None:
    """Version and the backends available here."""
    from ..engine.backend import describe_backends  # noqa: PLC0415
    from ..version import __version__  # noqa: PLC0415

    click.echo(f"ewaste {__version__}\n{describe_backends()}")
