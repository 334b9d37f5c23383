"""One timing per process: `python benchmarks/cases.py CASE SCENARIOS [STEPS] [OUTPUTS]` prints a JSON
line with the seconds the case took (inputs built first and not timed) and the process's peak memory.

The reference is the plain vectorised NumPy recursion with closed-form survival: a stock-driven
fleet, Weibull lifetimes (a shape and a scale per scenario), survival by age evaluated once, then a
loop over steps, vectorised over scenarios (inflow and outflow, 'middle' ages). Every ewaste case
solves the same problem.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np

SHAPES, SCALES = (1.5, 4.0), (1.0, 7.0)


def problem(n: int, steps: int) -> dict[str, np.ndarray]:
    """n stock-driven scenarios: growing installed bases, Weibull shape and scale drawn per scenario."""
    rng = np.random.default_rng(0)
    growth = rng.uniform(1.0, 1.4, n)
    dt = 1.0 if steps <= 31 else 1.0 / 12  # annual steps, or monthly (132 steps: 11 years)
    years = np.arange(steps) * dt
    return {
        "stock": 1000.0 * growth[None, :] ** years[:, None],
        "shape": rng.uniform(*SHAPES, (1, n)),
        "scale": rng.uniform(*SCALES, (1, n)),
        "dt": dt,
    }


def reference(p: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Plain vectorised NumPy: survival by age in closed form, then the loop over steps."""
    stock = p["stock"]
    steps = stock.shape[0]
    age = (np.arange(steps)[:, None] + 0.5) * p["dt"]
    sf = np.exp(-((age / p["scale"]) ** p["shape"]))
    inflow = np.zeros_like(stock)
    for m in range(steps):
        inflow[m] = (stock[m] - (sf[m:0:-1] * inflow[:m]).sum(axis=0)) / sf[0]
    outflow = inflow - np.diff(stock, axis=0, prepend=0.0)
    return inflow, outflow


def _rows(p: dict[str, np.ndarray]):  # noqa: ANN202
    from ewaste.engine.arrays import NUMPY
    from ewaste.engine.stockflow import SurvivalRows

    params = {"shape": p["shape"], "scale": p["scale"]}
    return SurvivalRows("weibull", params, p["stock"].shape[0], p["dt"], "middle", NUMPY)


def engine(p: dict[str, np.ndarray], summary: bool, averages: bool = False) -> object:
    """The compiled CPU engine on the same problem: inflow, stock and outflow, as the reference (with
    `averages`, also the average in service over each step, which energy and GPU-years need)."""
    from ewaste.engine import host

    steps = p["stock"].shape[0]
    reduce = (np.stack([np.arange(steps) == steps - 1, np.ones(steps)]).astype(float), steps - 1) if summary else None
    return host.solve(p["stock"], True, _rows(p), negative_inflow="allow", reduce=reduce, averages=averages)


def grid(n: int):  # noqa: ANN201
    """The same problem as a scenario grid (31 annual steps): a sweep of Weibull shapes x scales, one
    engine scenario a grid point."""
    from ewaste.inputs.scenario import scenario_to_grid
    from ewaste.inputs.validate import validate

    n_shape = max(1, round(n**0.5))
    raw = {
        "scenario": {"start_year": 2000, "end_year": 2030, "target_year": 2030},
        "fleets": {
            "s": {
                "archetype": "dgx_h100",
                "driver": "stock",
                "stock": {"2000": 2e4, "2030": 3e6, "interpolation": "log"},
                "lifetime": {
                    "type": "weibull",
                    "shape": list(np.linspace(*SHAPES, n_shape)),
                    "scale": list(np.linspace(*SCALES, max(1, n // n_shape))),
                },
            }
        },
    }
    return validate(scenario_to_grid(raw, "bench.toml"), "bench.toml")


def main() -> None:
    case, n = sys.argv[1], int(float(sys.argv[2]))
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 31
    outputs = sys.argv[4].split(",") if len(sys.argv) > 4 and sys.argv[4] else None
    engines = {
        "engine": (False, False),
        "engine-summary": (True, False),
        "engine-averages": (False, True),
        "engine-summary-averages": (True, True),
    }
    if case == "reference" or case in engines:
        p = problem(n, steps)
        run = (lambda: reference(p)) if case == "reference" else (lambda: engine(p, *engines[case]))
        if case != "reference":
            engine(problem(64, steps), False)  # build or load the compiled engine first
    else:
        import ewaste

        g = grid(n)
        ewaste.evaluate(g.isel({d: slice(0, 1) for d in g.dims if d.startswith("s_lifetime")}), outputs=outputs)
        summary = case == "evaluate-summary"

        def run() -> object:
            return ewaste.evaluate(g, summary=summary, outputs=outputs)

    t0 = time.perf_counter()
    run()
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"case": case, "scenarios": n, "steps": steps, "seconds": seconds, "peak_rss": peak}))


if __name__ == "__main__":
    main()
