"""Streaming results to a Zarr store chunk by chunk: one run at a time, atomic markers, resumable after
any interruption, and the store appears at its final path only when complete."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from ..files import claim, staging, write_failure
from ..inputs.validate import scenario_sizes, validate
from ..model.evaluate import evaluate
from .lazy import need_dask, result_template
from .plan import blocks


def write_zarr(
    grid: xr.Dataset,
    path: str | Path,
    chunks: dict[str, int],
    *,
    backend: str | None = None,
    summary: bool = False,
    outputs: Sequence[str] | None = None,
    overwrite: bool = False,
    resume: bool = False,
    client: Any = None,
    progress: bool = False,
) -> None:
    """Stream results to a Zarr store, chunk by chunk; resumable after any interruption.

    The path is claimed first (`ewaste.files.claim`): one run at a time writes or resumes it. The
    store is set up in a temporary folder and renamed `PATH.partial` once complete; chunks are
    written into it and each finished chunk leaves a marker in `PATH.partial-done`; only when every
    chunk is in does the store move to PATH. A store at PATH is therefore always complete, and a run
    with `resume=True` computes only the chunks without a marker.

    Raises InputError (exit code 2) if PATH exists (without `overwrite`), its folder does not
    exist, another run is writing it, there is nothing to resume (or an interrupted run is there
    and neither `resume` nor `overwrite` is given), the interrupted run was of another grid,
    chunking or mode, or a write fails (no space left: the chunks written so far are kept for
    `resume`).
    """
    need_dask()
    final = Path(path).resolve()  # workers may run in another folder
    partial = _partial(final)[0]
    if not final.parent.is_dir():
        raise InputError(str(path), None, "the folder does not exist")
    with claim(path):
        _check_state(path, final, partial, overwrite, resume)
        grid = validate(grid, str(grid.attrs.get("grid_file") or grid.attrs.get("scenario_file") or "grid"))
        sizes = scenario_sizes(grid)
        if resume:
            chunks = _stored_chunks(partial)  # the chunking of the run being finished, whatever the memory now
            _check_resumable(partial, _fingerprint(grid, chunks, summary, outputs))
            _check_set_up(partial, result_template(grid, sizes, chunks, backend, summary, outputs))
        else:
            _set_up(grid, path, final, sizes, chunks, backend, summary, outputs)
        try:
            _fill(grid, final, sizes, chunks, backend, summary, outputs, client, progress)
        except Exception as exc:
            kept = f"the chunks written are kept in {partial.name}: {{fix}}pass --resume to finish"
            failure = _failure(exc, path, kept)
            if failure is None:
                raise
            raise failure from None


def _check_state(path: str | Path, final: Path, partial: Path, overwrite: bool, resume: bool) -> None:
    """Refuse to replace a store, to resume nothing, or to start over an interrupted run unasked."""
    if final.exists() and not overwrite:
        raise InputError(str(path), None, "exists; pass --overwrite to replace it")
    if resume and not partial.exists():
        raise InputError(
            str(path),
            "--resume",
            f"nothing to resume: no interrupted run left {partial.name}; run again without --resume "
            "(or with --overwrite)",
        )
    if partial.exists() and not (resume or overwrite):
        raise InputError(
            str(partial),
            None,
            "an interrupted run left this store; pass --resume to finish it or --overwrite to start again",
        )


def _set_up(
    grid: xr.Dataset,
    path: str | Path,
    final: Path,
    sizes: dict[str, int],
    chunks: dict[str, int],
    backend: str | None,
    summary: bool,
    outputs: Sequence[str] | None,
) -> None:
    """The store's metadata, attributes and the variables no sweep touches, written in a temporary
    folder renamed `PATH.partial` only when complete: a partial store is whole or absent, even
    after a SIGKILL (a killed set-up leaves a `.PATH.*.part` folder, removed by the next claim)."""
    partial, done = _partial(final)
    skeleton = result_template(grid, sizes, chunks, backend, summary, outputs)
    skeleton.attrs["ewaste_chunking"] = _fingerprint(grid, chunks, summary, outputs)
    skeleton.attrs["ewaste_chunks"] = json.dumps(chunks)
    tmp = staging(final, directory=True)
    try:
        skeleton.to_zarr(tmp, mode="w", compute=False, zarr_format=2, consolidated=False)
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(done, ignore_errors=True)
        os.replace(tmp, partial)
    except Exception as exc:
        failure = _failure(exc, path, "nothing was written")
        if failure is None:
            raise
        raise failure from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fill(
    grid: xr.Dataset,
    final: Path,
    sizes: dict[str, int],
    chunks: dict[str, int],
    backend: str | None,
    summary: bool,
    outputs: Sequence[str] | None,
    client: Any,
    progress: bool,
) -> None:
    """Compute and write the chunks without a marker, then move the finished store to PATH."""
    import dask  # noqa: PLC0415
    import zarr  # noqa: PLC0415

    partial, done = _partial(final)
    done.mkdir(exist_ok=True)
    pending = [r for r in blocks(sizes, chunks) if not (done / _block_id(r)).exists()]
    options = {"backend": backend, "summary": summary, "outputs": outputs}
    tasks = [dask.delayed(_write_block)(grid.isel(r), r, str(partial), str(done), **options) for r in pending]
    _run(tasks, client, progress)
    _record_engines(partial, done)
    zarr.consolidate_metadata(str(partial), zarr_format=2)
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)  # the store appears complete, or not at all
    shutil.rmtree(done)


def _partial(final: Path) -> tuple[Path, Path]:
    """The interrupted store (PATH.partial) and its folder of chunk markers (PATH.partial-done)."""
    return final.with_name(final.name + ".partial"), final.with_name(final.name + ".partial-done")


def _failure(exc: Exception, path: str | Path, then: str) -> InputError | None:
    """A failed write as the user's error (what failed, and what is left: `then`, where "{fix}" says
    to free some space if the disk is full); None for other errors."""
    message = write_failure(exc, Path(path).resolve().parent)
    if message is None:
        return None
    full = message.startswith(("no space", "disk quota"))
    return InputError(str(path), None, f"{message}; {then.replace('{fix}', 'free some space, then ' if full else '')}")


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
    block: xr.Dataset,
    region: dict[str, slice],
    store: str,
    done: str,
    backend: str | None,
    summary: bool,
    outputs: Sequence[str] | None = None,
) -> str:
    """Evaluate one chunk, write it into its region of the store, then leave its marker (which
    names the engine that computed the chunk)."""
    ran = {}
    if region:  # without sweeps every variable went into the store with its metadata
        res = evaluate(block, backend, summary=summary, outputs=outputs, validated=True)
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


def _block_id(region: dict[str, slice]) -> str:
    return "_".join(str(s.start) for s in region.values()) or "all"


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
    """Run the chunk tasks on the client (or dask's threaded scheduler), with a progress bar.

    However it ends (an error, Ctrl-C, SIGTERM), no chunk of this run is still being written when
    it returns, so the claim on the store outlives every write: the threads finish the chunks they
    have begun, queued chunks are cancelled, and so are a cluster's.
    """
    if not tasks:
        return
    from tqdm import tqdm  # noqa: PLC0415

    with tqdm(total=len(tasks), unit="chunk", disable=not progress, dynamic_ncols=True) as bar:
        if client is not None:
            _run_on_client(tasks, client, bar)
        else:
            _run_on_threads(tasks, bar)


def _run_on_client(tasks: list, client: Any, bar: Any) -> None:
    from distributed import as_completed  # noqa: PLC0415

    futures = client.compute(tasks)
    try:
        for future in as_completed(futures):
            future.result()
            bar.update()
    except BaseException:
        client.cancel(futures)  # nothing left queued on the cluster for a later run to meet
        raise


def _run_on_threads(tasks: list, bar: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    import dask  # noqa: PLC0415
    from dask.callbacks import Callback  # noqa: PLC0415

    class _Tick(Callback):
        def _posttask(self, key, result, dsk, state, worker_id):  # noqa: ANN001, ARG002
            if isinstance(result, str) and result:
                bar.update()

    pool = ThreadPoolExecutor(dask.config.get("num_workers", None) or os.cpu_count() or 1)
    try:
        with _Tick():
            dask.compute(*tasks, scheduler="threads", pool=pool)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # the chunks begun are finished, not abandoned


def _fingerprint(grid: xr.Dataset, chunks: dict[str, int], summary: bool, outputs: Sequence[str] | None) -> str:
    """What a resumed run must match: the grid's content, the chunking and the mode."""
    import hashlib  # noqa: PLC0415

    digest = hashlib.sha256()
    for name in sorted(map(str, grid.variables)):
        digest.update(name.encode())
        values = grid[name].values
        digest.update(np.ascontiguousarray(values if values.dtype.kind in "biuf" else values.astype(str)).tobytes())
    wanted = None if outputs is None else list(outputs)
    digest.update(json.dumps({"chunks": chunks, "summary": summary, "outputs": wanted}, sort_keys=True).encode())
    return digest.hexdigest()


def _check_set_up(partial: Path, template: xr.Dataset) -> None:
    """Refuse an interrupted store whose set-up never finished (one left by an older version)."""
    import zarr  # noqa: PLC0415

    try:
        stored = set(zarr.open_group(str(partial), mode="r", zarr_format=2, use_consolidated=False).array_keys())
    except Exception:  # metadata never written, or unreadable
        stored = set()
    if not set(map(str, template.variables)) <= stored:
        raise InputError(
            str(partial),
            None,
            "the interrupted run stopped before its store was set up; pass --overwrite to start again",
        )


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
