"""ewaste's cohort engine reproduces flodym 1.1.0 (the peer library) to 1e-9 relative.

Every lifetime type the two share (Fixed, Normal, FoldedNormal, LogNormal, Weibull), both age
conventions (flodym's inflow_at "end" and "middle"), inflow- and stock-driven, cohort-invariant
and cohort-varying parameters. ewaste runs with negative_inflow="allow", flodym's behaviour.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_engine
from numpy.testing import assert_allclose

flodym = pytest.importorskip("flodym")

YEARS = list(range(2000, 2031))
N = len(YEARS)
SCENARIOS = ["a", "b", "c"]

FLODYM_CLASS = {
    "fixed": "FixedLifetime",
    "normal": "NormalLifetime",
    "foldednormal": "FoldedNormalLifetime",
    "lognormal": "LogNormalLifetime",
    "weibull": "WeibullLifetime",
}
# ewaste parameter name -> flodym parameter name
FLODYM_PARAM = {"mean": "mean", "std": "std", "shape": "weibull_shape", "scale": "weibull_scale"}

# one value per scenario (three scenarios)
PARAMS = {
    "fixed": {"mean": [2.7, 4.0, 6.3]},
    "normal": {"mean": [3.0, 5.0, 8.0], "std": [1.0, 2.0, 3.0]},
    "foldednormal": {"mean": [2.0, 4.0, 6.0], "std": [2.0, 1.5, 3.0]},
    "lognormal": {"mean": [3.0, 5.0, 8.0], "std": [1.5, 2.0, 4.0]},
    "weibull": {"shape": [1.2, 2.5, 4.0], "scale": [3.0, 5.0, 8.0]},
}

pytestmark = pytest.mark.usefixtures("each_engine")  # every test on both engines


def _dims(items=YEARS):
    return flodym.DimensionSet(
        dim_list=[
            flodym.Dimension(name="Time", letter="t", items=list(items)),
            flodym.Dimension(name="Scenario", letter="s", items=SCENARIOS),
        ]
    )


def run_flodym(kind, params, series, stock_driven, inflow_at, items=YEARS):
    """flodym's dynamic stock model; returns (inflow, stock, outflow) as (N, S) arrays."""
    dims = _dims(items)
    lifetime = getattr(flodym, FLODYM_CLASS[kind])(
        dims=dims,
        time_letter="t",
        inflow_at=inflow_at,
        **{FLODYM_PARAM[k]: np.broadcast_to(np.asarray(v, float), dims.shape).copy() for k, v in params.items()},
    )
    values = flodym.StockArray(dims=dims, values=np.asarray(series, float).copy())
    if stock_driven:
        dsm = flodym.StockDrivenDSM(dims=dims, stock=values, lifetime_model=lifetime)
    else:
        dsm = flodym.InflowDrivenDSM(dims=dims, inflow=values, lifetime_model=lifetime)
    dsm.compute()
    stock = dsm.get_stock_by_cohort().sum(axis=1)
    return dsm.inflow.values.copy(), stock, dsm.outflow.values.copy()


def run_ewaste(kind, params, series, stock_driven, inflow_at, dt=1.0):
    p = {k: np.atleast_2d(np.asarray(v, float)) for k, v in params.items()}
    f = run_engine(kind, p, series, stock_driven=stock_driven, convention=inflow_at, dt=dt, negative_inflow="allow")
    return f.inflow, f.stock, f.outflow, f


def assert_same(ours, theirs):
    scale = max(np.abs(a).max() for a in theirs)
    for name, a, b in zip(("inflow", "stock", "outflow"), ours, theirs, strict=True):
        assert_allclose(a, b, rtol=1e-9, atol=1e-9 * scale, err_msg=name)


def random_inflow(seed):
    return np.random.default_rng(seed).uniform(0.0, 100.0, (N, len(SCENARIOS)))


def growing_stock(seed):
    """A stock that never shrinks, so the stock-driven inflow stays non-negative."""
    rng = np.random.default_rng(seed)
    return 50.0 + np.cumsum(rng.uniform(0.5, 20.0, (N, len(SCENARIOS))), axis=0)


@pytest.mark.parametrize("inflow_at", ["end", "middle"])
@pytest.mark.parametrize("kind", list(FLODYM_CLASS))
def test_inflow_driven_matches_flodym(kind, inflow_at):
    series = random_inflow(1)
    theirs = run_flodym(kind, PARAMS[kind], series, False, inflow_at)
    ours = run_ewaste(kind, PARAMS[kind], series, False, inflow_at)[:3]
    assert_same(ours, theirs)


@pytest.mark.parametrize("inflow_at", ["end", "middle"])
@pytest.mark.parametrize("kind", list(FLODYM_CLASS))
def test_stock_driven_matches_flodym(kind, inflow_at):
    series = growing_stock(2)
    theirs = run_flodym(kind, PARAMS[kind], series, True, inflow_at)
    ours_i, ours_s, ours_o, f = run_ewaste(kind, PARAMS[kind], series, True, inflow_at)
    assert (theirs[0] >= 0).all()
    assert int(f.negative_inflow_steps.max()) == 0
    assert_same((ours_i, ours_s, ours_o), theirs)
    assert_allclose(ours_s, series, rtol=1e-9)


def cohort_varying(kind):
    """Parameters that change with the cohort: (N, S) arrays, trending over time."""
    trend = 1.0 + 0.03 * np.arange(N)[:, None]  # +3 % per cohort year
    out = {}
    for k, v in PARAMS[kind].items():
        v = np.asarray(v, float)[None, :]
        out[k] = v * trend if k != "shape" else v * (1.0 + 0.01 * np.arange(N)[:, None])
    return out


@pytest.mark.parametrize("stock_driven", [False, True])
@pytest.mark.parametrize("inflow_at", ["end", "middle"])
@pytest.mark.parametrize("kind", list(FLODYM_CLASS))
def test_cohort_varying_parameters_match_flodym(kind, inflow_at, stock_driven):
    params = cohort_varying(kind)
    series = growing_stock(3) if stock_driven else random_inflow(4)
    theirs = run_flodym(kind, params, series, stock_driven, inflow_at)
    ours = run_ewaste(kind, params, series, stock_driven, inflow_at)[:3]
    assert_same(ours, theirs)


@pytest.mark.parametrize("inflow_at", ["end", "middle"])
@pytest.mark.parametrize("kind", list(FLODYM_CLASS))
def test_negative_inflow_allowed_as_flodym_does(kind, inflow_at):
    # an installed base that falls sharply mid-way: the stock-driven inflow comes out negative
    t = np.arange(N)[:, None]
    series = 1000.0 + 600.0 * np.sin(t / 3.0 + np.array([0.0, 1.0, 2.0])) + 20.0 * t
    theirs = run_flodym(kind, PARAMS[kind], series, True, inflow_at)
    ours_i, ours_s, ours_o, f = run_ewaste(kind, PARAMS[kind], series, True, inflow_at)
    n_negative = (theirs[0] < 0).sum(axis=0)
    assert n_negative.sum() > 0  # the case does exercise negative inflow
    assert_same((ours_i, ours_s, ours_o), theirs)
    np.testing.assert_array_equal(f.negative_inflow_steps, n_negative)


def test_cohort_varying_single_scenario_mean_over_time():
    # the mean lifetime as a plain array over time (shape (N,)) in flodym, (N, 1) in ewaste
    mean = np.linspace(2.0, 6.0, N)
    std = 0.3 * mean
    dims = flodym.DimensionSet(dim_list=[flodym.Dimension(name="Time", letter="t", items=YEARS)])
    lifetime = flodym.NormalLifetime(dims=dims, time_letter="t", inflow_at="middle", mean=mean, std=std)
    stock = growing_stock(5)[:, 0]
    dsm = flodym.StockDrivenDSM(
        dims=dims, stock=flodym.StockArray(dims=dims, values=stock.copy()), lifetime_model=lifetime
    )
    dsm.compute()
    f = run_engine(
        "normal",
        {"mean": mean[:, None], "std": std[:, None]},
        stock,
        stock_driven=True,
        convention="middle",
        negative_inflow="allow",
    )
    scale = np.abs(stock).max()
    assert_allclose(f.inflow[:, 0], dsm.inflow.values, rtol=1e-9, atol=1e-9 * scale)
    assert_allclose(f.outflow[:, 0], dsm.outflow.values, rtol=1e-9, atol=1e-9 * scale)


@pytest.mark.parametrize("inflow_at", ["end", "middle"])
def test_quarterly_steps_match_flodym(inflow_at):
    # flodym with a quarterly time axis takes and returns flows as annual rates; its stock is
    # rate x interval length. ewaste works in flows per step: per-step = rate x 0.25.
    items = [2020 + q / 4 for q in range(40)]
    params = {"shape": [1.5, 2.0, 3.0], "scale": [1.5, 3.0, 4.0]}
    rate = np.random.default_rng(6).uniform(0.0, 400.0, (40, 3))
    dims = _dims(items)
    lifetime = flodym.WeibullLifetime(
        dims=dims,
        time_letter="t",
        inflow_at=inflow_at,
        weibull_shape=np.array(params["shape"]),
        weibull_scale=np.array(params["scale"]),
    )
    dsm = flodym.InflowDrivenDSM(
        dims=dims, inflow=flodym.StockArray(dims=dims, values=rate.copy()), lifetime_model=lifetime
    )
    dsm.compute()
    p = {k: np.atleast_2d(np.asarray(v, float)) for k, v in params.items()}
    f = run_engine("weibull", p, rate * 0.25, convention=inflow_at, dt=0.25)
    scale = np.abs(dsm.stock.values).max()
    assert_allclose(f.stock, dsm.stock.values, rtol=1e-9, atol=1e-9 * scale)
    assert_allclose(f.outflow, dsm.outflow.values * 0.25, rtol=1e-9, atol=1e-9 * scale)
