"""Uncertain parameters: distributions (closed-form moments), samplers (stratification, seeds) and
rank correlations (Spearman's rho of the draws)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from ewaste.errors import InputError
from ewaste.inputs.distributions import check_range, parse_distribution
from ewaste.inputs.sampling import Design, draw, parse_design, uniforms


def dist(**spec):
    return parse_distribution(spec, "s.toml", "fleets.a.mass")


@pytest.mark.parametrize(
    ("spec", "mean", "var"),
    [
        ({"dist": "normal", "mean": 5.0, "std": 2.0}, 5.0, 4.0),
        ({"dist": "lognormal", "mean": 5.0, "std": 2.0}, 5.0, 4.0),  # the variable's own mean and std
        ({"dist": "uniform", "min": 2.0, "max": 8.0}, 5.0, 36.0 / 12),
        ({"dist": "triangular", "min": 1.0, "mode": 2.0, "max": 6.0}, 3.0, (1 + 4 + 36 - 2 - 6 - 12) / 18),
        # PERT: mean (min + 4 mode + max) / 6; variance (mean - min)(max - mean) / 7
        ({"dist": "pert", "min": 1.0, "mode": 2.0, "max": 9.0}, 3.0, 2.0 * 6.0 / 7.0),
        ({"dist": "choice", "values": [1.0, 4.0], "weights": [0.25, 0.75]}, 3.25, 0.25 * 0.75 * 9.0),
    ],
)
def test_distributions_have_their_closed_form_moments(spec, mean, var):
    d = dist(**spec)
    u = uniforms(Design(200_000, 3, "lhs"), 1)[:, 0]
    x = d.ppf(u)
    assert x.mean() == pytest.approx(mean, rel=2e-3)
    assert x.var() == pytest.approx(var, rel=2e-2)


def test_truncated_normal_stays_in_its_bounds_with_scipys_moments():
    d = dist(dist="truncnormal", mean=1.0, std=2.0, min=0.0, max=3.0)
    x = d.ppf(uniforms(Design(100_000, 1, "lhs"), 1)[:, 0])
    assert x.min() >= 0.0 and x.max() <= 3.0
    want = scipy.stats.truncnorm(-0.5, 1.0, loc=1.0, scale=2.0).mean()
    assert x.mean() == pytest.approx(want, rel=2e-3)


@pytest.mark.parametrize(
    "spec",
    [
        {"dist": "pert", "min": 70, "mode": 155, "max": 7250},  # skewed: alpha 1.05, beta 4.95
        {"dist": "pert", "min": 0.0, "mode": 1.0, "max": 1.0},  # the mode at the maximum
        {"dist": "truncnormal", "mean": 0.5, "std": 0.2, "min": 0.3, "max": 1.5},
        {"dist": "truncnormal", "mean": 50.0, "std": 1.0, "min": 0.0, "max": 1.0},  # a far tail
        {"dist": "pert", "min": 1e6, "mode": 1e6 + 10, "max": 1e6 + 100},  # narrow beside its location
        {"dist": "truncnormal", "mean": 100.0, "std": 0.001, "min": 99.0, "max": 101.0},  # +/- 1000 std
    ],
)
def test_many_draws_of_slow_quantile_functions_are_exact_to_their_u_resolution(spec):
    from ewaste.inputs import distributions

    dist = parse_distribution(spec, "t.toml", "x")
    u = np.concatenate([np.random.default_rng(3).random(distributions.FAST_ABOVE), [1e-9, 0.5, 1 - 1e-9]])
    fast = dist.ppf(u)  # above FAST_ABOVE draws: the interpolated inverse
    assert np.abs(dist.frozen.cdf(fast) - u).max() < 1e-11
    lo, hi = dist.frozen.support()
    assert fast.min() >= lo and fast.max() <= hi
    exact = np.concatenate([dist.ppf(part) for part in np.array_split(u, 4)])  # below it: scipy's ppf
    np.testing.assert_allclose(fast, exact, rtol=0, atol=1e-6 * (hi - lo))


def test_latin_hypercube_puts_one_draw_in_each_stratum_and_repeats_from_its_seed():
    u = uniforms(Design(1000, 7, "lhs"), 3)
    for j in range(3):
        assert sorted(np.floor(u[:, j] * 1000).astype(int)) == list(range(1000))
    assert np.array_equal(u, uniforms(Design(1000, 7, "lhs"), 3))
    assert not np.array_equal(u, uniforms(Design(1000, 8, "lhs"), 3))


def test_sobol_sequence_is_balanced():
    u = uniforms(Design(1024, 1, "sobol"), 2)
    counts = np.histogram(u[:, 0], bins=16, range=(0, 1))[0]
    assert (counts == 64).all()  # a scrambled Sobol' sequence of 2^k points fills each of 2^m bins equally


def test_rank_correlation_of_the_draws():
    a = dist(dist="lognormal", mean=3.0, std=1.0)
    b = parse_distribution({"dist": "uniform", "min": 0.0, "max": 1.0}, "s.toml", "fleets.a.power")
    design = Design(20_000, 5, "lhs", (("fleets.a.mass", "fleets.a.power", 0.6),))
    x = draw([a, b], design, "s.toml")
    rho = scipy.stats.spearmanr(x["fleets.a.mass"], x["fleets.a.power"]).statistic
    assert rho == pytest.approx(0.6, abs=0.02)
    # the marginals are untouched
    assert x["fleets.a.mass"].mean() == pytest.approx(3.0, rel=5e-3)
    assert scipy.stats.kstest(x["fleets.a.power"], "uniform").pvalue > 1e-3


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"dist": "normal", "mean": 1.0, "std": -1.0}, "fleets.a.mass.std"),
        ({"dist": "uniform", "min": 3.0, "max": 1.0}, "fleets.a.mass.max"),
        ({"dist": "pert", "min": 1.0, "mode": 5.0, "max": 3.0}, "fleets.a.mass.mode"),
        ({"dist": "choice", "values": [1, 2], "weights": [0.5, 0.6]}, "fleets.a.mass.weights"),
        ({"dist": "choice", "values": [1, 2], "weights": [1.2, -0.2]}, "fleets.a.mass.weights[1]"),  # sums to 1
        ({"dist": "gamma", "mean": 1.0}, "fleets.a.mass.dist"),
        ({"dist": "normal", "mean": 1.0}, "fleets.a.mass"),
    ],
)
def test_impossible_distributions_are_refused_naming_the_field(spec, field):
    with pytest.raises(InputError) as err:
        dist(**spec)
    assert err.value.source == "s.toml" and err.value.field == field


def test_a_distribution_leaving_the_valid_range_is_refused_not_truncated():
    wide = dist(dist="normal", mean=1.0, std=0.5)  # 2.3 % below 0
    with pytest.raises(InputError, match="outside the valid range"):
        check_range(wide, 1.0, 0.0, 1e5, "kg", "s.toml")
    check_range(dist(dist="normal", mean=10.0, std=1.0), 1.0, 0.0, 1e5, "kg", "s.toml")  # 1e-23 below 0


def test_a_design_takes_its_documented_defaults():
    assert parse_design({}, "t.toml") == Design(1000, 0, "lhs")  # docs/uncertainty.md
    assert parse_design({"seed": 3}, "t.toml") == Design(1000, 3, "lhs")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"draws": 0}, "uncertainty.draws"),
        ({"draws": 100, "sampler": "halton"}, "uncertainty.sampler"),
        ({"draws": 100, "sampler": "sobol"}, "uncertainty.draws"),
        ({"draws": 10, "correlations": [{"between": ["a"], "rank": 0.5}]}, "uncertainty.correlations[0].between"),
        ({"draws": 10, "correlations": [{"between": ["a", "b"], "rank": 1.0}]}, "uncertainty.correlations[0].rank"),
        ({"draws": 10, "samples": 3}, "uncertainty.samples"),
        (
            {"correlations": [{"between": ["a", "b"], "rank": 0.5}, {"between": ["b", "a"], "rank": -0.5}]},
            "uncertainty.correlations[1].between",
        ),
    ],
)
def test_bad_designs_are_refused(raw, field):
    with pytest.raises(InputError) as err:
        parse_design(raw, "s.toml")
    assert err.value.field == field


def test_contradictory_correlations_are_refused():
    ds = [dist(dist="uniform", min=0.0, max=1.0)]
    ds += [parse_distribution({"dist": "uniform", "min": 0.0, "max": 1.0}, "s.toml", p) for p in ("b", "c")]
    pairs = (("fleets.a.mass", "b", 0.9), ("fleets.a.mass", "c", 0.9), ("b", "c", -0.9))
    with pytest.raises(InputError, match="not positive semi-definite"):
        draw(ds, Design(100, 1, "lhs", pairs), "s.toml")
