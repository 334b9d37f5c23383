"""The cost of uncertainty (issue: uncertainty and sensitivity), as ratios measured in the same run.

Run: .venv/bin/python -m pytest benchmarks/test_uncertainty_speed.py -q -s   (pip install -e '.[test,bench]')

- 1e6 draws of the default scenario's fleet, summary mode: sampling, the grid and the reduction to
  p5 / p50 / p95 and the mean against the engine's summary run of the same 1e6 points given as a
  plain sweep (target: at most 1.5x). Pairs interleaved, each timing a fresh process
  (`benchmarks/uncertainty_cases.py`).
- Sobol' indices of 10 parameters at 2^14 base samples (360,448 model runs): peak memory against
  the same analysis at 2^12 (target: it does not grow with N beyond the sample and its outputs).
"""

from __future__ import annotations

import json
from pathlib import Path

from test_end_to_end_speed import paired, record, timed

CASES = Path(__file__).with_name("uncertainty_cases.py")


def test_draws_cost_against_a_plain_sweep(benchmark):
    result = paired(("draws", "1e6"), ("sweep", "1e6"), script=CASES)
    result["overhead"] = 1 / result["ratio"] - 1  # draws' seconds / sweep's - 1
    record(benchmark, result)
    assert result["overhead"] <= 0.5, f"draws cost {100 * result['overhead']:.0f} % more than the sweep, target 50 %"


def test_sobol_memory_does_not_grow_with_the_sample(benchmark):
    small, large = (timed("sobol", str(n), script=CASES) for n in (2**12, 2**14))
    rows = 22 * (2**14 - 2**12)  # model runs added: N (2D + 2), D = 10
    # what must grow: the sample (10 floats a row) and its 4 outputs, held as uniforms, draws and
    # SALib's arrays: at most 5 copies; the engine's blocks (BLOCK rows) are the same size at any N
    sample_bytes = rows * (10 + 4) * 8 * 5
    result = {
        "seconds_2^12": small["seconds"],
        "seconds_2^14": large["seconds"],
        "peak_rss_gb_2^12": small["peak_rss"] / 1e9,
        "peak_rss_gb_2^14": large["peak_rss"] / 1e9,
        "sample_and_outputs_gb": sample_bytes / 1e9,
    }
    print(f"\nsobol 2^12 -> 2^14: {json.dumps(result)}")
    record(benchmark, result)
    assert large["peak_rss"] - small["peak_rss"] <= sample_bytes, "peak memory grew beyond the sample's own size"
