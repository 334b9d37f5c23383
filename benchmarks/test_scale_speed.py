"""Summary-mode sweeps of 1e6, 1e7 and 1e8 grid points streamed to Zarr (issue: scale-out).

Run: .venv/bin/python -m pytest benchmarks/test_scale_speed.py -q -s   (pip install -e '.[test,bench]')

Each size runs in a fresh process (so its peak resident memory is its own), timing the sweep
itself (`scale.write_zarr`; the planning probes, a second or two, are reported apart). Targets:
time linear in the grid points within 20 % (the marginal cost per point; a sweep has a fixed
start-up), peak resident memory under 4 GB at 1e8, and 2 workers at least 1.6x faster than 1 on a
2-core machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RUN = """
import json, resource, sys, time
import numpy as np
from ewaste import scale
from ewaste.inputs.validate import validate
from ewaste.inputs.scenario import scenario_to_grid

points, workers, store = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
n_life = 1000
raw = {"scenario": {"start_year": 2020, "end_year": 2030},
       "fleets": {"s": {"archetype": "dgx_h100", "driver": "stock",
                        "stock": {"2020": 2e4, "2030": 3e6, "interpolation": "log"},
                        "lifetime": {"type": "weibull", "mean": list(np.linspace(1, 6, n_life)), "std": 1.0}}},
       "recycling": {"collection_rate": list(np.linspace(0.1, 0.9, points // n_life))}}
grid = validate(scenario_to_grid(raw, "bench.toml"), "bench.toml")
client = None
if workers > 1 or "--cluster" in sys.argv:
    from distributed import Client, LocalCluster
    client = Client(LocalCluster(n_workers=workers, threads_per_worker=1, host="127.0.0.1",
                                 dashboard_address=None, silence_logs=40, env={"EWASTE_THREADS": "1"}))
t0 = time.perf_counter()
plan = scale.plan(grid, 5 * 10**8, 1, summary=True)  # the same chunks for 1 and 2 workers
t1 = time.perf_counter()
scale.write_zarr(grid, store, plan.chunks, summary=True, client=client)
seconds = time.perf_counter() - t1
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"points": points, "workers": workers, "seconds": seconds, "plan_seconds": t1 - t0, "peak_rss": peak,
                  "chunks": plan.n_chunks, "chunk_points": plan.chunk_points}))
"""


def sweep(points: int, workers: int, tmp: Path, *extra: str) -> dict:
    store = tmp / f"s{points}_{workers}.zarr"
    out = subprocess.run(
        [sys.executable, "-c", RUN, str(points), str(workers), str(store), *extra],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[int, dict]:
    tmp = tmp_path_factory.mktemp("scale")
    return {n: sweep(n, 1, tmp) for n in (10**6, 10**7, 10**8)}


def test_time_grows_linearly(runs):
    """The cost of each further grid point stays the same (within 20 %) from 1e6 to 1e7 to 1e8.

    A sweep also has a fixed start-up (planning probes, creating the store): time = fixed + n x
    marginal, so linear growth is checked on the marginal cost between sizes.
    """
    for n, r in runs.items():
        print(
            f"\n{n:>11,} points: {r['seconds']:7.1f} s (+ plan {r['plan_seconds']:.1f} s), "
            f"{n / r['seconds']:.3g} points/s, peak RSS {r['peak_rss'] / 1e9:.2f} GB, "
            f"{r['chunks']} chunks of {r['chunk_points']:,}"
        )
    t = {n: r["seconds"] for n, r in runs.items()}
    low = (t[10**7] - t[10**6]) / (10**7 - 10**6)
    high = (t[10**8] - t[10**7]) / (10**8 - 10**7)
    print(f"marginal cost: {low * 1e9:.1f} ns/point (1e6-1e7), {high * 1e9:.1f} ns/point (1e7-1e8)")
    assert abs(high / low - 1) <= 0.2


def test_memory_under_4gb_at_1e8(runs):
    assert runs[10**8]["peak_rss"] < 4e9


def test_two_workers_vs_one(tmp_path):
    one = sweep(10**7, 1, tmp_path, "--cluster")
    two = sweep(10**7, 2, tmp_path)
    speedup = one["seconds"] / two["seconds"]
    print(f"\n1e7 points: 1 worker {one['seconds']:.1f} s, 2 workers {two['seconds']:.1f} s, speed-up {speedup:.2f}x")
    assert speedup >= 1.6
