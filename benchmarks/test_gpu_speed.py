"""GPU engine speed against the device's own measured limits (issue: GPU kernel). Skipped without a GPU.

Run on a machine with a GPU: .venv/bin/python -m pytest benchmarks/test_gpu_speed.py -q -s
(pip install -e '.[test,bench,gpu]').

Measured in the same run: the device-to-device copy bandwidth (bytes read + written per second) and
the FP64 rate of a chain of fused multiply-adds. Then the kernel in trajectory mode (every step of
inflow, stock and outflow written) at 1e4-1e7 scenarios x 31 and 44 steps: scenario-years/s,
bytes/s (driver read, three outputs written) against the copy bandwidth, and FLOP/s of the
recursion's multiply-adds against the FP64 rate; and in summary mode (the recursion sums over the
target year and up to it as it goes, three values per scenario written) at 1e4-1e8 scenarios.
Targets (H100): trajectory mode at least 50 % of the copy bandwidth; summary mode at least 1e11
scenario-years/s in float64 at 31 steps.
"""

from __future__ import annotations

import numpy as np
import pytest

from ewaste.engine import gpu
from ewaste.engine.backend import cupy_status, get_backend
from ewaste.engine.stockflow import SurvivalRows

pytestmark = pytest.mark.skipif(not cupy_status()[0], reason=f"no usable GPU: {cupy_status()[1]}")

FMA_CHAIN = r"""
extern "C" __global__ void fma_chain(double* out, int iterations) {
  double a = threadIdx.x * 1e-9, b = 1.0 - a, c = 0.5 + a, d = 0.25 - a;
  for (int i = 0; i < iterations; ++i) {
    a = fma(a, 0.999999, 1e-7); b = fma(b, 0.999999, 1e-7); c = fma(c, 0.999999, 1e-7); d = fma(d, 0.999999, 1e-7);
  }
  out[blockIdx.x * blockDim.x + threadIdx.x] = a + b + c + d;
}
"""


def timed(cp, fn, repeat: int = 5) -> float:
    """Best of `repeat` GPU times in seconds (CUDA events)."""
    fn()
    best = np.inf
    for _ in range(repeat):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        best = min(best, cp.cuda.get_elapsed_time(start, stop) / 1e3)
    return best


@pytest.fixture(scope="module")
def peaks():
    be = get_backend("cupy")
    cp = be.xp
    a = cp.ones(2**27)  # 1 GiB
    b = cp.empty_like(a)
    copy = 2 * a.nbytes / timed(cp, lambda: b.__setitem__(Ellipsis, a))
    kernel = cp.RawKernel(FMA_CHAIN, "fma_chain")
    blocks, threads, iterations = 132 * 64, 256, 4096
    out = cp.empty(blocks * threads)
    t = timed(cp, lambda: kernel((blocks,), (threads,), (out, np.int32(iterations))))
    fp64 = 2 * 4 * iterations * blocks * threads / t
    print(f"\ndevice: {cupy_status()[1]}; copy {copy / 1e9:.0f} GB/s, FP64 FMA {fp64 / 1e12:.1f} TFLOP/s")
    return {"copy": copy, "fp64": fp64}


def problem(be, n: int, steps: int):
    """Growing installed bases and normal lifetimes differing by scenario, on the device."""
    cp = be.xp
    rng = np.random.default_rng(0)
    growth = cp.asarray(rng.uniform(1.0, 1.4, n))
    stock = cp.arange(steps, dtype=cp.float64)[:, None] * cp.log(growth)[None, :]  # the only (steps, n) array
    cp.exp(stock, out=stock)
    stock *= 1000.0  # 1000 * growth ** step
    mean = cp.asarray(rng.uniform(1.0, 6.0, (1, n)))
    return stock, SurvivalRows("normal", {"mean": mean, "std": 0.3 * mean}, steps, 1.0, "middle", be)


@pytest.mark.parametrize("single", [False, True], ids=["float64", "float32"])
@pytest.mark.parametrize("steps", [31, 44])
@pytest.mark.parametrize("n", [10_000, 100_000, 1_000_000, 10_000_000, 100_000_000])
def test_summary_mode(n: int, steps: int, single: bool):
    be = get_backend("cupy")
    cp = be.xp
    stock, rows = problem(be, n, steps)
    weights = cp.asarray(np.stack([np.arange(steps) == steps - 1, np.ones(steps)]).astype(float))
    reduce = (weights, steps - 1)
    t = timed(cp, lambda: gpu.solve(stock, True, rows, negative_inflow="allow", reduce=reduce, single=single), repeat=3)
    rate = n * steps / t
    print(f"\n{n:>11} x {steps} summary {'float32' if single else 'float64'}: {rate:.3g} scenario-years/s")
    if steps == 31 and n >= 10_000_000 and not single:
        assert rate >= 1e11, f"summary mode {rate:.3g} scenario-years/s, target 1e11"


@pytest.mark.parametrize("steps", [31, 44])
@pytest.mark.parametrize("n", [10_000, 100_000, 1_000_000, 10_000_000])
def test_trajectory_mode(peaks, n: int, steps: int):
    be = get_backend("cupy")
    cp = be.xp
    stock, rows = problem(be, n, steps)
    t = timed(cp, lambda: gpu.solve(stock, True, rows, negative_inflow="allow"), repeat=3)
    moved = 8 * n * (steps * (1 + 3) + 2 + 2)  # driver in; inflow, stock, outflow out; 2 parameters; 2 scalars out
    flops = 2 * n * steps * (steps - 1) / 2  # the recursion's multiply-adds only
    print(
        f"\n{n:>10} x {steps}: {n * steps / t:.3g} scenario-years/s, {moved / t / 1e9:.0f} GB/s "
        f"({moved / t / peaks['copy']:.0%} of copy), {flops / t / 1e12:.2f} TFLOP/s "
        f"({flops / t / peaks['fp64']:.1%} of FP64)"
    )
    if n >= 1_000_000:
        assert moved / t >= 0.5 * peaks["copy"], "trajectory mode below half the copy bandwidth"
