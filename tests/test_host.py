"""The compiled CPU engine (kernels/cohort.h built for the host) against the NumPy engine.

The NumPy engine is itself checked against hand-worked cases, closed forms and flodym
(test_engine.py and test_flodym.py run every test on both engines); here the two engines are
compared on random inputs over every option, and the build, probe and error paths are tested.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zlib

import numpy as np
import pytest
import xarray as xr

from ewaste import evaluate
from ewaste.engine import host
from ewaste.engine.arrays import NUMPY
from ewaste.engine.backend import get_backend
from ewaste.engine.kernel import sample_problem
from ewaste.engine.stockflow import SurvivalRows, reduce_flows, solve
from ewaste.errors import InputError
from ewaste.inputs import catalogue
from ewaste.inputs.load import load_grid
from ewaste.model.outputs import CAPITAL, RESULTS

pytestmark = pytest.mark.skipif(not host.status()[0], reason=f"compiled CPU engine unavailable: {host.status()[1]}")

KINDS = ["fixed", "normal", "foldednormal", "lognormal", "weibull", "tabulated"]
FIELDS = ["inflow", "stock", "outflow", "in_service", "attr_stock", "attr_outflow", "attr_in_service"]


def both(kind, params, driver, stock_driven, convention="middle", attributes=None, n_history=0, policy="correct"):
    rows = SurvivalRows(kind, params, driver.shape[0], 0.5, convention, NUMPY)
    args = (driver, stock_driven, rows, attributes, n_history, policy)
    return solve(*args), host.solve(*args)


def assert_same(want, got, scale: float) -> None:
    for f in FIELDS:
        a, b = getattr(want, f), getattr(got, f)
        if a is None:
            assert b is None
            continue
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12 * scale, err_msg=f)
    np.testing.assert_array_equal(got.negative_inflow_steps, want.negative_inflow_steps)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("convention", ["end", "middle"])
@pytest.mark.parametrize("by_cohort", [False, True])
@pytest.mark.parametrize(("stock_driven", "policy"), [(False, "correct"), (True, "correct"), (True, "allow")])
def test_equals_numpy_engine(kind, convention, by_cohort, stock_driven, policy):
    """203 scenarios: three blocks of 64 side by side and 11 one by one; history and attributes."""
    rng = np.random.default_rng(zlib.crc32(f"{kind}{convention}{by_cohort}{stock_driven}{policy}".encode()))
    params, driver, attributes = sample_problem(kind, by_cohort, stock_driven, 203, rng)
    want, got = both(kind, params, driver, stock_driven, convention, attributes, 3 if stock_driven else 0, policy)
    assert_same(want, got, np.abs(driver).max())


def test_negative_inflow_is_corrected_alike():
    rng = np.random.default_rng(7)
    params, driver, attributes = sample_problem("normal", False, True, 130, rng)
    driver[12:] *= 0.5  # the installed base halves: inflow would be negative
    want, got = both("normal", params, driver, True, attributes=attributes)
    assert int(want.negative_inflow_steps.sum()) >= 130
    assert_same(want, got, np.abs(driver).max())
    assert got.inflow.min() >= 0.0


@pytest.mark.parametrize("s", [1, 63, 64, 65, 9001])
def test_any_width_and_threads(s, monkeypatch):
    """Partial blocks, and several threads: each scenario gets the same arithmetic either way."""
    rng = np.random.default_rng(s)
    params, driver, attributes = sample_problem("weibull", False, True, s, rng)
    monkeypatch.setenv(host.THREADS_VAR, "1")
    want, one = both("weibull", params, driver, True, attributes=attributes)
    monkeypatch.setenv(host.THREADS_VAR, "3")
    many = both("weibull", params, driver, True, attributes=attributes)[1]
    assert_same(want, one, np.abs(driver).max())
    for f in FIELDS + ["negative_inflow_steps"]:
        np.testing.assert_array_equal(getattr(many, f), getattr(one, f))


def test_broadcast_inputs():
    """One lifetime for every scenario, one driver for every scenario: the widest input sets S."""
    n = 15
    params = {"mean": np.array([[3.0]]), "std": np.array([[1.0]])}
    driver = np.linspace(100.0, 400.0, n)[:, None] * np.array([[1.0, 2.0, 3.0]])
    want, got = both("normal", params, driver, True)
    assert got.inflow.shape == (n, 3)
    assert_same(want, got, 400.0)


@pytest.mark.parametrize("kind", ["weibull", "tabulated"])
@pytest.mark.parametrize(("stock_driven", "n_history"), [(True, 0), (True, 3), (False, 0)])
@pytest.mark.parametrize("summary", [False, True])
@pytest.mark.parametrize("single", [False, True])
def test_a_shared_driver_is_read_once(kind, stock_driven, n_history, summary, single):
    """One driver trajectory for every scenario (a broadcast view, as a grid gives a driver it does not
    sweep) reaches the engine as (N, 1) (`driver_shared`) and gives exactly what its full copy does,
    with lifetimes by cohort, attributes, negative inflows corrected, history, both modes and both
    precisions; the stock given back is the shared trajectory, broadcast."""
    rng = np.random.default_rng(11)
    params, driver, attributes = sample_problem(kind, True, stock_driven, 203, rng)
    trajectory = np.linspace(1000.0, 3000.0, driver.shape[0])
    trajectory[12:15] *= 0.3  # a fall the old cohorts outlast: negative inflows
    shared = np.broadcast_to(trajectory[:, None], driver.shape)
    rows = SurvivalRows(kind, params, driver.shape[0], 0.5, "middle", NUMPY)
    weights = np.stack([np.arange(driver.shape[0]) >= 20, np.ones(driver.shape[0])]).astype(float)
    options = {"reduce": (weights, driver.shape[0] - 1) if summary else None, "single": single}
    got = host.solve(shared, stock_driven, rows, attributes, n_history, **options)
    want = host.solve(np.ascontiguousarray(shared), stock_driven, rows, attributes, n_history, **options)
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(got, f), getattr(want, f), err_msg=f)
    np.testing.assert_array_equal(got.negative_inflow_steps, want.negative_inflow_steps)
    assert not stock_driven or got.negative_inflow_steps.min() > 0  # the fall was corrected
    if stock_driven and not (n_history or summary or single):
        np.testing.assert_array_equal(got.stock, shared)


def test_refuses_a_first_step_that_loses_almost_everything():
    params = {"mean": np.array([[0.01]]), "std": np.array([[0.01]])}
    rows = SurvivalRows("normal", params, 5, 1.0, "middle", NUMPY)
    with pytest.raises(InputError, match=r"sf\[m,m\]") as numpy_err:
        solve(np.ones((5, 2)), True, rows)
    with pytest.raises(InputError, match=r"sf\[m,m\]") as host_err:
        host.solve(np.ones((5, 2)), True, rows)
    assert str(host_err.value) == str(numpy_err.value)


def subnormals_exist() -> bool:
    return bool(np.nextafter(0.0, 1.0) * 1.5 > 0.0 and np.nextafter(np.float32(0), np.float32(1)) * 1.5 > 0.0)


def test_loading_leaves_floating_point_state_alone():
    """Fast maths inside the library only: subnormal numbers still exist in this process, also after
    float32 runs (which flush subnormals to zero while they run), in this thread and in the pool's."""
    host.solve(np.ones((3, 2)), False, SurvivalRows("fixed", {"mean": np.ones((1, 1))}, 3, 1.0, "end", NUMPY))
    assert subnormals_exist()
    for s in (2, 64 * host.MIN_PER_THREAD):  # in the calling thread; in the pool
        params, driver, _ = sample_problem("normal", False, True, s, np.random.default_rng(5))
        host.solve(driver, True, SurvivalRows("normal", params, 23, 0.5, "middle", NUMPY), single=True)
        assert subnormals_exist()
        assert host._pool(host.threads()).submit(subnormals_exist).result()


@pytest.mark.parametrize("name", sorted(catalogue.bundled()))
def test_bundled_scenarios_give_the_same_results(name):
    grid = load_grid(catalogue.resolve(name))
    want, got = evaluate(grid, "numpy"), evaluate(grid, "cpu")
    assert got.attrs["backend"] == "cpu" and "compiled CPU engine" in got.attrs["engine"]
    assert_results_close(want, got)
    # summary mode (fleets reduced over time inside the engine) = the target values of the full run
    for backend in ("numpy", "cpu"):
        summary = evaluate(grid, backend, summary=True)
        assert summary.attrs["mode"] == "summary"
        assert_results_close(want[list(summary.data_vars)], summary)


@pytest.mark.parametrize(
    ("name", "precision"), [("default", "float64"), ("default", "float32"), ("cascade", "float64")]
)
def test_each_result_alone_equals_the_full_run(name, precision):
    """outputs=[name] has the engine write only the trajectories that result reads (`fleet._series`):
    each result of the bundled default (a stock-driven and an inflow-driven fleet, materials, metals,
    energy) and cascade (a fleet passing units on; of its money, the leases, which read the units in
    service: the rest comes from the cohort accounts) alone, with its aggregates, is the full run's:
    the same variables, dimensions and coordinates, values to rounding (a run without energy leaves
    the average in service out, and the compiler may order the sums differently); in float64 also
    the NumPy engine's."""
    grid = load_grid(catalogue.resolve(name))
    full = evaluate(grid, "cpu", precision=precision)
    reference = evaluate(grid, "numpy")
    accounts = [n for n in CAPITAL if n != "lease_cost"] if name == "cascade" else []
    for result in [n for n in RESULTS if n in full and n not in accounts]:
        alone = evaluate(grid, "cpu", precision=precision, outputs=[result])
        kept = [v for v in alone.data_vars if not str(v).startswith("drawn_")]
        assert result in kept and set(kept) <= set(full.data_vars)
        xr.testing.assert_allclose(alone[kept], full[kept], rtol=1e-6 if precision == "float32" else 1e-13)
        assert_results_close(full[kept], alone[kept], 1e-6 if precision == "float32" else 1e-13)
        if precision == "float64":
            assert_results_close(reference[kept], alone[kept])


@pytest.mark.parametrize("name", sorted(catalogue.bundled()))
def test_bundled_scenarios_run_in_float32(name):
    """Every bundled scenario in float32, trajectories and summary, within float32's stated error
    of float64 (docs/model.md: 6e-5 of each output's largest value where negative inflows are
    corrected). Cascade and wang2024, whose materials are summed by cohort in the engine, stopped on
    a balance check held to float64's tolerance."""
    grid = load_grid(catalogue.resolve(name))
    for summary in (False, True):
        want = evaluate(grid, "cpu", summary=summary)
        got = evaluate(grid, "cpu", summary=summary, precision="float32")
        assert_results_close(want, got, 6e-5)


def assert_results_close(want, got, rtol: float = 1e-12) -> None:
    for v in want.data_vars:
        a, b = want[v].values, got[v].values
        if a.dtype.kind == "f":
            scale = np.nanmax(np.abs(a)) if a.size and np.isfinite(a).any() else 1.0
            np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol * scale, err_msg=v)
        else:
            np.testing.assert_array_equal(b, a, err_msg=v)


@pytest.fixture
def fresh_probe(tmp_path, monkeypatch):
    """Probe the engine again in an empty cache; the probe of the session comes back afterwards."""
    monkeypatch.setenv(host.CACHE_VAR, str(tmp_path / "cache"))
    host._library.cache_clear()
    yield tmp_path
    host._library.cache_clear()


def test_no_compiler_falls_back_to_numpy_and_says_why(fresh_probe, monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler-ewaste")
    ok, why = host.status()
    assert not ok and "no C++ compiler" in why
    assert get_backend("auto").name == "numpy"
    with pytest.raises(InputError, match="the cpu backend cannot run: no C\\+\\+ compiler"):
        get_backend("cpu")


def test_a_compiler_that_fails_is_reported(fresh_probe, monkeypatch):
    failing = fresh_probe / "cxx"
    failing.write_text("#!/bin/sh\necho 'cxx: error: this compiler is broken' >&2\nexit 1\n")
    failing.chmod(0o755)
    monkeypatch.setenv("CXX", str(failing))
    ok, why = host.status()
    assert not ok and "this compiler is broken" in why
    assert get_backend().name == "numpy"


def test_built_once_then_loaded_from_the_cache(fresh_probe):
    assert host.status()[0]
    built = list((fresh_probe / "cache").glob("libewaste-cohort-*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    host._library.cache_clear()
    assert host.status()[0]
    assert [p.stat().st_mtime_ns for p in (fresh_probe / "cache").glob("libewaste-cohort-*.so")] == [stamp]


def test_bad_thread_count_is_an_input_error(monkeypatch):
    monkeypatch.setenv(host.THREADS_VAR, "two")
    with pytest.raises(InputError, match="EWASTE_THREADS"):
        host.threads()


def test_cli_cpu_backend_without_compiler_is_one_line(tmp_path):
    env = {**os.environ, "CXX": "no-such-compiler-ewaste", host.CACHE_VAR: str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "ewaste.cli", "run", "--backend", "cpu"], capture_output=True, text=True, env=env
    )
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "the cpu backend cannot run: no C++ compiler" in out.stderr


def _solve_in_child(queue) -> None:
    params = {"mean": np.full((1, 10_000), 3.0), "std": np.ones((1, 10_000))}
    rows = SurvivalRows("normal", params, 11, 1.0, "end", NUMPY)
    queue.put(float(host.solve(np.ones((11, 10_000)), True, rows).inflow.sum()))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_gets_its_own_threads(monkeypatch):
    """After the pool has run in the parent, a forked child (multiprocessing's default on Linux) still runs."""
    import multiprocessing  # noqa: PLC0415

    monkeypatch.setenv(host.THREADS_VAR, "2")
    _solve_in_child(queue := multiprocessing.get_context("fork").SimpleQueue())
    want = queue.get()
    child = multiprocessing.get_context("fork").Process(target=_solve_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    if child.exitcode is None:  # hung: do not leave it behind
        child.kill()
    assert child.exitcode == 0 and queue.get() == want


@pytest.mark.parametrize("kind", ["normal", "tabulated"])
@pytest.mark.parametrize("s", [5, 203])
def test_summary_mode_equals_reducing_the_trajectories(kind, s):
    """Summary mode: weighted sums over steps and the value at one step, computed without trajectories."""
    rng = np.random.default_rng(s)
    params, driver, attributes = sample_problem(kind, False, True, s, rng)
    n = driver.shape[0]
    weights = np.stack([(np.arange(n) >= 18) & (np.arange(n) < 20), np.arange(n) >= 3]).astype(float)
    weights[1] *= 0.5  # any weights: here half a step's flow counts
    rows = SurvivalRows(kind, params, n, 0.5, "middle", NUMPY)
    full = solve(driver, True, rows, attributes, 3)
    got = host.solve(driver, True, rows, attributes, 3, reduce=(weights, 19))
    by_hand = {
        f: np.stack(
            [np.einsum("n,...ns->...s", w, getattr(full, f)) for w in weights] + [getattr(full, f)[..., 19, :]], axis=-2
        )
        for f in FIELDS
    }
    assert got.inflow.shape == (3, s) and got.attr_stock.shape == (3, 3, s)
    for f in FIELDS:
        np.testing.assert_allclose(getattr(got, f), by_hand[f], rtol=1e-12, atol=1e-12 * np.abs(driver).max() * n)
    reduced = reduce_flows(full, weights, 19, np)
    for f in FIELDS:
        np.testing.assert_allclose(getattr(reduced, f), by_hand[f], rtol=1e-13, atol=1e-13 * np.abs(driver).max() * n)
    np.testing.assert_array_equal(got.negative_inflow_steps, full.negative_inflow_steps)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("by_cohort", [False, True])
@pytest.mark.parametrize("single", [False, True])
def test_without_averages_the_other_flows_are_unchanged(kind, by_cohort, single):
    """averages=False skips the average in service (None) and changes nothing else, on both engines,
    in trajectory and summary mode, float64 and float32 (to rounding: the compiler may order the
    sums differently once the averages' terms are gone)."""
    rng = np.random.default_rng(zlib.crc32(f"averages{kind}{by_cohort}".encode()))
    params, driver, attributes = sample_problem(kind, by_cohort, True, 131, rng)
    n = driver.shape[0]
    rows = SurvivalRows(kind, params, n, 0.5, "middle", NUMPY)
    args = (driver, True, rows, attributes, 3)
    weights = np.stack([np.arange(n) == n - 2, np.arange(n) <= n - 2]).astype(float)
    summary = {"single": single, "reduce": (weights, n - 2)}
    cases = [(solve, {}), (host.solve, {"single": single}), (host.solve, summary)]
    if single:
        cases = cases[1:]
    for engine, options in cases:
        full, lean = engine(*args, **options), engine(*args, **options, averages=False)
        assert lean.in_service is None and lean.attr_in_service is None
        np.testing.assert_array_equal(lean.negative_inflow_steps, full.negative_inflow_steps)
        tol = 1e-5 if single else 1e-13
        for f in ("inflow", "stock", "outflow", "attr_stock", "attr_outflow"):
            a, b = getattr(lean, f), getattr(full, f)
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max(), err_msg=f"{engine.__module__} {f}")


@pytest.mark.parametrize("series", [("outflow",), ("inflow", "attr_outflow"), ("stock", "in_service"), ()])
@pytest.mark.parametrize("stock_driven", [False, True])
def test_series_not_asked_for_are_not_written(series, stock_driven):
    """`series` leaves the other trajectories unwritten (None) and the ones asked for equal to the
    NumPy engine's, with and without history (the given stock then is, or is not, the stock)."""
    rng = np.random.default_rng(zlib.crc32(f"series{series}{stock_driven}".encode()))
    params, driver, attributes = sample_problem("weibull", False, stock_driven, 131, rng)
    for n_history in (0, 3):
        rows = SurvivalRows("weibull", params, driver.shape[0], 0.5, "middle", NUMPY)
        args = (driver, stock_driven, rows, attributes, n_history, "correct")
        want, got = solve(*args), host.solve(*args, series=series)
        for f in FIELDS:
            if f not in series:
                assert getattr(got, f) is None, f
                continue
            a, b = getattr(got, f), getattr(want, f)
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * driver.max(), err_msg=f)
        np.testing.assert_array_equal(got.negative_inflow_steps, want.negative_inflow_steps)


def test_one_tabulated_table_given_by_cohort():
    """A (1, L, S) table is one table for every cohort, as in the NumPy engine."""
    rng = np.random.default_rng(5)
    w = rng.uniform(0.0, 1.0, (1, 6, 70))
    w /= w.sum(axis=1, keepdims=True) * 1.2
    driver = np.cumsum(rng.uniform(0.0, 100.0, (40, 70)), axis=0) + 100.0
    want, got = both("tabulated", {"cumulative": np.cumsum(w, axis=1)}, driver, True)
    assert_same(want, got, np.abs(driver).max())


def test_parameters_are_read_by_name():
    """Weibull given scale first: the kernel still gets shape, then scale."""
    rng = np.random.default_rng(6)
    shape, scale = rng.uniform(1.0, 4.0, (1, 70)), rng.uniform(2.0, 6.0, (1, 70))
    driver = np.linspace(100.0, 900.0, 20)[:, None] * np.ones((1, 70))
    want, got = both("weibull", {"scale": scale, "shape": shape}, driver, True)
    assert_same(want, got, 900.0)


def test_compiler_with_options_in_cxx(fresh_probe, monkeypatch):
    monkeypatch.setenv("CXX", "c++ -DEWASTE_UNUSED=1")
    ok, what = host.status()
    assert ok and what.startswith("c++ ")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("by_cohort", [False, True])
@pytest.mark.parametrize(
    ("stock_driven", "policy", "rtol"), [(False, "correct", 1e-5), (True, "allow", 1e-5), (True, "correct", 1e-4)]
)
def test_float32_arithmetic_close_to_float64(kind, by_cohort, stock_driven, policy, rtol):
    """float32 on request: within 1e-5 of each output's largest value (measured up to 5e-6); 1e-4 where
    negative inflows are corrected, because float32 tells a negative inflow from rounding only above
    1e-5 of the largest stock (measured up to 6e-5)."""
    rng = np.random.default_rng(zlib.crc32(f"f32{kind}{by_cohort}{stock_driven}{policy}".encode()))
    params, driver, attributes = sample_problem(kind, by_cohort, stock_driven, 300, rng, n=31)
    rows = SurvivalRows(kind, params, 31, 0.25, "middle", NUMPY)
    want = host.solve(driver, stock_driven, rows, attributes, 0, policy)
    got = host.solve(driver, stock_driven, rows, attributes, 0, policy, single=True)
    for f in FIELDS:
        a, b = getattr(want, f), getattr(got, f)
        assert np.abs(b - a).max() <= rtol * np.abs(a).max(), f


def test_precision_choices():
    assert get_backend("cpu", "float32").precision == "float32"
    with pytest.raises(InputError, match="float32 needs a compiled engine"):
        get_backend("numpy", "float32")
    with pytest.raises(InputError, match="unknown precision 'half'"):
        get_backend("cpu", "half")
    grid = load_grid(catalogue.resolve("default"))
    single, double = evaluate(grid, "cpu", precision="float32"), evaluate(grid, "cpu")
    assert single.attrs["precision"] == "float32" and double.attrs["precision"] == "float64"
    for v in ("ewaste_generated_target", "energy_target", "recovered_cumulative_target"):
        np.testing.assert_allclose(single[v], double[v], rtol=1e-5)


def test_cli_float32_on_numpy_is_one_line():
    out = subprocess.run(
        [sys.executable, "-m", "ewaste.cli", "run", "--backend", "numpy", "--precision", "float32"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "float32 needs a compiled engine" in out.stderr


@pytest.mark.parametrize("by_cohort", [False, True])
def test_a_nan_lifetime_is_refused_alike(by_cohort):
    mean = np.full((5 if by_cohort else 1, 3), 3.0)
    mean[-1, 1] = np.nan
    rows = SurvivalRows("normal", {"mean": mean, "std": np.ones((1, 3))}, 5, 1.0, "end", NUMPY)
    for engine in (solve, host.solve):
        with pytest.raises(InputError, match=r"only nan of a cohort"):
            engine(np.ones((5, 3)), True, rows)


def test_cli_bad_thread_count_names_the_variable():
    env = {**os.environ, host.THREADS_VAR: "two"}
    out = subprocess.run([sys.executable, "-m", "ewaste.cli", "run", "-q"], capture_output=True, text=True, env=env)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert out.stderr.startswith("ewaste: error: EWASTE_THREADS: must be a whole number")


def test_a_first_build_says_so(fresh_probe, monkeypatch, caplog):
    """Building the engine (tens of seconds on a first run) is announced; the compiler here fails at
    once, so the test does not wait for a build."""
    failing = fresh_probe / "cc"
    failing.write_text("#!/bin/sh\ncase \"$1\" in --version) echo fake 1.0;; *) echo 'error: no' >&2; exit 1;; esac\n")
    failing.chmod(0o755)
    monkeypatch.setenv("CXX", str(failing))
    with caplog.at_level("INFO", logger="ewaste"):
        assert not host.status()[0]
    assert any("building the compiled CPU engine" in r.getMessage() for r in caplog.records)
