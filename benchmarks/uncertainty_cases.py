"""One timing per process: `python benchmarks/uncertainty_cases.py CASE N` prints a JSON line with the
seconds the case took and the process's peak memory.

- `sweep N`: the default scenario's fleet at N points given as a plain sweep (the points drawn
  beforehand, untimed): the engine's summary run alone.
- `draws N`: the same N points as draws: sampling (LHS, the rank correlations, each parameter's
  quantile function), the grid, the summary run and the reduction to p5 / p50 / p95 and the mean,
  as `ewaste run` does before it writes.
- `sobol N`: Sobol' indices of the default scenario's 10 uncertain parameters (its 9 and the PUE) at
  N base samples, N x 22 model runs through `ewaste.analysis.experiments` (blocks, chunks).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "scenarios" / "default.toml"


def drawn_grid(n: int):  # noqa: ANN201
    from ewaste.inputs.scenario import scenario_to_grid
    from ewaste.inputs.tomlfile import read_toml
    from ewaste.inputs.validate import validate

    raw = read_toml(DEFAULT)
    raw["uncertainty"]["draws"] = n
    return validate(scenario_to_grid(raw, str(DEFAULT)), str(DEFAULT))


def as_sweep(grid):  # noqa: ANN001, ANN201
    """The drawn points as a plain sweep: the `draw` dimension renamed, no record of a design."""
    sweep = grid.rename(draw="point")
    del sweep.attrs["uncertainty"]
    return sweep


def main() -> None:
    import ewaste
    from ewaste.analysis.uncertainty import quantiles

    case, n = sys.argv[1], int(float(sys.argv[2]))
    ewaste.evaluate(drawn_grid(8), summary=True)  # engine built or loaded, caches warm
    if case == "sweep":
        grid = as_sweep(drawn_grid(n))

        def run() -> object:
            return ewaste.evaluate(grid, summary=True, validated=True)

    elif case == "draws":

        def run() -> object:
            results = ewaste.evaluate(drawn_grid(n), summary=True, validated=True)  # as `ewaste run`
            return quantiles(results)

    elif case == "sobol":
        import tempfile

        pue = 'pue = { dist = "triangular", min = 1.1, mode = 1.56, max = 1.8 } '  # a tenth parameter
        text = DEFAULT.read_text().replace("pue = 1.56 ", pue)
        folder = Path(tempfile.mkdtemp())
        (folder / "ten.toml").write_text(text)

        def run() -> object:
            from ewaste.analysis.experiments import sensitivity

            return sensitivity(folder / "ten.toml", "sobol", samples=n, seed=1)

    else:
        raise SystemExit(f"unknown case {case!r}")
    t0 = time.perf_counter()
    run()
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"case": case, "n": n, "seconds": seconds, "peak_rss": peak}))


if __name__ == "__main__":
    main()
