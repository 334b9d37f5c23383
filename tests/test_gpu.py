"""The GPU engine (ewaste/gpu.py, kernels/cohort.cu) against the NumPy engine.

On a machine with a usable GPU: every lifetime type and mode, device and host inputs, batches, and
every bundled scenario through `evaluate(..., "cupy")`, to 1e-12. Everywhere: the batching logic,
with the compiled CPU engine standing in for the kernel launch (same inputs and outputs).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from test_host import FIELDS, KINDS, assert_results_close, assert_same, random_case

from ewaste import catalogue, evaluate, gpu, host, kernel
from ewaste.backend import NUMPY, Backend, cupy_status, get_backend
from ewaste.grid import load_grid
from ewaste.stockflow import SurvivalRows, reduce_flows, solve

needs_gpu = pytest.mark.skipif(not cupy_status()[0], reason=f"no usable GPU: {cupy_status()[1]}")


@needs_gpu
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("convention", ["end", "middle"])
@pytest.mark.parametrize("by_cohort", [False, True])
@pytest.mark.parametrize(("stock_driven", "policy"), [(False, "correct"), (True, "correct"), (True, "allow")])
def test_kernel_equals_numpy_engine(kind, convention, by_cohort, stock_driven, policy):
    be = get_backend("cupy")
    cp = be.xp
    rng = np.random.default_rng(zlib.crc32(f"gpu{kind}{convention}{by_cohort}{stock_driven}{policy}".encode()))
    params, driver, attributes = random_case(kind, by_cohort, stock_driven, 203, rng)
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
    be = get_backend("cupy")
    cp = be.xp
    rng = np.random.default_rng(zlib.crc32(f"gpu-summary{kind}".encode()))
    params, driver, attributes = random_case(kind, False, True, 203, rng)
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
    be = get_backend("cupy")
    cp = be.xp
    rng = np.random.default_rng(zlib.crc32(f"gpu-f32{kind}{stock_driven}{policy}".encode()))
    params, driver, attributes = random_case(kind, False, stock_driven, 300, rng, n=31)
    want = solve(driver, stock_driven, SurvivalRows(kind, params, 31, 0.25, "middle", NUMPY), attributes, 0, policy)
    rows = SurvivalRows(kind, {k: cp.asarray(v) for k, v in params.items()}, 31, 0.25, "middle", be)
    got = gpu.solve(cp.asarray(driver), stock_driven, rows, cp.asarray(attributes), 0, policy, single=True)
    for f in FIELDS:
        a, b = getattr(want, f), be.asnumpy(getattr(got, f))
        assert np.abs(b - a).max() <= 1e-5 * np.abs(a).max(), f


@needs_gpu
@pytest.mark.parametrize("max_batch", [None, 50])
def test_host_inputs_stream_through_the_device(max_batch):
    be = get_backend("cupy")
    rng = np.random.default_rng(3)
    params, driver, attributes = random_case("weibull", False, True, 203, rng)
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


# --- the batching logic, without a GPU --------------------------------------------------------

FAKE = Backend("fake-gpu", np, NUMPY.erfc)  # "device" arrays are NumPy arrays


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
    params, driver, attributes = random_case(kind, by_cohort, True, 3001, rng)
    rows = SurvivalRows(kind, params, 23, 0.5, "middle", NUMPY)
    want = solve(driver, True, rows, attributes, 2)
    got = gpu.solve(driver, True, rows, attributes, 2, be=FAKE)
    inputs = kernel.prepare(driver, True, rows, attributes, 2, "correct", np)
    size = gpu.batch_size(inputs, 10**6)
    assert size < 3001 and fake_device == [size] * (3001 // size) + ([3001 % size] if 3001 % size else [])
    assert_same(want, got, np.abs(driver).max())


def test_summary_mode_in_batches(fake_device):
    rng = np.random.default_rng(12)
    params, driver, attributes = random_case("lognormal", True, True, 3001, rng)
    rows = SurvivalRows("lognormal", params, 23, 0.5, "end", NUMPY)
    weights = np.stack([np.arange(23) == 20, np.arange(23) <= 20]).astype(float)
    want = reduce_flows(solve(driver, True, rows, attributes, 2), weights, 20, np)
    got = gpu.solve(driver, True, rows, attributes, 2, be=FAKE, reduce=(weights, 20))
    assert len(fake_device) > 1 and got.attr_outflow.shape == (3, 3, 3001)
    assert_same(want, got, 23 * np.abs(driver).max())


def test_batch_size_counts_inputs_and_outputs():
    """Per scenario: driver, 3 outputs, K attributes in and 2K out over N steps, 2 scalars, parameters."""
    rows = SurvivalRows("normal", {"mean": np.full((1, 10), 3.0), "std": np.ones((1, 10))}, 31, 1.0, "end", NUMPY)
    inputs = kernel.prepare(np.ones((31, 10)), True, rows, np.ones((2, 31, 10)), 0, "correct", np)
    per = 8 * (31 * (1 + 2) + 31 * (3 + 2 * 2) + 2) + 16
    assert gpu.batch_size(inputs, 2 * per * 7) == 7
    assert gpu.batch_size(inputs, 0) == 1 and gpu.batch_size(inputs, 10**12) == 10
    summary = kernel.prepare(
        np.ones((31, 10)), True, rows, np.ones((2, 31, 10)), 0, "correct", np, (np.ones((2, 31)), 30)
    )
    per = 8 * (31 * (1 + 2) + 3 * (3 + 2 * 2) + 2) + 16  # three values per series instead of 31 steps
    assert gpu.batch_size(summary, 2 * per * 7) == 7


def test_too_many_steps_for_the_kernel_use_the_array_engine(monkeypatch):
    """Beyond the kernel's per-thread scratch the array engine runs, on the same backend."""
    monkeypatch.setattr(gpu, "_launch", lambda *a: pytest.fail("kernel launched"))
    n = gpu.MAX_STEPS + 1
    rows = SurvivalRows("normal", {"mean": np.full((1, 2), 30.0), "std": np.ones((1, 2))}, n, 0.25, "end", NUMPY)
    driver = np.linspace(1.0, 2.0, n)[:, None] * np.ones((1, 2))
    got = gpu.solve(driver, True, rows, be=FAKE)
    np.testing.assert_allclose(got.stock, driver, rtol=1e-12)
