"""One scenario end to end: load, plan, evaluate (in memory, on dask, or streamed to Zarr), write."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import xarray as xr

from .analysis.experiments import OUTPUTS
from .analysis.experiments import sensitivity as analyse
from .analysis.uncertainty import QUANTILES, has_draws
from .analysis.uncertainty import quantiles as reduce_draws
from .engine.backend import PRECISION_VAR, get_backend
from .errors import InputError
from .files import claim
from .inputs.catalogue import resolve
from .inputs.load import load_grid
from .model.evaluate import evaluate
from .outputs.readers import is_results_file, load_results
from .outputs.tables import check_year_in
from .outputs.writers import check_output, output_files, write_results, write_table
from .scale import evaluate_lazy, parse_bytes, plan, write_zarr
from .scale.cluster import dask_client
from .scale.plan import default_memory_limit, fmt_bytes

SUMMARY_POINTS = 10**6  # above this, a .zarr run does not load its results back


def run(
    scenario: str | Path | None = None,
    out: str | Path | None = None,
    *,
    summary: bool = False,
    overwrite: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    memory_limit: str | int | None = None,
    resume: bool = False,
    backend: str | None = None,
    precision: str | None = None,
    outputs: Sequence[str] | None = None,
    draw: int | None = None,
    quantiles: Sequence[float] | None = None,
    every_draw: bool = False,
    year: int | None = None,
    format: str | None = None,
    comments: bool = False,
    progress: bool = False,
    say: Callable[[str], None] = lambda text: None,
) -> xr.Dataset | None:
    """Evaluate a scenario (a .toml file, a saved grid .nc, or a bundled name; default "default") and
    write its results to `out` if given: .nc, .csv (with its provenance in `OUT.json`, or in `#` lines
    with `comments`), .xlsx, an IAMC table (.csv or .xlsx with `format="iamc"`), or .zarr streamed
    chunk by chunk (`ewaste.outputs.writers.write_results`). `year`: only that year in a table.

    The grid is cut into chunks that fit `memory_limit` (bytes or text such as "8GB"; default half
    the memory available) and run on dask when it needs more than one, on a local cluster of
    `workers` processes, or on the scheduler at `scheduler`. Without `out` only the summary values
    are kept. `say` receives the plan as one line.

    `out` (and a CSV's sidecar) is claimed before any work (`ewaste.files.claim`), so that two runs
    cannot write it at once.
    `outputs` limits the results to those variables (and what they need). A scenario with uncertain
    parameters runs every draw (`draw`: only that one); with `summary` and a .nc or .csv `out`, the file
    holds the `quantiles` (default p5, p50, p95) and the mean over the draws, plus the drawn inputs,
    unless `every_draw`. A .zarr store keeps every draw.

    Returns the results (summary values without `out`), or None for a .zarr store of more than
    10^6 grid points (open it with xarray.open_zarr).
    Raises InputError (bad input, exit code 2) before any work where it can: among others for an
    unknown suffix or format, a `year` outside the results, an existing output (without `overwrite`),
    or when another run is writing `out`; and when the write fails (no space left, no permission).
    """
    zarr_out = out is not None and Path(out).suffix.lower() == ".zarr"
    if out is not None:
        check_output(out, format, year, comments)
    elif year is not None or format or comments:
        option = "--year" if year is not None else "--format" if format else "--comments"
        raise InputError(None, option, "applies to a table written with --out (.csv or .xlsx)")
    files = [] if out is None else output_files(out, comments)
    _check_options(files, zarr_out, overwrite, workers, scheduler, resume)
    if precision:  # through the environment, so that every chunk and dask worker computes alike
        os.environ[PRECISION_VAR] = precision
    get_backend(backend)  # refuse a backend or precision that cannot run before any work
    path = resolve(None if scenario is None else str(scenario))
    with ExitStack() as held, name_the_path(path):
        for file in files:
            held.enter_context(claim(file))
        grid = _one_draw(load_grid(path), draw, path)
        _check_draw_options(grid, path, quantiles, every_draw, summary and out is not None and not zarr_out)
        budget = parse_bytes(memory_limit) if isinstance(memory_limit, str) else memory_limit
        budget = budget or default_memory_limit()
        # chunks run side by side: one per worker process, or one per core on dask's threaded scheduler
        n_workers = workers or (1 if scheduler else os.cpu_count() or 1)
        keep_summary = summary or out is None  # the printed summary needs only the target-year values
        if year is not None:
            check_year_in(year, _years(grid, summary), str(out))
        chosen = plan(grid, budget, n_workers, keep_summary, backend, outputs)
        if chosen.n_chunks > 1 or zarr_out or workers or scheduler:
            say(f"plan: {chosen.describe()}")
        if not zarr_out and chosen.result_bytes > budget:
            raise InputError(
                str(out or "results"),
                None,
                f"{chosen.points:,} grid points give {fmt_bytes(chosen.result_bytes)} "
                f"of results, more than the memory limit of {fmt_bytes(budget)}: write to a .zarr store"
                + ("" if keep_summary else ", or add --summary"),
            )
        with dask_client(workers, scheduler) as client:
            if zarr_out:
                write_zarr(
                    grid,
                    out,
                    chosen.chunks,
                    backend=backend,
                    summary=summary,
                    outputs=outputs,
                    overwrite=overwrite,
                    resume=resume,
                    client=client,
                    progress=progress,
                )
                return xr.open_zarr(out) if chosen.points <= SUMMARY_POINTS else None
            if chosen.n_chunks > 1 or client is not None:
                results = evaluate_lazy(grid, chosen.chunks, backend, keep_summary, outputs).compute()
            else:
                results = evaluate(grid, backend, summary=keep_summary, outputs=outputs, validated=True)
        if out is not None:
            reduce = summary and has_draws(results) and not every_draw
            written = reduce_draws(results, quantiles or QUANTILES) if reduce else results
            write_results(written, out, overwrite, format=format, year=year, comments=comments, grid=grid)
        return results


def _years(grid: xr.Dataset, summary: bool) -> list[int]:
    """The calendar years the results of `grid` hold: every year, or the target year of a summary."""
    a = grid.attrs
    return [int(a["target_year"])] if summary else list(range(int(a["start_year"]), int(a["end_year"]) + 1))


def results_of(source: str | Path, backend: str | None = None, outputs: Sequence[str] | None = None) -> xr.Dataset:
    """Results for the commands that read them (report, plot, disclose, diff): a results file saved by
    `ewaste run --out` (.nc or .zarr) read back, or a scenario (a .toml file, a grid .nc, a bundled
    name) evaluated in memory with every trajectory.

    Raises InputError for a file that is neither, or results of another version of ewaste.
    """
    path = Path(str(source))
    if is_results_file(path):
        return load_results(path)
    resolved = resolve(str(source))
    with name_the_path(resolved):
        return evaluate(load_grid(resolved), backend, outputs=outputs, validated=True)


def sensitivity(
    scenario: str | Path,
    out: str | Path | None = None,
    *,
    overwrite: bool = False,
    outputs: Sequence[str] | None = None,
    **options: Any,
) -> xr.Dataset:
    """`ewaste.analysis.experiments.sensitivity` of `scenario` (options: method, samples, seed, backend),
    written to `out` (.nc, .csv or .json; claimed before any work) if given. Raises InputError."""
    with claim(out) if out is not None else nullcontext():
        res = analyse(scenario, outputs=outputs or OUTPUTS, **options)
        if out is not None:
            write_table(res, out, overwrite)
    return res


def _check_draw_options(
    grid: xr.Dataset, path: Path, quantiles: Sequence[float] | None, every_draw: bool, reduced: bool
) -> None:
    """Refuse options about draws that would do nothing: quantiles or every draw where the run has one
    scenario per point (no draws, or one draw alone); every draw where the results keep every draw
    anyway (`reduced`: only a --summary file keeps quantiles instead)."""
    one = grid.sizes.get("draw", 1) == 1
    for option, given in (("--quantiles", bool(quantiles)), ("--every-draw", every_draw)):
        if given and one:
            raise InputError(str(path), option, "applies to draws of uncertain parameters: this run has none (or one)")
    if every_draw and not reduced:
        why = "applies with --summary and an --out file (not .zarr): without them every draw is kept"
        raise InputError(None, "--every-draw", why)


def _one_draw(grid: xr.Dataset, draw: int | None, path: Path) -> xr.Dataset:
    """The grid, or its draw number `draw` (to re-run and inspect one draw of uncertain parameters)."""
    if draw is None:
        return grid
    if "draw" not in grid.dims:
        raise InputError(str(path), "--draw", "this scenario has no uncertain parameters to draw")
    if not 0 <= draw < grid.sizes["draw"]:
        raise InputError(str(path), "--draw", f"draws are numbered 0 to {grid.sizes['draw'] - 1}")
    return grid.isel(draw=[draw])


def _check_options(
    files: list[Path], zarr_out: bool, overwrite: bool, workers: int | None, scheduler: str | None, resume: bool
) -> None:
    """Refuse option combinations that cannot work, before any work (`files`: the output files)."""
    if workers and scheduler:
        raise InputError(None, "--workers", "choose --workers (a local cluster) or --scheduler (an existing one)")
    for file in files:
        if not file.resolve().parent.is_dir():
            raise InputError(str(file), None, "the folder does not exist")
        if not zarr_out and file.exists() and not overwrite:
            raise InputError(str(file), None, "exists; pass --overwrite to replace it")
    if resume and not zarr_out:
        raise InputError(str(files[0]) if files else None, "--resume", "resuming needs a .zarr output")


@contextmanager
def name_the_path(path: Path) -> Iterator[None]:
    """Errors that the model reports against the scenario's file name name the path the user gave."""
    try:
        yield
    except InputError as exc:
        if exc.source == path.name and str(path) != path.name:
            raise InputError(str(path), exc.field, exc.message) from None
        raise
