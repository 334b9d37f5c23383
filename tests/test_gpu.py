"""The GPU engine (ewaste/gpu.py, kernels/cohort.cu) against the NumPy engine.

On a machine with a usable GPU: every lifetime type and mode, device and host inputs, batches, and
every bundled scenario through `evaluate(..., "cupy")`, to 1e-12. Everywhere: the batching logic,
with the compiled CPU engine standing in for the kernel launch (same inputs and outputs).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from click.testing import CliRunner
from test_host import FIELDS, KINDS, assert_results_close, assert_same

from ewaste import evaluate
from ewaste.cli import cli
from ewaste.engine import backend, gpu, host, kernel
from ewaste.engine.arrays import NUMPY, Backend
from ewaste.engine.backend import _cupy_backend, cupy_status, get_backend, gpu_status
from ewaste.engine.kernel import sample_problem
from ewaste.engine.stockflow import SurvivalRows, reduce_flows, solve
from ewaste.errors import InputError
from ewaste.inputs import catalogue
from ewaste.inputs.load import load_grid

needs_gpu = pytest.mark.skipif(not cupy_status()[0], reason=f"no usable GPU: {cupy_status()[1]}")


@needs_gpu
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("convention", ["end", "middle"])
@pytest.mark.parametrize("by_cohort", [False, True])
@pytest.mark.parametrize(("stock_driven", "policy"), [(False, "correct"), (True, "correct"), (True, "allow")])
def test_kernel_equals_numpy_engine(kind, convention, by_cohort, stock_driven, policy):
    be = _cupy_backend()
    cp = be.xp
    rng = np.random.default_rng(zlib.crc32(f"gpu{kind}{convention}{by_cohort}{stock_driven}{policy}".encode()))
    params, driver, attributes = sample_problem(kind, by_cohort, stock_driven, 203, rng)
    n_history = 3 if stock_driven else 0
    want = solve(
        driver, stock_driven, SurvivalRows(kind, params, 23, 0.5, convention, NUMPY), attributes, n_history, policy
    )
    on_device = {k: cp.asarray(v) for k, v in params.items()}
    rows = SurvivalRows(kind, on_device, 23, 0.5, convention, be)
    got = gpu.solve(cp.asarray(driver), stock_driven, rows, cp.asarray(attributes), n_history, policy)
    assert isinstance(got.inflow, cp.ndarray)  # device in, device out
    host_got = type(got)(
        **{
            f: None if getattr(got, f) is None else be.asnumpy(getattr(got, f))
            for f in FIELDS + ["negative_inflow_steps"]
        }
    )
    assert_same(want, host_got, np.abs(driver).max())


@needs_gpu
@pytest.mark.parametrize("kind", KINDS)
def test_summary_mode_on_the_device(kind):
    be = _cupy_backend()
    cp = be.xp
    rng = np.random.default_rng(zlib.crc32(f"gpu-summary{kind}".encode()))
    params, driver, attributes = sample_problem(kind, False, True, 203, rng)
    weights = np.stack([np.arange(23) == 20, np.arange(23) <= 20]).astype(float)
    rows = SurvivalRows(kind, params, 23, 0.5, "middle", NUMPY)
    want = reduce_flows(solve(driver, True, rows, attributes, 2), weights, 20, np)
    rows = SurvivalRows(kind, {k: cp.asarray(v) for k, v in params.items()}, 23, 0.5, "middle", be)
    got = gpu.solve(cp.asarray(driver), True, rows, cp.asarray(attributes), 2, reduce=(cp.asarray(weights), 20))
    fields = FIELDS + ["negative_inflow_steps"]
    assert_same(want, type(got)(**{f: be.asnumpy(getattr(got, f)) for f in fields}), 23 * np.abs(driver).max())


@needs_gpu
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("stock_driven", "policy"), [(False, "correct"), (True, "allow")])
def test_float32_on_the_device(kind, stock_driven, policy):
    """float32 arithmetic within 1e-5 of each output's largest value (cases without corrections)."""
    be = _cupy_backend()
    cp = be.xp
    rng = np.random.default_rng(zlib.crc32(f"gpu-f32{kind}{stock_driven}{policy}".encode()))
    params, driver, attributes = sample_problem(kind, False, stock_driven, 300, rng, n=31)
    want = solve(driver, stock_driven, SurvivalRows(kind, params, 31, 0.25, "middle", NUMPY), attributes, 0, policy)
    rows = SurvivalRows(kind, {k: cp.asarray(v) for k, v in params.items()}, 31, 0.25, "middle", be)
    got = gpu.solve(cp.asarray(driver), stock_driven, rows, cp.asarray(attributes), 0, policy, single=True)
    for f in FIELDS:
        a, b = getattr(want, f), be.asnumpy(getattr(got, f))
        assert np.abs(b - a).max() <= 1e-5 * np.abs(a).max(), f


@needs_gpu
@pytest.mark.parametrize("max_batch", [None, 50])
def test_host_inputs_stream_through_the_device(max_batch):
    be = _cupy_backend()
    rng = np.random.default_rng(3)
    params, driver, attributes = sample_problem("weibull", False, True, 203, rng)
    rows = SurvivalRows("weibull", params, 23, 0.5, "middle", NUMPY)
    want = solve(driver, True, rows, attributes)
    got = gpu.solve(driver, True, rows, attributes, be=be, max_batch=max_batch)
    assert isinstance(got.inflow, np.ndarray)
    assert_same(want, got, np.abs(driver).max())


@needs_gpu
@pytest.mark.parametrize("name", sorted(catalogue.bundled()))
def test_bundled_scenarios_on_the_gpu(name):
    grid = load_grid(catalogue.resolve(name))
    want, got = evaluate(grid, "numpy"), evaluate(grid, "cupy")
    assert got.attrs["backend"] == "cupy"
    assert_results_close(want, got)
    summary = evaluate(grid, "cupy", summary=True)  # the kernel's summary mode
    assert_results_close(want[list(summary.data_vars)], summary)


@needs_gpu
def test_the_self_check_passes_and_auto_picks_the_gpu():
    ok, why = gpu_status()
    assert ok, why
    assert get_backend("auto").name == "cupy"


# --- the batching logic and the self-check, without a GPU -------------------------------------

FAKE = Backend("cupy", np, NUMPY.erfc)  # "device" arrays are NumPy arrays


@pytest.fixture
def fake_device(monkeypatch):
    """The compiled CPU engine plays the kernel; the device reports 1 MB free."""
    if not host.status()[0]:
        pytest.skip(host.status()[1])
    launches = []

    def launch(be, inputs: kernel.Inputs, out) -> None:
        launches.append(inputs.s)
        host.compute(inputs, out)

    monkeypatch.setattr(gpu, "_launch", launch)
    monkeypatch.setattr(gpu, "free_memory", lambda be: 10**6)
    return launches


@pytest.mark.parametrize("kind", ["normal", "tabulated"])
@pytest.mark.parametrize("by_cohort", [False, True])
def test_batches_sized_from_free_memory_give_the_same_results(fake_device, kind, by_cohort):
    rng = np.random.default_rng(11)
    params, driver, attributes = sample_problem(kind, by_cohort, True, 3001, rng)
    rows = SurvivalRows(kind, params, 23, 0.5, "middle", NUMPY)
    want = solve(driver, True, rows, attributes, 2)
    got = gpu.solve(driver, True, rows, attributes, 2, be=FAKE)
    inputs = kernel.prepare(driver, True, rows, attributes, 2, "correct", np)
    size = gpu.batch_size(inputs, 10**6)
    assert size < 3001 and fake_device == [size] * (3001 // size) + ([3001 % size] if 3001 % size else [])
    assert_same(want, got, np.abs(driver).max())


def test_summary_mode_in_batches(fake_device):
    rng = np.random.default_rng(12)
    params, driver, attributes = sample_problem("lognormal", True, True, 3001, rng)
    rows = SurvivalRows("lognormal", params, 23, 0.5, "end", NUMPY)
    weights = np.stack([np.arange(23) == 20, np.arange(23) <= 20]).astype(float)
    want = reduce_flows(solve(driver, True, rows, attributes, 2), weights, 20, np)
    got = gpu.solve(driver, True, rows, attributes, 2, be=FAKE, reduce=(weights, 20))
    assert len(fake_device) > 1 and got.attr_outflow.shape == (3, 3, 3001)
    assert_same(want, got, 23 * np.abs(driver).max())


@pytest.mark.parametrize("summary", [False, True])
def test_batches_without_averages(fake_device, summary):
    """averages=False through the batched path: the average in service is neither allocated nor
    copied back (None), and the other flows are those of the NumPy engine."""
    rng = np.random.default_rng(13)
    params, driver, attributes = sample_problem("weibull", False, True, 3001, rng)
    rows = SurvivalRows("weibull", params, 23, 0.5, "middle", NUMPY)
    weights = np.stack([np.arange(23) == 20, np.arange(23) <= 20]).astype(float)
    want = solve(driver, True, rows, attributes, 2, averages=False)
    reduce = (weights, 20) if summary else None
    if summary:
        want = reduce_flows(want, weights, 20, np)
    got = gpu.solve(driver, True, rows, attributes, 2, be=FAKE, reduce=reduce, averages=False)
    assert len(fake_device) > 1 and got.in_service is None and got.attr_in_service is None
    assert_same(want, got, 23 * np.abs(driver).max())


@pytest.mark.parametrize("summary", [False, True])
def test_a_shared_driver_in_batches(fake_device, summary):
    """One driver trajectory for every scenario (a broadcast view) goes to the device once, as (N, 1),
    whatever the batch; the flows are those of the NumPy engine."""
    rng = np.random.default_rng(14)
    params, driver, attributes = sample_problem("weibull", True, True, 3001, rng)
    shared = np.broadcast_to(driver[:, :1], driver.shape)
    rows = SurvivalRows("weibull", params, 23, 0.5, "middle", NUMPY)
    weights = np.stack([np.arange(23) == 20, np.arange(23) <= 20]).astype(float)
    reduce = (weights, 20) if summary else None
    want = solve(shared, True, rows, attributes, 2)
    if summary:
        want = reduce_flows(want, weights, 20, np)
    got = gpu.solve(shared, True, rows, attributes, 2, be=FAKE, reduce=reduce)
    assert len(fake_device) > 1 and kernel.prepare(shared, True, rows, None, 2, "correct", np).driver.shape == (23, 1)
    assert_same(want, got, 23 * np.abs(driver).max())


def test_batch_size_counts_inputs_and_outputs():
    """Per scenario: driver, 4 outputs, K attributes in and 3K out over N steps, 2 scalars, parameters."""
    rows = SurvivalRows("normal", {"mean": np.full((1, 10), 3.0), "std": np.ones((1, 10))}, 31, 1.0, "end", NUMPY)
    inputs = kernel.prepare(np.ones((31, 10)), True, rows, np.ones((2, 31, 10)), 0, "correct", np)
    per = 8 * (31 * (1 + 2) + 31 * (4 + 3 * 2) + 2) + 16
    assert gpu.batch_size(inputs, 2 * per * 7) == 7
    assert gpu.batch_size(inputs, 0) == 1 and gpu.batch_size(inputs, 10**12) == 10
    summary = kernel.prepare(
        np.ones((31, 10)), True, rows, np.ones((2, 31, 10)), 0, "correct", np, (np.ones((2, 31)), 30)
    )
    per = 8 * (31 * (1 + 2) + 3 * (4 + 3 * 2) + 2) + 16  # three values per series instead of 31 steps
    assert gpu.batch_size(summary, 2 * per * 7) == 7


def test_too_many_steps_for_the_kernel_use_the_array_engine(monkeypatch):
    """Beyond the kernel's per-thread scratch the array engine runs, on the same backend."""
    monkeypatch.setattr(gpu, "_launch", lambda *a: pytest.fail("kernel launched"))
    n = gpu.MAX_STEPS + 1
    rows = SurvivalRows("normal", {"mean": np.full((1, 2), 30.0), "std": np.ones((1, 2))}, n, 0.25, "end", NUMPY)
    driver = np.linspace(1.0, 2.0, n)[:, None] * np.ones((1, 2))
    got = gpu.solve(driver, True, rows, be=FAKE)
    np.testing.assert_allclose(got.stock, driver, rtol=1e-12)


def test_a_batch_that_does_not_fit_is_halved_until_it_does(fake_device, monkeypatch):
    class OutOfMemoryError(Exception):  # as cupy.cuda.memory.OutOfMemoryError
        pass

    def launch(be, inputs: kernel.Inputs, out) -> None:
        fake_device.append(inputs.s)
        if inputs.s > 500:
            raise OutOfMemoryError("Out of memory allocating 1,234,567 bytes")
        host.compute(inputs, out)

    monkeypatch.setattr(gpu, "_launch", launch)
    rng = np.random.default_rng(13)
    params, driver, attributes = sample_problem("weibull", True, True, 3001, rng)
    rows = SurvivalRows("weibull", params, 23, 0.5, "middle", NUMPY)
    got = gpu.solve(driver, True, rows, attributes, 2, be=FAKE, max_batch=3001)
    assert fake_device[:4] == [3001, 1500, 750, 375] and set(fake_device[4:]) <= {375, 1}
    assert_same(solve(driver, True, rows, attributes, 2), got, np.abs(driver).max())


def test_errors_other_than_memory_are_not_retried(fake_device, monkeypatch):
    monkeypatch.setattr(gpu, "_launch", lambda be, inputs, out: fake_device.append(inputs.s) or 1 / 0)
    params, driver, _ = sample_problem("normal", False, False, 100, np.random.default_rng(1))
    with pytest.raises(ZeroDivisionError):
        gpu.solve(driver, False, SurvivalRows("normal", params, 23, 0.5, "end", NUMPY), be=FAKE)
    assert len(fake_device) == 1
    assert gpu.out_of_memory(RuntimeError("cudaErrorMemoryAllocation: out of memory"))
    assert gpu.out_of_memory(RuntimeError("CUDA_ERROR_OUT_OF_MEMORY: out of memory"))


@pytest.fixture
def fake_gpu_backend(monkeypatch):
    """get_backend("cupy") gives a backend named cupy whose "device" arrays are NumPy arrays."""
    monkeypatch.setattr(backend, "cupy_status", lambda: (True, "CuPy 13 on a test device"))
    monkeypatch.setattr(backend, "_cupy_backend", lambda: FAKE)
    monkeypatch.setattr(gpu, "self_check", lambda be: (True, "matched"))


@pytest.mark.parametrize("summary", [False, True])
def test_the_model_streams_host_arrays_through_the_gpu_engine(fake_device, fake_gpu_backend, monkeypatch, summary):
    """evaluate(..., "cupy") runs each fleet through the device in batches sized from its free memory."""
    monkeypatch.setattr(gpu, "free_memory", lambda be: 3_000)  # room for a few of the 18 scenarios
    grid = load_grid(catalogue.resolve("default"))
    want, got = evaluate(grid, "numpy", summary=summary), evaluate(grid, "cupy", summary=summary)
    assert got.attrs["backend"] == "cupy" and len(fake_device) >= 2 and max(fake_device) < 18
    assert_results_close(want, got)


@pytest.fixture
def fresh_check():
    gpu.self_check.cache_clear()
    yield
    gpu.self_check.cache_clear()


def test_self_check_passes_a_kernel_that_matches(fake_device, fresh_check):
    ok, why = gpu.self_check(FAKE)
    assert ok, why
    assert len(fake_device) == 6 * (3 + 1)  # each lifetime type: three batches, then summary mode


@pytest.mark.parametrize("error", [1e-12, 1e-6])
def test_self_check_refuses_a_kernel_that_differs(fake_device, fresh_check, monkeypatch, error):
    def off(be, inputs, out) -> None:
        host.compute(inputs, out)
        out["summary" if "summary" in out else "outflow"][..., 0] *= 1 + error

    monkeypatch.setattr(gpu, "_launch", off)
    ok, why = gpu.self_check(FAKE)
    assert ok == (error < gpu.CHECK_TOLERANCE), why
    assert ok or "differ from the NumPy engine" in why


def test_self_check_reports_a_kernel_that_fails(monkeypatch, fresh_check):
    def broken(be, inputs, out) -> None:
        raise RuntimeError("cohort.cu(12): error: identifier undefined")

    monkeypatch.setattr(gpu, "_launch", broken)
    monkeypatch.setattr(gpu, "free_memory", lambda be: 10**9)
    ok, why = gpu.self_check(FAKE)
    assert not ok and "failed its self-check (RuntimeError: cohort.cu(12)" in why


@pytest.mark.parametrize("passes", [True, False])
def test_auto_picks_the_gpu_only_when_its_engine_passes_the_check(monkeypatch, passes):
    monkeypatch.setattr(backend, "cupy_status", lambda: (True, "CuPy 13 on a test device"))
    monkeypatch.setattr(backend, "_cupy_backend", lambda: FAKE)
    monkeypatch.setattr(gpu, "self_check", lambda be: (passes, "matched" if passes else "results differ by 0.1"))
    otherwise = "cpu" if host.status()[0] else "numpy"
    assert get_backend("auto").name == ("cupy" if passes else otherwise)
    if passes:
        assert get_backend("cupy").name == "cupy"
    else:
        with pytest.raises(InputError, match="cupy backend cannot run: CuPy 13 on a test device; results differ"):
            get_backend("cupy")
    info = CliRunner().invoke(cli, ["info"])
    assert f"auto selects: {'cupy' if passes else otherwise}" in info.output
    assert ("available: " if passes else "not available: ") + "CuPy 13 on a test device" in info.output
