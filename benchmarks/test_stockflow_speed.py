"""Speed and memory of the stock-driven engines against a plain vectorised NumPy reference.

Run: .venv/bin/python -m pytest benchmarks -q   (pip install -e '.[test,bench]')

The reference is the textbook loop over steps, vectorised over scenarios, with the survival
function evaluated once per (age, scenario). Targets: the NumPy engine at least as fast as the
reference measured in the same run, memory O(steps x scenarios) (issue "spine"); the compiled CPU
engine at least 10x the reference at 1e6 scenarios x 31 steps and no slower at 1e3 (issue "GPU
kernel", the fast CPU path), with the same results to 1e-12.
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest
import scipy.special

from ewaste.engine import host
from ewaste.engine.arrays import NUMPY
from ewaste.engine.stockflow import SurvivalRows, reduce_flows, solve

STEPS = 31
SIZES = [1_000, 10_000, 100_000, 1_000_000]


def scenarios(n: int, seed: int = 0, steps: int = STEPS) -> dict[str, np.ndarray]:
    """Random growing installed bases and normal lifetimes (mean 1-6 yr, sd 20-40 % of it)."""
    rng = np.random.default_rng(seed)
    growth = rng.uniform(1.0, 1.4, n)
    stock = 1000.0 * growth[None, :] ** np.arange(steps)[:, None]
    mean = rng.uniform(1.0, 6.0, (1, n))
    std = mean * rng.uniform(0.2, 0.4, (1, n))
    return {"stock": stock, "mean": mean, "std": std}


def reference(stock: np.ndarray, mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Plain vectorised NumPy: survival by age, then loop over steps ('middle' ages, 1-year steps)."""
    steps = stock.shape[0]
    age = np.arange(steps)[:, None] + 0.5
    sf = scipy.special.ndtr(-(age - mean) / std)
    inflow = np.zeros_like(stock)
    for m in range(steps):
        inflow[m] = (stock[m] - (sf[m:0:-1] * inflow[:m]).sum(axis=0)) / sf[0]
    outflow = inflow - np.diff(stock, axis=0, prepend=0.0)
    return inflow, outflow


def engine(stock: np.ndarray, mean: np.ndarray, std: np.ndarray, solver=solve) -> tuple[np.ndarray, np.ndarray]:
    rows = SurvivalRows("normal", {"mean": mean, "std": std}, stock.shape[0], 1.0, "middle", NUMPY)
    flows = solver(stock, True, rows, negative_inflow="allow")
    return flows.inflow, flows.outflow


def fast_engine(stock: np.ndarray, mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return engine(stock, mean, std, host.solve)


def best_time(fn, *args, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return min(times)


def peak_bytes(fn, *args) -> int:
    tracemalloc.start()
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


@pytest.mark.parametrize("n", SIZES)
def test_stock_driven_speed(benchmark, n: int):
    data = scenarios(n)
    args = (data["stock"], data["mean"], data["std"])
    ref_in, ref_out = reference(*args)
    got_in, got_out = engine(*args)
    np.testing.assert_allclose(got_in, ref_in, rtol=1e-9, atol=1e-9 * np.abs(ref_in).max())
    np.testing.assert_allclose(got_out, ref_out, rtol=1e-9, atol=1e-9 * np.abs(ref_in).max())
    t_ref = best_time(reference, *args)
    benchmark.pedantic(engine, args=args, rounds=3, iterations=1)
    t_eng = benchmark.stats.stats.min
    benchmark.extra_info.update(
        {
            "scenarios": n,
            "steps": STEPS,
            "reference_s": t_ref,
            "engine_s": t_eng,
            "engine_scenario_years_per_s": n * STEPS / t_eng,
            "reference_scenario_years_per_s": n * STEPS / t_ref,
            "speedup": t_ref / t_eng,
        }
    )
    print(
        f"\n{n:>9} scenarios: engine {n * STEPS / t_eng:.3g} scenario-years/s, "
        f"reference {n * STEPS / t_ref:.3g}, speed-up {t_ref / t_eng:.2f}x"
    )
    assert t_eng <= 1.10 * t_ref, f"engine {t_eng:.3f}s slower than the reference {t_ref:.3f}s"


@pytest.mark.parametrize("n", [10_000, 100_000])
def test_stock_driven_memory_is_linear_in_steps(n: int):
    """Peak memory O(steps x scenarios): a few (steps x scenarios) arrays, never steps^2 x scenarios."""
    data = scenarios(n)
    peak = peak_bytes(engine, data["stock"], data["mean"], data["std"])
    one_array = STEPS * n * 8
    print(f"\n{n:>9} scenarios: peak {peak / 1e6:.1f} MB = {peak / one_array:.1f} x one (steps x scenarios) array")
    assert peak <= 8 * one_array, f"peak {peak / one_array:.1f} arrays of steps x scenarios"


needs_host = pytest.mark.skipif(not host.status()[0], reason=f"no compiled CPU engine: {host.status()[1]}")


@needs_host
@pytest.mark.parametrize("n", SIZES)
def test_fast_cpu_speed(benchmark, n: int):
    """The compiled CPU engine against the reference: >= 10x at 1e6, no slower at 1e3."""
    data = scenarios(n)
    args = (data["stock"], data["mean"], data["std"])
    ref_in, ref_out = reference(*args)
    want_in, want_out = engine(*args)
    got_in, got_out = fast_engine(*args)
    scale = np.abs(data["stock"]).max()
    np.testing.assert_allclose(got_in, want_in, rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_allclose(got_out, want_out, rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_allclose(got_in, ref_in, rtol=1e-9, atol=1e-9 * scale)
    t_ref = best_time(reference, *args)
    benchmark.pedantic(fast_engine, args=args, rounds=5, iterations=1)
    t_fast = benchmark.stats.stats.min
    speedup = t_ref / t_fast
    benchmark.extra_info.update(
        {"scenarios": n, "steps": STEPS, "threads": host.threads(), "reference_s": t_ref, "fast_s": t_fast}
    )
    benchmark.extra_info["speedup"] = speedup
    print(
        f"\n{n:>9} scenarios: compiled CPU {n * STEPS / t_fast:.3g} scenario-years/s, "
        f"reference {n * STEPS / t_ref:.3g}, speed-up {speedup:.1f}x ({host.threads()} threads)"
    )
    if n >= 1_000_000:
        assert speedup >= 10.0, f"compiled CPU engine only {speedup:.1f}x the reference at {n} scenarios"
    assert speedup >= 1.0, f"compiled CPU engine slower than the reference at {n} scenarios"


@needs_host
@pytest.mark.parametrize("steps", [31, 44])
@pytest.mark.parametrize("n", [10_000, 100_000, 1_000_000])
def test_throughput_table(n: int, steps: int):
    """Scenario-years per second of the reference, the NumPy engine and the compiled CPU engine."""
    data = scenarios(n, steps=steps)
    args = (data["stock"], data["mean"], data["std"])
    fast_engine(*args)  # warm-up
    rates = {name: n * steps / best_time(fn, *args) for name, fn in [("reference", reference), ("numpy", engine)]}
    rates["cpu"] = n * steps / best_time(fast_engine, *args, repeat=5)
    print(f"\n{n:>9} x {steps} steps: " + ", ".join(f"{k} {v:.3g}" for k, v in rates.items()) + " scenario-years/s")


BLOCK = 1_000_000  # scenarios per pass in summary mode beyond 1e6 (1e8 inputs would take 25 GB)


@needs_host
@pytest.mark.parametrize("steps", [31, 44])
@pytest.mark.parametrize("n", [10_000, 100_000, 1_000_000, 10_000_000, 100_000_000])
def test_summary_throughput(n: int, steps: int):
    """Summary mode (sums over the last year and over all steps, the stock at the end): scenario-years/s
    of the NumPy engine (trajectories, then summed) and the compiled CPU engine (summed as it goes),
    float64 and float32. Beyond 1e6 scenarios: passes over one block of 1e6 (the NumPy engine up to 1e7).
    """
    block = min(n, BLOCK)
    passes = n // block
    data = scenarios(block, steps=steps)
    rows = SurvivalRows("normal", {"mean": data["mean"], "std": data["std"]}, steps, 1.0, "middle", NUMPY)
    weights = np.stack([np.arange(steps) == steps - 1, np.ones(steps)]).astype(float)
    last = steps - 1

    def numpy_summary() -> object:
        return reduce_flows(solve(data["stock"], True, rows, negative_inflow="allow"), weights, last, np)

    def cpu_summary(single: bool = False) -> object:
        return host.solve(data["stock"], True, rows, negative_inflow="allow", reduce=(weights, last), single=single)

    want, got = numpy_summary(), cpu_summary()
    for name in ("inflow", "stock", "outflow"):
        a = getattr(want, name)
        np.testing.assert_allclose(getattr(got, name), a, rtol=1e-12, atol=1e-12 * np.abs(a).max(), err_msg=name)
    runs = {"cpu float64": cpu_summary, "cpu float32": lambda: cpu_summary(True)}
    if n <= 10_000_000:
        runs = {"numpy": numpy_summary, **runs}
    rates = {}
    for name, fn in runs.items():
        seconds = best_time(lambda f=fn: [f() for _ in range(passes)], repeat=3 if passes == 1 else 1)
        rates[name] = n * steps / seconds
    print(f"\n{n:>11} x {steps} summary: " + ", ".join(f"{k} {v:.3g}" for k, v in rates.items()) + " scenario-years/s")
