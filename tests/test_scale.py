"""Chunked, lazy, distributed and resumable sweeps (dask, Zarr) give the in-memory results exactly."""

from __future__ import annotations

import importlib
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr
from dask.callbacks import Callback

import ewaste
from ewaste import scale
from ewaste.engine import host
from ewaste.errors import InputError
from ewaste.inputs import catalogue
from ewaste.inputs.validate import scenario_sizes

DEFAULT = catalogue.bundled()["default-sweep"]
CHUNKS = {"refresh_cycle": 2, "metal_content": 2, "growth": 3, "recycling_collection_rate": 3}


@pytest.fixture(scope="module")
def grid() -> xr.Dataset:
    return ewaste.load_grid(DEFAULT)


@pytest.fixture(scope="module")
def in_memory(grid) -> xr.Dataset:
    return ewaste.evaluate(grid)


class NoCompute(Callback):
    """Fails on any task: proves a step builds a graph without computing it."""

    def _pretask(self, key, dsk, state):  # noqa: ANN001
        raise AssertionError(f"computed early: {key}")


def ewaste_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ewaste.cli", *args], capture_output=True, text=True, **kw)


def test_chunked_equals_in_memory_and_is_lazy(grid, in_memory):
    with NoCompute():
        lazy = scale.evaluate_lazy(grid, CHUNKS)
        assert isinstance(lazy["ewaste_generated"].data, dask.array.Array)
        assert lazy["recovered"].chunks is not None
    assert isinstance(lazy["ewaste_generated"].data._meta, np.ndarray)  # NumPy chunks stay NumPy
    got = lazy.compute()
    assert isinstance(got["ewaste_generated"].data, np.ndarray)
    xr.testing.assert_identical(got.drop_attrs(), in_memory.drop_attrs())


def test_summary_mode_keeps_target_values_only(grid, in_memory):
    summary = ewaste.evaluate(grid, summary=True)
    assert set(summary.data_vars) == {v for v in in_memory.data_vars if v.endswith("_target")} | {
        "negative_inflow_steps"
    }
    xr.testing.assert_equal(summary["ewaste_generated_target"], in_memory["ewaste_generated_target"])
    lazy = scale.evaluate_lazy(grid, CHUNKS, summary=True).compute()
    xr.testing.assert_identical(lazy.drop_attrs(), summary.drop_attrs())


def test_zarr_store_equals_in_memory(grid, in_memory, tmp_path: Path):
    scale.write_zarr(grid, tmp_path / "r.zarr", CHUNKS)
    assert not (tmp_path / "r.zarr.partial").exists()
    store = xr.open_zarr(tmp_path / "r.zarr").load()
    xr.testing.assert_equal(store[list(in_memory.data_vars)].drop_attrs(), in_memory.drop_attrs())
    assert store.attrs["scenario_file"] == "default-sweep.toml"


def test_plan_fits_the_memory_limit(grid):
    roomy = scale.plan(grid, 10**10)  # evidently fits: planned from an estimate, without measuring
    assert roomy.n_chunks == 1 and roomy.points == 162 and roomy.seconds_per_point is None
    limit = int(roomy.work_bytes_per_point * 10)
    tight = scale.plan(grid, limit)  # measured
    assert tight.seconds_per_point > 0 and tight.n_chunks > 1 and tight.chunk_bytes <= limit
    assert tight.n_chunks == len(list(scale.blocks(scenario_sizes(grid), tight.chunks)))
    with pytest.raises(InputError, match="one grid point needs about"):
        scale.plan(grid, 1000)


def test_measured_chunks_hold_at_most_max_chunk_points(grid, monkeypatch):
    """A generous limit still cuts a measured grid into chunks of at most MAX_CHUNK_POINTS (here 40 of
    162 points: memory stays bounded at any grid size)."""
    planning = importlib.import_module("ewaste.scale.plan")  # the module (ewaste.scale.plan is also the function)
    monkeypatch.setattr(planning, "EVIDENT", 1e30)  # measure, however roomy the limit
    monkeypatch.setattr(planning, "MAX_CHUNK_POINTS", 40)
    planned = scale.plan(grid, 10**10)
    assert planned.seconds_per_point is not None and planned.chunk_points <= 40
    assert planned.n_chunks >= -(-162 // 40)


def test_a_big_grid_is_timed_on_a_larger_piece(grid, monkeypatch):
    """The time estimate of a grid with room for larger pieces comes from one evaluation of such a
    piece (here probes of up to 4 and 8 points, then of up to 40 = 162 // 4), timed without tracing."""
    planning = importlib.import_module("ewaste.scale.plan")
    evaluated = []

    def spy(g, *args, **kwargs):
        evaluated.append(math.prod(scenario_sizes(g).values()))
        return ewaste.evaluate(g, *args, **kwargs)

    monkeypatch.setattr(planning, "evaluate", spy)
    monkeypatch.setattr(planning, "EVIDENT", 1e30)
    monkeypatch.setattr(planning, "PROBES", (4, 8))
    monkeypatch.setattr(planning, "TIME_PROBE_SECONDS", 1e9)
    planned = scale.plan(grid, 10**10)
    assert max(evaluated[:-1]) <= 8 < evaluated[-1] <= 40
    assert planned.seconds_per_point > 0


def test_the_estimate_divides_by_workers_only_beyond_the_cores(monkeypatch):
    """The probes' engine already ran on every core: 1e6 points at 1 us take 1 s on up to as many
    workers as cores, half that on twice as many."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    at = {w: scale.Plan({"a": 1000, "b": 1000}, {"a": 10, "b": 1000}, 8.0, 80.0, 1e-6, w).seconds for w in (1, 2, 4)}
    assert at == pytest.approx({1: 1.0, 2: 1.0, 4: 0.5})


def test_choose_chunks_keeps_inner_dimensions_whole():
    sizes = {"a": 10, "b": 4, "c": 5}
    assert scale.choose_chunks(sizes, 1000) == {"a": 10, "b": 4, "c": 5}
    assert scale.choose_chunks(sizes, 20) == {"a": 1, "b": 4, "c": 5}
    assert scale.choose_chunks(sizes, 12) == {"a": 1, "b": 2, "c": 5}
    assert scale.choose_chunks(sizes, 3) == {"a": 1, "b": 1, "c": 3}


def test_refuses_results_that_do_not_fit_netcdf(tmp_path: Path):
    out = ewaste_cli("run", "--out", str(tmp_path / "r.nc"), "--memory-limit", "1MB")
    assert out.returncode == 2
    assert "more than the memory limit" in out.stderr and ".zarr" in out.stderr and "--summary" in out.stderr
    assert not (tmp_path / "r.nc").exists()


def test_local_cluster_with_two_worker_processes(in_memory, tmp_path: Path):
    args = ("run", "default-sweep", "--workers", "2", "--memory-limit", "4MB", "-q")
    out = ewaste_cli(*args, "--out", str(tmp_path / "w.zarr"))
    assert out.returncode == 0, out.stderr
    store = xr.open_zarr(tmp_path / "w.zarr").load()
    xr.testing.assert_equal(store[list(in_memory.data_vars)].drop_attrs(), in_memory.drop_attrs())
    if host.status()[0]:  # the workers' engine, one thread each, not the planning process's
        assert store.attrs["engine"].endswith(", 1 thread, float64)"), store.attrs["engine"]


def test_engines_of_markers_of_an_older_version_are_unknown(tmp_path: Path):
    """A resumed run's markers without an engine (older format) count as the set-up's engine."""
    import zarr

    store, done = tmp_path / "s.zarr", tmp_path / "done"
    zarr.open_group(str(store), mode="w", zarr_format=2).attrs.update(
        {"backend": "cpu", "engine": "compiled", "precision": "float64"}
    )
    done.mkdir()
    (done / "0_0").write_text("done\n")
    (done / "0_3").write_text('{"backend": "numpy", "engine": "NumPy 2", "precision": "float64"}\n')
    (done / ".0_6.a1b2").write_text('{"backend": "nu')  # staged, never renamed: ignored
    scale.zarr._record_engines(store, done)
    attrs = zarr.open_group(str(store), mode="r", zarr_format=2).attrs
    assert (attrs["backend"], attrs["engine"], attrs["precision"]) == ("cpu; numpy", "NumPy 2; compiled", "float64")


def test_store_names_the_engine_that_computed_its_chunks(grid, tmp_path: Path, monkeypatch):
    """Chunks computed on another engine than the process that set the store up (as on a cluster)."""

    def chunks_on_numpy(block: xr.Dataset, backend=None, summary=False, **options) -> xr.Dataset:
        return ewaste.evaluate(block, "numpy" if scale.grid_points(block) > 1 else backend, summary=summary, **options)

    monkeypatch.setattr(scale.zarr, "evaluate", chunks_on_numpy)
    scale.write_zarr(grid, tmp_path / "n.zarr", CHUNKS)
    attrs = xr.open_zarr(tmp_path / "n.zarr").attrs
    assert (attrs["backend"], attrs["engine"], attrs["precision"]) == ("numpy", f"NumPy {np.__version__}", "float64")


def test_killed_run_resumes_to_the_same_store(in_memory, tmp_path: Path):
    """SIGKILL mid-run: no complete-looking store is left; --resume computes only what is missing."""
    target = tmp_path / "k.zarr"
    args = ["run", "default-sweep", "-q", "--memory-limit", "300kB", "--out", str(target)]
    proc = subprocess.Popen([sys.executable, "-m", "ewaste.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done = tmp_path / "k.zarr.partial-done"
    deadline = time.time() + 120
    while time.time() < deadline and (not done.exists() or len(list(done.iterdir())) < 3):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not target.exists(), "an interrupted store must not read as complete"
    finished_before = {p.name for p in done.iterdir()}
    assert finished_before
    refused = ewaste_cli(*args)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    resumed = ewaste_cli(*args[:-4], "--memory-limit", "1GB", "--out", str(target), "--resume")  # the stored chunking
    assert resumed.returncode == 0, resumed.stderr
    assert target.exists() and not done.exists()
    store = xr.open_zarr(target).load()
    xr.testing.assert_equal(store[list(in_memory.data_vars)].drop_attrs(), in_memory.drop_attrs())
    assert store.attrs["backend"] == in_memory.attrs["backend"]  # both parts of the run, on one engine


def test_resume_refuses_a_store_from_another_grid(grid, tmp_path: Path):
    partial = tmp_path / "x.zarr.partial"
    scale.write_zarr(grid, tmp_path / "x.zarr", CHUNKS)
    os.replace(tmp_path / "x.zarr", partial)
    (tmp_path / "x.zarr.partial-done").mkdir()
    other = grid.copy()
    other["mass"] = grid["mass"] * 2
    with pytest.raises(InputError, match="another grid, chunking or mode"):
        scale.write_zarr(other, tmp_path / "x.zarr", CHUNKS, resume=True)


@pytest.mark.parametrize("name", ["recycling-levers", "no-sweep"])
def test_zarr_with_variables_that_no_sweep_touches(name: str, tmp_path: Path):
    """Results that do not depend on any sweep dimension are in the store too (written once)."""
    if name == "no-sweep":
        path = tmp_path / "one.toml"
        path.write_text(
            '[fleets.s]\narchetype = "dgx_h100"\ndriver = "stock"\nstock = 1000\n'
            'lifetime = { type = "fixed", mean = 3 }\n'
        )
    else:
        path = catalogue.bundled()[name]
    grid = ewaste.load_grid(path)
    full = ewaste.evaluate(grid)
    sizes = scenario_sizes(grid)
    scale.write_zarr(grid, tmp_path / "r.zarr", {d: 1 for d in sizes})
    store = xr.open_zarr(tmp_path / "r.zarr").load()
    xr.testing.assert_equal(store[list(full.data_vars)].drop_attrs(), full.drop_attrs())


def test_resume_needs_an_interrupted_run(grid, tmp_path: Path):
    with pytest.raises(InputError, match="nothing to resume"):
        scale.write_zarr(grid, tmp_path / "r.zarr", CHUNKS, resume=True)


def test_chunk_count_with_uneven_chunks(grid):
    plan = scale.plan(grid, 10**10)
    uneven = scale.Plan(**{**plan.__dict__, "chunks": {**plan.chunks, "refresh_cycle": 4}})
    assert uneven.n_chunks == len(list(scale.blocks(scenario_sizes(grid), uneven.chunks)))
