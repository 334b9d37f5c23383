"""Sweeps larger than memory or than one machine, on dask: chunked, lazy, streamed to Zarr, resumable.

The grid is chunked along its scenario dimensions only (time, cohort, fleet, material stay whole);
every chunk goes through the same `evaluate`. Dask schedules the chunks: its threaded scheduler by
default, a local cluster with `workers=N`, or an existing scheduler at an address.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .errors import InputError
from .grid import scenario_sizes
from .model import evaluate

SAFETY = 2.0  # headroom over the measured working memory of a chunk


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
    seconds_per_point: float
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

    def describe(self) -> str:
        eta = self.seconds_per_point * self.points / max(self.workers, 1)
        return (
            f"{self.points:,} grid points in {self.n_chunks:,} chunk(s) of up to {self.chunk_points:,} "
            f"({', '.join(f'{d}={n}' for d, n in self.chunks.items()) or 'one chunk'}); "
            f"results {fmt_bytes(self.result_bytes)}, about {fmt_bytes(self.chunk_bytes)} per chunk in memory; "
            f"estimated {eta:,.0f} s on {self.workers} worker(s)"
        )


def fmt_bytes(n: float) -> str:
    return f"{n / 1e9:,.2f} GB" if n >= 1e8 else f"{n / 1e6:,.1f} MB"


def plan(
    grid: xr.Dataset, memory_limit: int, workers: int = 1, summary: bool = False, backend: str | None = None
) -> Plan:
    """Measure a small piece of the grid, then choose chunks that fit `memory_limit` per worker."""
    sizes = scenario_sizes(grid)
    small, large = (_first_points(grid, sizes, n) for n in (64, 4096))
    (n_small, mem_small, t_small, small_results), (n_large, mem_large, t_large, _) = (
        _measure(p, backend, summary) for p in (small, large)
    )
    # memory and time grow linearly with the grid points of a chunk: the slope is the cost of a point
    slope = (mem_large - mem_small) / (n_large - n_small) if n_large > n_small else mem_large / n_large
    work = max(slope, mem_large / n_large / 64) * SAFETY
    seconds = (t_large - t_small) / (n_large - n_small) if n_large > n_small else t_large / n_large
    kept = _bytes_per_point(small_results, sizes)
    budget_points = int(memory_limit / max(workers, 1) / work)
    if budget_points < 1:
        raise InputError(
            None,
            "--memory-limit",
            f"one grid point needs about {fmt_bytes(work)}; "
            f"the limit gives {fmt_bytes(memory_limit / max(workers, 1))} per worker",
        )
    chunks = choose_chunks(sizes, budget_points)
    return Plan(
        sizes=sizes,
        chunks=chunks,
        bytes_per_point=kept,
        work_bytes_per_point=work,
        seconds_per_point=max(seconds, 0.0),
        workers=max(workers, 1),
    )


def _measure(probe: xr.Dataset, backend: str | None, summary: bool) -> tuple[int, float, float, xr.Dataset]:
    """Grid points, peak bytes allocated, seconds (timed untraced) and results of evaluating `probe`."""
    import tracemalloc  # noqa: PLC0415

    tracemalloc.start()
    evaluate(probe, backend, summary=summary)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    t0 = time.perf_counter()
    results = evaluate(probe, backend, summary=summary)
    return grid_points(probe), float(peak), time.perf_counter() - t0, results


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


def _block_id(region: dict[str, slice]) -> str:
    return "_".join(str(s.start) for s in region.values()) or "all"


def _need_dask() -> None:
    try:
        import dask.array  # noqa: F401, PLC0415
        import zarr  # noqa: F401, PLC0415
    except ImportError:
        raise InputError(
            None, "dask", "this run is cut into chunks and needs dask: pip install 'ewaste[dask]'"
        ) from None


def evaluate_lazy(
    grid: xr.Dataset, chunks: dict[str, int], backend: str | None = None, summary: bool = False
) -> xr.Dataset:
    """Results as a lazy, dask-backed Dataset: nothing is computed until asked.

    Each block of the chunked grid goes through `evaluate` (xarray.map_blocks); the output keeps
    the chunking of the scenario dimensions and the array type the engine returns.
    """
    _need_dask()
    sizes = scenario_sizes(grid)
    chunked = grid.chunk({d: chunks.get(d, n) for d, n in sizes.items()})
    template = _template(grid, sizes, chunks, backend, summary)
    return xr.map_blocks(_evaluate_block, chunked, kwargs={"backend": backend, "summary": summary}, template=template)


def _evaluate_block(block: xr.Dataset, backend: str | None, summary: bool) -> xr.Dataset:
    return evaluate(block, backend, summary=summary)


def _template(
    grid: xr.Dataset, sizes: dict[str, int], chunks: dict[str, int], backend: str | None, summary: bool
) -> xr.Dataset:
    """The shape of the results, from one grid point evaluated, widened lazily to the whole grid.

    Variables with no scenario dimension are the same at every grid point: they keep the values
    of that point (and are written with the store's metadata); the others are lazy placeholders.
    """
    import dask.array  # noqa: PLC0415

    first = evaluate(grid.isel({d: slice(0, 1) for d in sizes}), backend, summary=summary)
    out = xr.Dataset(attrs=first.attrs)
    for name, da in first.data_vars.items():
        if not set(da.dims) & set(sizes):
            out[name] = da
            continue
        shape = [grid.sizes[d] if d in sizes else da.sizes[d] for d in da.dims]
        parts = [chunks.get(d, grid.sizes[d]) if d in sizes else -1 for d in da.dims]
        out[name] = (da.dims, dask.array.zeros(shape, chunks=parts, dtype=da.dtype), da.attrs)
    coords = {c: first[c] for c in first.coords if not set(first[c].dims) & set(sizes)}
    coords.update({d: grid[d] for d in sizes if d in out.dims})
    return out.assign_coords(coords)


def write_zarr(
    grid: xr.Dataset,
    path: str | Path,
    chunks: dict[str, int],
    *,
    backend: str | None = None,
    summary: bool = False,
    overwrite: bool = False,
    resume: bool = False,
    client: Any = None,
    progress: bool = False,
) -> None:
    """Stream results to a Zarr store, chunk by chunk; resumable after any interruption.

    Chunks are written into `PATH.partial` and each finished chunk leaves a marker in
    `PATH.partial-done`; only when every chunk is in does the store move to PATH. A store at PATH
    is therefore always complete, and a run with `resume=True` computes only the chunks without a
    marker.
    """
    _need_dask()
    import dask  # noqa: PLC0415
    import zarr  # noqa: PLC0415

    final = Path(path).resolve()  # workers may run in another folder
    partial, done = final.with_name(final.name + ".partial"), final.with_name(final.name + ".partial-done")
    if final.exists() and not overwrite:
        raise InputError(str(path), None, "exists; pass --overwrite to replace it")
    if not final.parent.is_dir():
        raise InputError(str(path), None, "the folder does not exist")
    if resume and not partial.exists():
        raise InputError(str(path), "--resume", f"nothing to resume: no interrupted run left {partial.name}")
    if partial.exists() and not (resume or overwrite):
        raise InputError(
            str(partial),
            None,
            "an interrupted run left this store; pass --resume to finish it or --overwrite to start again",
        )
    sizes = scenario_sizes(grid)
    if resume:
        chunks = _stored_chunks(partial)  # the chunking of the run being finished, whatever the memory now
        _check_resumable(partial, _fingerprint(grid, chunks, summary))
    else:
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(done, ignore_errors=True)
        skeleton = _template(grid, sizes, chunks, backend, summary)
        skeleton.attrs["ewaste_chunking"] = _fingerprint(grid, chunks, summary)
        skeleton.attrs["ewaste_chunks"] = json.dumps(chunks)
        skeleton.to_zarr(partial, mode="w", compute=False, zarr_format=2, consolidated=False)
    done.mkdir(exist_ok=True)
    pending = [r for r in blocks(sizes, chunks) if not (done / _block_id(r)).exists()]
    tasks = [dask.delayed(_write_block)(grid.isel(r), r, str(partial), str(done), backend, summary) for r in pending]
    _run(tasks, client, progress)
    _record_engines(partial, done)
    zarr.consolidate_metadata(str(partial), zarr_format=2)
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)  # the store appears complete, or not at all
    shutil.rmtree(done)


def _stored_chunks(partial: Path) -> dict[str, int]:
    import zarr  # noqa: PLC0415

    try:
        return json.loads(zarr.open_group(str(partial), mode="r", zarr_format=2).attrs["ewaste_chunks"])
    except Exception:  # the run was stopped before its store was set up
        raise InputError(
            str(partial),
            None,
            "the interrupted run stopped before its store was set up; pass --overwrite to start again",
        ) from None


def _write_block(
    block: xr.Dataset, region: dict[str, slice], store: str, done: str, backend: str | None, summary: bool
) -> str:
    """Evaluate one chunk, write it into its region of the store, then leave its marker (which
    names the engine that computed the chunk)."""
    ran = {}
    if region:  # without sweeps every variable went into the store with its metadata
        res = evaluate(block, backend, summary=summary)
        ran = {key: res.attrs[key] for key in ENGINE_ATTRS}
        keep = [v for v in res.data_vars if set(res[v].dims) & set(region)]  # the others are in already
        res = res[keep]
        res = res.drop_vars([c for c in res.coords if not set(res[c].dims) & set(region)])
        res.attrs = {}
        res.to_zarr(store, region={d: s for d, s in region.items() if d in res.dims}, zarr_format=2, consolidated=False)
    marker = Path(done) / _block_id(region)
    staged = marker.with_name(f".{marker.name}.{uuid.uuid4().hex}")
    staged.write_text(json.dumps(ran) + "\n")
    os.replace(staged, marker)  # a marker is whole or absent, even after a SIGKILL
    return marker.name


ENGINE_ATTRS = ("backend", "engine", "precision")


def _record_engines(store: Path, done: Path) -> None:
    """The store's engine attributes from the chunks' markers: what computed them, which may not
    be what set the store up (a cluster's workers, or the earlier part of a resumed run)."""
    import zarr  # noqa: PLC0415

    ran, unknown = [], False
    for marker in done.iterdir():
        if not marker.name.startswith("."):  # staged markers never renamed
            try:
                ran.append(json.loads(marker.read_text()))
            except ValueError:  # a marker of an older version: its engine is not known
                unknown = True
    ran = [r for r in ran if r]  # a run without sweeps: the store's set-up computed everything
    if ran:
        attrs = zarr.open_group(str(store), mode="r+", zarr_format=2).attrs
        setup = [{key: attrs[key] for key in ENGINE_ATTRS}] if unknown else []
        attrs.update({key: "; ".join(sorted({r[key] for r in ran + setup})) for key in ENGINE_ATTRS})


def _run(tasks: list, client: Any, progress: bool) -> None:
    """Run the chunk tasks on the client (or dask's threaded scheduler), with a progress bar."""
    if not tasks:
        return
    from tqdm import tqdm  # noqa: PLC0415

    bar = tqdm(total=len(tasks), unit="chunk", disable=not progress, dynamic_ncols=True)
    if client is not None:
        from distributed import as_completed  # noqa: PLC0415

        futures = client.compute(tasks)
        for future in as_completed(futures):
            future.result()
            bar.update()
    else:
        import dask  # noqa: PLC0415
        from dask.callbacks import Callback  # noqa: PLC0415

        class _Tick(Callback):
            def _posttask(self, key, result, dsk, state, worker_id):  # noqa: ANN001, ARG002
                if isinstance(result, str) and result:
                    bar.update()

        with _Tick():
            dask.compute(*tasks, scheduler="threads")
    bar.close()


def _fingerprint(grid: xr.Dataset, chunks: dict[str, int], summary: bool) -> str:
    """What a resumed run must match: the grid's content, the chunking and the mode."""
    import hashlib  # noqa: PLC0415

    digest = hashlib.sha256()
    for name in sorted(map(str, grid.variables)):
        digest.update(name.encode())
        values = grid[name].values
        digest.update(np.ascontiguousarray(values if values.dtype.kind in "biuf" else values.astype(str)).tobytes())
    digest.update(json.dumps({"chunks": chunks, "summary": summary}, sort_keys=True).encode())
    return digest.hexdigest()


def _check_resumable(partial: Path, fingerprint: str) -> None:
    import zarr  # noqa: PLC0415

    try:
        found = zarr.open_group(str(partial), mode="r", zarr_format=2).attrs.get("ewaste_chunking")
    except Exception:  # a store whose metadata never got written
        found = None
    if found != fingerprint:
        raise InputError(
            str(partial), None, "was started from another grid, chunking or mode; pass --overwrite to start again"
        )
