"""Planning a sweep: measure a small piece of the grid, then choose chunks that fit the memory limit."""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import product

import xarray as xr

from ..engine import host
from ..errors import InputError
from ..inputs.validate import scenario_sizes
from ..model.evaluate import evaluate

SAFETY = 2.0  # headroom over the measured working memory of a chunk
EVIDENT = 8.0  # a grid whose estimated memory is this many times below the limit runs without measuring
MAX_CHUNK_POINTS = 2**22  # a larger chunk holds more memory but runs no faster (overhead ~0.1 s a chunk)
PROBES = (64, 4096)  # grid points evaluated to plan a grid that might not fit
# The time per point of a 4,096-point probe is mostly fixed costs; a grid big enough is timed again on a
# piece of up to TIME_PROBE_POINTS that takes about TIME_PROBE_SECONDS, which the time estimate uses.
TIME_PROBE_POINTS, TIME_PROBE_SECONDS = 2**20, 1.0


def grid_points(grid: xr.Dataset) -> int:
    return math.prod(scenario_sizes(grid).values())


UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_bytes(text: str) -> int:
    """'4GB', '512 MiB', '2e9' -> bytes."""
    match = re.fullmatch(r"\s*([0-9.]+(?:e[0-9]+)?)\s*([a-z]*)\s*", str(text).lower())
    if not match or match.group(2) not in UNITS:
        raise InputError(None, "--memory-limit", f"cannot read {text!r} as a size (e.g. 4GB)")
    return int(float(match.group(1)) * UNITS[match.group(2)])


def default_memory_limit() -> int:
    """Half of the memory available now: a safe share that leaves room for the rest of the machine."""
    try:
        import psutil  # noqa: PLC0415

        return int(psutil.virtual_memory().available * 0.5)
    except ImportError:  # without the dask extra: the memory the system reports as free
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * 0.5)


@dataclass(frozen=True)
class Plan:
    """How a sweep will run: chunk sizes, and what it is expected to cost."""

    sizes: dict[str, int]  # the grid's scenario dimensions
    chunks: dict[str, int]
    bytes_per_point: float  # results kept (summary values or trajectories)
    work_bytes_per_point: float  # memory a grid point takes while its chunk is evaluated
    seconds_per_point: float | None  # None: planned from an estimate, not timed
    workers: int

    @property
    def points(self) -> int:
        return math.prod(self.sizes.values())

    @property
    def chunk_points(self) -> int:
        return math.prod(self.chunks.values())

    @property
    def n_chunks(self) -> int:
        return math.prod(math.ceil(self.sizes[d] / c) for d, c in self.chunks.items())

    @property
    def result_bytes(self) -> float:
        return self.bytes_per_point * self.points

    @property
    def chunk_bytes(self) -> float:
        return self.work_bytes_per_point * self.chunk_points

    @property
    def seconds(self) -> float:
        """Estimated seconds for the chunks. The probes timed the engine on every core this process
        may use (its thread pool), so workers on this machine share those cores: only workers beyond
        them divide the time (on the 1e8-point sweep of benchmarks/RESULTS.md, two workers on two
        cores ran 1.0-1.2x the probe's throughput, not 2x)."""
        return (self.seconds_per_point or 0.0) * self.points / max(1.0, self.workers / host.cores())

    def describe(self) -> str:
        if self.seconds_per_point is None:
            eta = "small enough to plan without measuring"
        else:
            eta = f"estimated {self.seconds:,.0f} s"
        return (
            f"{self.points:,} grid points in {self.n_chunks:,} chunk(s) of up to {self.chunk_points:,} "
            f"({', '.join(f'{d}={n}' for d, n in self.chunks.items()) or 'one chunk'}); "
            f"results {fmt_bytes(self.result_bytes)}, about {fmt_bytes(self.chunk_bytes)} per chunk in memory; "
            f"{eta} on {self.workers} worker(s)"
        )


def fmt_bytes(n: float) -> str:
    return f"{n / 1e9:,.2f} GB" if n >= 1e8 else f"{n / 1e6:,.1f} MB"


def plan(
    grid: xr.Dataset,
    memory_limit: int,
    workers: int = 1,
    summary: bool = False,
    backend: str | None = None,
    outputs: Sequence[str] | None = None,
) -> Plan:
    """Choose chunks along the sweep dimensions that fit `memory_limit` per worker.

    Where a generous estimate of the memory a grid point needs (`estimate_bytes`) shows that the whole
    grid fits many times over, it runs as one chunk without measuring; otherwise a small piece of the
    grid is evaluated twice (`PROBES` points) and memory and time per point are taken from the
    difference. Chunks hold at most MAX_CHUNK_POINTS. Raises InputError where one grid point does not fit.
    """
    sizes = scenario_sizes(grid)
    work_guess, kept_guess = estimate_bytes(grid, summary)
    if math.prod(sizes.values()) * work_guess * max(workers, 1) <= memory_limit / EVIDENT:
        whole = dict(sizes)
        return Plan(sizes, whole, kept_guess, work_guess, None, max(workers, 1))
    small, large = (_first_points(grid, sizes, n) for n in PROBES)
    (n_small, mem_small, t_small, small_results), (n_large, mem_large, t_large, _) = (
        _measure(p, backend, summary, outputs) for p in (small, large)
    )
    # memory and time grow linearly with the grid points of a chunk: the slope is the cost of a point
    slope = (mem_large - mem_small) / (n_large - n_small) if n_large > n_small else mem_large / n_large
    work = max(slope, mem_large / n_large / 64) * SAFETY
    seconds = (t_large - t_small) / (n_large - n_small) if n_large > n_small else 0.0
    if seconds <= 0.0:  # the probes too small to tell a slope from noise: the average cost
        seconds = t_large / n_large
    seconds = _timed_per_point(grid, sizes, seconds, n_large, backend, summary, outputs)
    kept = _bytes_per_point(small_results, sizes)
    budget_points = int(memory_limit / max(workers, 1) / work)
    if budget_points < 1:
        raise InputError(
            None,
            "--memory-limit",
            f"one grid point needs about {fmt_bytes(work)}; "
            f"the limit gives {fmt_bytes(memory_limit / max(workers, 1))} per worker",
        )
    chunks = choose_chunks(sizes, min(budget_points, MAX_CHUNK_POINTS))
    return Plan(
        sizes=sizes,
        chunks=chunks,
        bytes_per_point=kept,
        work_bytes_per_point=work,
        seconds_per_point=max(seconds, 0.0),
        workers=max(workers, 1),
    )


def estimate_bytes(grid: xr.Dataset, summary: bool) -> tuple[float, float]:
    """Generous upper bounds of the memory a grid point takes while evaluated, and of its results:
    every engine series and fleet flow over every step, for each material and metal, times two."""
    steps = grid.sizes["time"] + grid.sizes.get("history", 0)
    extra = grid.sizes.get("material", 1) + grid.sizes.get("metal", 1)
    per_fleet = 8.0 * steps * (24 + 8 * extra)
    work = 2.0 * per_fleet * grid.sizes["fleet"]
    kept = 8.0 * grid.sizes["fleet"] * (60 + 10 * extra) * (4 if summary else 4 * steps)
    return work, kept


def _measure(
    probe: xr.Dataset, backend: str | None, summary: bool, outputs: Sequence[str] | None
) -> tuple[int, float, float, xr.Dataset]:
    """Grid points, peak bytes allocated, seconds (timed untraced) and results of evaluating `probe`."""
    import tracemalloc  # noqa: PLC0415

    tracemalloc.start()
    evaluate(probe, backend, summary=summary, outputs=outputs, validated=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    t0 = time.perf_counter()
    results = evaluate(probe, backend, summary=summary, outputs=outputs, validated=True)
    return grid_points(probe), float(peak), time.perf_counter() - t0, results


def _timed_per_point(
    grid: xr.Dataset,
    sizes: dict[str, int],
    seconds: float,
    n_large: int,
    backend: str | None,
    summary: bool,
    outputs: Sequence[str] | None,
) -> float:
    """Seconds per point from one evaluation of a piece of the grid sized to take about
    TIME_PROBE_SECONDS (`seconds`: the probes' estimate), where the grid holds at least four such
    pieces and the piece is at least four times the large probe; else `seconds`. On a 1e8-point
    sweep the 4,096-point probe's slope was 4x off either way; 2^20 points come within 2x."""
    n = min(TIME_PROBE_POINTS, int(TIME_PROBE_SECONDS / max(seconds, 1e-12)), math.prod(sizes.values()) // 4)
    if n < 4 * n_large:
        return seconds
    piece = _first_points(grid, sizes, n)
    t0 = time.perf_counter()
    evaluate(piece, backend, summary=summary, outputs=outputs, validated=True)
    return (time.perf_counter() - t0) / grid_points(piece)


def _first_points(grid: xr.Dataset, sizes: dict[str, int], n: int) -> xr.Dataset:
    """About n grid points from the start of the grid (whole inner dimensions where they fit)."""
    return grid.isel({d: slice(0, c) for d, c in choose_chunks(sizes, n).items()})


def _bytes_per_point(results: xr.Dataset, sizes: dict[str, int]) -> float:
    """Result bytes per grid point: each variable's bytes divided by the grid points it spans."""
    total = 0.0
    for da in results.data_vars.values():
        points = math.prod(results.sizes[d] for d in da.dims if d in sizes) or 1
        total += da.nbytes / points
    return max(total, 8.0)


def choose_chunks(sizes: dict[str, int], budget_points: int) -> dict[str, int]:
    """Chunk sizes along the scenario dimensions with at most `budget_points` points a chunk.

    The last dimensions are kept whole while they fit; the next one is cut; earlier ones get 1.
    """
    chunks: dict[str, int] = {}
    left = max(budget_points, 1)
    for d in reversed(list(sizes)):
        take = min(sizes[d], left)
        chunks[d] = take
        left = max(left // take, 1)
    return {d: chunks[d] for d in sizes}


def blocks(sizes: dict[str, int], chunks: dict[str, int]) -> Iterator[dict[str, slice]]:
    """Every chunk, as slices along the scenario dimensions."""
    starts = [range(0, sizes[d], chunks[d]) for d in sizes]
    for corner in product(*starts):
        yield {d: slice(s, min(s + chunks[d], sizes[d])) for d, s in zip(sizes, corner, strict=True)}
