"""Global sensitivity: which uncertain parameter drives a result. Sobol' first-order and total indices
(Saltelli sampling, bootstrap confidence intervals), Morris elementary effects, and a one-at-a-time
tornado (each parameter from its p5 to its p95, the others at their medians).

Samples and estimators are SALib's (Herman & Usher 2017; Saltelli et al. 2010; Morris 1991, Campolongo
et al. 2007): ewaste only maps SALib's uniform samples through each parameter's quantile function
and evaluates the model on them. A model is any function of (rows, parameters) uniform samples in
(0, 1) to a Dataset of outputs over `draw` (one per row), so the same code runs on a scenario and on
analytic test functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import xarray as xr

METHODS = ("sobol", "morris", "tornado")
EPS = 1e-9  # SALib's samples at 0 or 1 are moved this far in: some quantile functions are infinite there
MORRIS_RANGE = (0.01, 0.99)  # Morris moves each parameter over its p1 .. p99
LEVELS = 4
Model = Callable[[np.ndarray], xr.Dataset]


def _problem(names: Sequence[str], bounds: tuple[float, float] = (0.0, 1.0)) -> dict:
    return {"num_vars": len(names), "names": list(names), "bounds": [list(bounds)] * len(names)}


def _points(ds: xr.Dataset) -> list[dict]:
    """The points of the outputs' other dimensions (a sweep), each analysed on its own."""
    dims = [d for d in ds.dims if d != "draw"]
    return [dict(zip(dims, idx, strict=True)) for idx in np.ndindex(*(ds.sizes[d] for d in dims))]


def _collect(ds: xr.Dataset, names: Sequence[str], analyse: Callable[[np.ndarray], dict]) -> xr.Dataset:
    """Run `analyse` on each output at each point; gather its results over (output, parameter, point dims)."""
    dims = [d for d in ds.dims if d != "draw"]
    out: dict[str, list] = {}
    for name in ds.data_vars:
        da = ds[name]  # an output the swept input leaves alone lacks that dimension: the same at every point
        at = [{d: i for d, i in p.items() if d in da.dims} for p in _points(ds)]
        per_point = [analyse(np.asarray(da.isel(p).values, dtype=float)) for p in at]
        for key in per_point[0]:
            stacked = np.stack([np.asarray(r[key], dtype=float) for r in per_point], axis=-1)
            out.setdefault(key, []).append(stacked.reshape(len(names), *(ds.sizes[d] for d in dims)))
    coords = {"output": list(ds.data_vars), "parameter": list(names)}
    coords |= {d: ds[d].values for d in dims if d in ds.coords}
    data = {k: (("output", "parameter", *dims), np.stack(v)) for k, v in out.items()}
    return xr.Dataset(data, coords=coords)


def sobol(names: Sequence[str], model: Model, n: int = 1024, seed: int = 0, conf: float = 0.95) -> xr.Dataset:
    """Sobol' first-order (S1) and total (ST) indices with bootstrap confidence intervals (S1_conf,
    ST_conf: half-widths at `conf`), over (output, parameter). n: base samples (a power of 2; the
    model runs n (D + 2) times). Raises ValueError for n not a power of 2."""
    from SALib.analyze import sobol as analyze  # noqa: PLC0415 - SALib imports slowly: only when asked
    from SALib.sample import sobol as sample  # noqa: PLC0415

    if n < 2 or n & (n - 1):
        raise ValueError(f"Sobol' indices need a power of 2 base samples, got {n}")
    problem = _problem(names)
    u = np.clip(sample.sample(problem, n, calc_second_order=False, scramble=True, seed=seed), EPS, 1 - EPS)
    ds = model(u)

    def analyse(y: np.ndarray) -> dict:
        if np.ptp(y) == 0:  # an output that does not vary: no parameter moves it
            return dict.fromkeys(("S1", "S1_conf", "ST", "ST_conf"), np.zeros(len(names)))
        # the bootstrap's own generator: SALib leaves it unseeded for seed 0 (`if seed:`)
        boot = np.random.default_rng(seed)
        si = analyze.analyze(problem, y, calc_second_order=False, conf_level=conf, seed=boot, print_to_console=False)
        return {k: si[k] for k in ("S1", "S1_conf", "ST", "ST_conf")}

    res = _collect(ds, names, analyse)
    return res.assign_attrs(method="sobol", base_samples=n, model_runs=len(u), seed=seed, conf_level=conf)


def morris(
    names: Sequence[str], model: Model, trajectories: int = 100, seed: int = 0, conf: float = 0.95
) -> xr.Dataset:
    """Morris elementary effects over each parameter's p1 .. p99: mu_star (mean absolute effect, in the
    output's units per the whole range), its confidence half-width, mu and sigma; (trajectories) x
    (D + 1) model runs. Cheap screening of many parameters before Sobol'."""
    from SALib.analyze import morris as analyze  # noqa: PLC0415
    from SALib.sample import morris as sample  # noqa: PLC0415

    problem = _problem(names, MORRIS_RANGE)
    u = sample.sample(problem, trajectories, num_levels=LEVELS, seed=seed)
    ds = model(u)

    def analyse(y: np.ndarray) -> dict:
        si = analyze.analyze(problem, u, y, num_levels=LEVELS, conf_level=conf, seed=seed, print_to_console=False)
        return {k: si[k] for k in ("mu_star", "mu_star_conf", "mu", "sigma")}

    res = _collect(ds, names, analyse)
    return res.assign_attrs(method="morris", trajectories=trajectories, model_runs=len(u), seed=seed, conf_level=conf)


def tornado(names: Sequence[str], model: Model, low: float = 0.05, high: float = 0.95) -> xr.Dataset:
    """One at a time: each parameter at its `low` and `high` quantiles, the others at their medians.
    Returns base, low, high and swing = |high - low| over (output, parameter); 2 D + 1 model runs."""
    d = len(names)
    u = np.full((2 * d + 1, d), 0.5)
    for j in range(d):
        u[1 + 2 * j, j], u[2 + 2 * j, j] = low, high
    ds = model(u).drop_vars("draw", errors="ignore")
    outputs = xr.DataArray(list(ds.data_vars), dims="output")

    def by_output(part: xr.Dataset) -> xr.DataArray:
        return xr.concat([part[name] for name in ds.data_vars], dim=outputs)

    out = xr.Dataset(
        {
            "base": by_output(ds.isel(draw=0, drop=True)),
            "low": by_output(ds.isel(draw=slice(1, None, 2))).rename(draw="parameter"),
            "high": by_output(ds.isel(draw=slice(2, None, 2))).rename(draw="parameter"),
        }
    ).assign_coords(parameter=list(names))
    out["swing"] = abs(out["high"] - out["low"])
    return out.assign_attrs(method="tornado", low_quantile=low, high_quantile=high, model_runs=len(u))


def ranked(res: xr.Dataset, output: str) -> list[str]:
    """Parameters by importance for one output: total index (Sobol'), mu_star (Morris) or swing
    (tornado), largest first, taken at the point of the other dimensions where it is largest."""
    key = {"sobol": "ST", "morris": "mu_star", "tornado": "swing"}[res.attrs["method"]]
    da = res[key].sel(output=output)
    other = [dim for dim in da.dims if dim != "parameter"]
    score = da.max(other) if other else da
    order = np.argsort(-np.nan_to_num(score.values, nan=-np.inf), kind="stable")
    return [str(res["parameter"].values[i]) for i in order]


def with_rank(res: xr.Dataset) -> xr.Dataset:
    """res with `rank` over (output, parameter): 1 for the parameter that `ranked` puts first for
    that output (the order of the printed tables), so a saved file sorted by it reads as the screen."""
    params = [str(p) for p in res["parameter"].values]
    ranks = [[0] * len(params) for _ in res["output"].values]
    for i, output in enumerate(map(str, res["output"].values)):
        for r, name in enumerate(ranked(res, output), start=1):
            ranks[i][params.index(name)] = r
    rank = xr.DataArray(np.array(ranks, dtype=np.int64), dims=("output", "parameter"))
    return res.assign(rank=rank.assign_attrs(long_name="rank by importance for the output (1: first)"))
