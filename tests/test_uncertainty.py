"""Uncertain parameters end to end: draws in the grid, quantiles of results against closed forms,
reproducibility across backends and chunkings, single draws re-run, and bad input."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.stats
import xarray as xr

import ewaste
from ewaste.analysis.uncertainty import quantiles
from ewaste.engine import host
from ewaste.errors import InputError
from ewaste.inputs.scenario import scenario_to_grid
from ewaste.inputs.validate import validate

# 1000 units retired every year (fixed 1-year life, inflow-driven): e-waste = 1000 x mass (kg -> t)
LINEAR = {
    "scenario": {"start_year": 2020, "end_year": 2024, "age_convention": "end"},
    "fleets": {
        "s": {
            "driver": "inflow",
            "inflow": 1000,
            "lifetime": {"type": "fixed", "mean": 1},
            "mass": {"dist": "uniform", "min": 100, "max": 140},
            "power": {"dist": "triangular", "min": 5, "mode": 10, "max": 12},
        }
    },
    "energy": {"pue": 1.0},
    "uncertainty": {"draws": 1000, "seed": 11, "sampler": "lhs"},
}


def grid_of(raw: dict, name: str = "u.toml") -> xr.Dataset:
    return validate(scenario_to_grid(copy.deepcopy(raw), name), name)


@pytest.fixture(scope="module")
def linear():
    return ewaste.evaluate(grid_of(LINEAR), backend="numpy", summary=True)


def test_draws_form_a_dimension_and_carry_their_design(linear):
    assert linear.sizes["draw"] == 1000
    design = json.loads(linear.attrs["uncertainty"])
    assert (design["draws"], design["seed"], design["sampler"]) == (1000, 11, "lhs")
    assert design["parameters"]["fleets.s.mass"] == {"dist": "uniform", "min": 100, "max": 140}
    assert linear["drawn_mass"].sizes["draw"] == 1000


def test_quantiles_of_a_linear_figure_are_those_of_its_input(linear):
    """E-waste in 2024 = 1000 units x mass: its p5 / p50 / p95 are 1000 x those of uniform(100, 140)
    kg, within the Latin hypercube's resolution (1 / 1000 of the range)."""
    q = quantiles(linear)["ewaste_generated_target"].sel(fleet="s")
    want = [scipy.stats.uniform(100, 40).ppf(p) for p in (0.05, 0.5, 0.95)]
    assert np.allclose(q.values, want, atol=40 / 1000 + 1e-9)
    assert float(quantiles(linear)["ewaste_generated_target_mean"].sel(fleet="s")) == pytest.approx(120.0, abs=0.05)


def test_energy_range_is_that_of_power(linear):
    """Energy in 2024 = 1000 units in service all year ('end': bought at the end of 2023) x power x
    8760 h: its median is 1000 x the triangular median x 8760 x 1e-9 TWh."""
    median = scipy.stats.triang(5 / 7, loc=5, scale=7).ppf(0.5)
    got = float(quantiles(linear, [0.5])["energy_target"].sel(fleet="s", quantile=0.5))
    assert got == pytest.approx(1000 * median * 8760 * 1e-9, rel=2e-3)


def test_the_same_seed_gives_the_same_results_on_every_backend_and_chunking():
    grid = grid_of(LINEAR)
    a = ewaste.evaluate(grid, backend="numpy", summary=True)
    again = ewaste.evaluate(grid_of(LINEAR), backend="numpy", summary=True)
    xr.testing.assert_identical(a.drop_attrs(), again.drop_attrs())
    if host.status()[0]:
        b = ewaste.evaluate(grid, backend="cpu", summary=True)
        np.testing.assert_allclose(b["ewaste_generated_target"], a["ewaste_generated_target"], rtol=1e-12)
    from ewaste import scale

    lazy = scale.evaluate_lazy(grid, {"draw": 137}, backend="numpy", summary=True).compute()
    np.testing.assert_array_equal(lazy["energy_target"].values, a["energy_target"].values)
    other = copy.deepcopy(LINEAR)
    other["uncertainty"]["seed"] = 12
    assert not np.array_equal(grid_of(other)["mass"].values, grid["mass"].values)


def test_a_single_draw_re_runs_to_its_own_results(linear):
    grid = grid_of(LINEAR)
    k = 417
    one = ewaste.evaluate(grid.isel(draw=k), backend="numpy", summary=True)
    assert float(one["ewaste_generated_target"].sel(fleet="s")) == float(
        linear["ewaste_generated_target"].sel(fleet="s").isel(draw=k)
    )
    assert float(linear["drawn_mass"].sel(fleet="s").isel(draw=k)) == float(grid["mass"].sel(fleet="s")[k])


def test_a_single_draw_prints_as_one_scenario(linear):
    """`--draw N` results: named as that draw of the design, one value column, no range; the value is
    that draw's."""
    from ewaste.outputs.summary import summarise

    k = 417
    text = summarise(ewaste.evaluate(grid_of(LINEAR).isel(draw=[k]), backend="numpy", summary=True))
    assert f"draw {k} of 1,000 alone" in text and "Uncertainty range" not in text and "p50" not in text
    generated = float(linear["ewaste_generated_target"].sel(fleet="s").isel(draw=k))  # t/yr
    shown = text.split("generated")[1].split()[:2]
    assert shown[1] == "t/yr" and float(shown[0]) == pytest.approx(generated, rel=5e-3)


def test_a_factor_scales_a_series_and_correlates_with_another_parameter():
    raw = copy.deepcopy(LINEAR)
    fleet = raw["fleets"]["s"]
    fleet["inflow"] = {"2020": 1000, "2024": 2000, "factor": {"dist": "lognormal", "mean": 1.0, "std": 0.25}}
    raw["uncertainty"]["correlations"] = [{"between": ["fleets.s.inflow.factor", "fleets.s.mass"], "rank": 0.7}]
    grid = grid_of(raw)
    factor = grid["inflow"].sel(fleet="s").isel(time=0).values / 1000.0
    assert factor.mean() == pytest.approx(1.0, rel=5e-3)
    assert np.std(factor) == pytest.approx(0.25, rel=3e-2)
    ratio = grid["inflow"].sel(fleet="s").isel(time=-1) / grid["inflow"].sel(fleet="s").isel(time=0)
    np.testing.assert_allclose(ratio.values, 2.0, rtol=1e-12)  # the whole series, scaled by one factor
    rho = scipy.stats.spearmanr(factor, grid["mass"].sel(fleet="s").values).statistic
    assert rho == pytest.approx(0.7, abs=0.04)


def test_choice_and_sweep_side_by_side():
    raw = copy.deepcopy(LINEAR)
    raw["recycling"] = {"collection_rate": {"dist": "choice", "values": [0.2, 0.5], "weights": [0.25, 0.75]}}
    raw["fleets"]["s"]["lifetime"] = {"type": "fixed", "mean": [1, 2]}  # a sweep beside the draws
    grid = grid_of(raw)
    assert grid.sizes["draw"] == 1000 and grid.sizes["s_lifetime_mean"] == 2
    rates = grid["collection_rate"].values
    assert set(np.unique(rates)) == {0.2, 0.5}
    assert (rates == 0.5).mean() == pytest.approx(0.75, abs=1e-3)


def test_draws_beside_a_small_sweep_print_a_table_per_point():
    """A sweep of the PUE beside the draws: a table per sweep point, energy's p50 scaled by the PUE
    (energy is linear in it) and e-waste, which the PUE leaves alone, the same in both."""
    import io

    from rich.console import Console

    from ewaste.outputs.summary import renderables

    raw = copy.deepcopy(LINEAR)
    raw["energy"] = {"pue": [1.0, 1.5]}
    res = ewaste.evaluate(grid_of(raw), backend="numpy", summary=True)
    out = io.StringIO()
    Console(file=out, width=200).print(renderables(res))
    tables = out.getvalue().split("energy_pue=")[1:]
    assert [t.split()[0] for t in tables] == ["1.0", "1.5"]
    median = scipy.stats.triang(5 / 7, loc=5, scale=7).ppf(0.5)  # kW
    energy = quantiles(res, [0.5])["energy_target"].sel(fleet="s", quantile=0.5)
    assert float(energy.sel(energy_pue=1.5)) / float(energy.sel(energy_pue=1.0)) == pytest.approx(1.5, rel=1e-12)
    assert float(energy.sel(energy_pue=1.0)) == pytest.approx(1000 * median * 8760 * 1e-9, rel=2e-3)
    generated = [t.split("generated")[1].split()[:3] for t in tables]
    assert generated[0] == generated[1]
    saved = io.StringIO()  # the same tables from the quantiles a --summary file keeps
    Console(file=saved, width=200).print(renderables(quantiles(res)))
    assert saved.getvalue().split("energy_pue=")[1:] == tables


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"mass": {"dist": "normal", "mean": 120, "std": -1}}, "fleets.s.mass.std"),
        ({"mass": {"dist": "beta", "a": 1}}, "fleets.s.mass.dist"),
        ({"mass": {"dist": "normal", "mean": 50, "std": 40}}, "fleets.s.mass"),  # 11 % below zero
        ({"mass": [{"dist": "uniform", "min": 1, "max": 2}, 3]}, "fleets.s.mass[0]"),
    ],
)
def test_bad_distributions_are_refused_naming_the_field(change, field):
    raw = copy.deepcopy(LINEAR)
    raw["fleets"]["s"].update(change)
    with pytest.raises(InputError) as err:
        grid_of(raw)
    assert err.value.field == field


def test_bad_input_on_the_command_line_is_one_line_and_writes_nothing(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(
        "[fleets.s]\ndriver = 'inflow'\ninflow = 100\nlifetime = { type = 'fixed', mean = 2 }\n"
        "mass = { dist = 'pert', min = 1, mode = 9, max = 3 }\n[uncertainty]\ndraws = 10\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "ewaste.cli", "run", str(path), "-o", str(tmp_path / "r.nc")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == f"ewaste: error: {path}: fleets.s.mass.mode: mode 9 lies outside [min, max]"
    assert not (tmp_path / "r.nc").exists()


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["default", "--every-draw"], "--every-draw"),  # without --summary every draw is kept anyway
        (["default", "--summary", "--every-draw", "--out", "r.zarr"], "--every-draw"),
        (["refresh-cycle", "--quantiles", "0.1,0.9"], "refresh-cycle.toml: --quantiles"),  # no draws
        (["default", "--draw", "3", "--quantiles", "0.1,0.9"], "default.toml: --quantiles"),  # one draw
        (["refresh-cycle", "--summary", "--every-draw", "--out", "r.nc"], "refresh-cycle.toml: --every-draw"),
    ],
)
def test_options_about_draws_that_would_do_nothing_are_refused(tmp_path, args, field):
    args = [str(tmp_path / a) if a.endswith((".zarr", ".nc")) else a for a in args]
    out = subprocess.run([sys.executable, "-m", "ewaste.cli", "run", *args], capture_output=True, text=True)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and field in out.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("interpolation", ["linear", "log"])
def test_a_drawn_key_of_a_series_is_interpolated_draw_by_draw(interpolation):
    """stock = { 2020 = 1000, 2030 = uniform(2000, 4000) }: at the end of 2025 (the midpoint of the
    keys' end-of-year points) each draw is the arithmetic (linear) or geometric (log) mean of 1000
    and its own 2030 value."""
    raw = copy.deepcopy(LINEAR)
    fleet = raw["fleets"]["s"]
    fleet["driver"] = "stock"
    fleet.pop("inflow")
    fleet["stock"] = {"2020": 1000, "2030": {"dist": "uniform", "min": 2000, "max": 4000}}
    fleet["stock"]["interpolation"] = interpolation
    raw["scenario"]["end_year"] = 2030
    grid = grid_of(raw)
    stock = grid["stock"].sel(fleet="s")
    last = stock.sel(time=2030.0).values
    assert last.min() >= 2000 and last.max() <= 4000 and np.ptp(last) > 1900
    mid = stock.sel(time=2025.0).values
    want = (1000 + last) / 2 if interpolation == "linear" else np.sqrt(1000 * last)
    np.testing.assert_allclose(mid, want, rtol=1e-12)
    np.testing.assert_allclose(stock.sel(time=2020.0).values, 1000.0)


def test_scenarios_show_gives_each_distribution_with_its_quantiles():
    from ewaste.outputs.show import describe_scenario

    text = describe_scenario(grid_of(LINEAR))
    assert "dimension draw: 1,000 draws (lhs, seed 11)" in text
    # uniform(100, 140): p5 = 102, p50 = 120, p95 = 138 (closed form)
    assert "fleets.s.mass: uniform(min 100, max 140); p5 / p50 / p95 102 / 120 / 138" in text
    # triangular(5, 10, 12): F(10) = 5/7, so p50 = 5 + sqrt(0.5 * 7 * 5) (closed form)
    assert f"/ {5 + np.sqrt(17.5):.4g} /" in text.split("fleets.s.power:")[1].splitlines()[0]
    assert "0, 1, 2" not in text  # draws are not listed one by one


@pytest.mark.parametrize("n", [1, 2, 3, 10, 1001])
@pytest.mark.parametrize("kind", ["lognormal", "integers", "ties"])
def test_lane_statistics_are_numpys_quantiles_and_mean(n, kind):
    """The nested partitions give numpy.quantile's numbers to the last bit (ties, q = 0 and 1, adjacent
    and repeated quantiles, integers), and the mean numpy.mean's."""
    from ewaste.analysis.uncertainty import lane_statistics

    rng = np.random.default_rng(n)
    x = {
        "lognormal": rng.lognormal(size=n),
        "integers": rng.integers(0, 5, size=n),
        "ties": np.round(rng.normal(size=n), 1),
    }[kind]
    for q in [(0.05, 0.5, 0.95), (0.0, 1.0), (0.5,), (0.25, 0.26, 0.27, 0.999), (0.5, 0.5)]:
        got, mean = lane_statistics(x, q)
        assert np.array_equal(got, np.quantile(x, q)), q
        assert mean == np.mean(x)
    x = x.astype(float)
    x[n // 2] = np.nan
    assert np.isnan(lane_statistics(x, (0.5,))[0]).all()


def test_quantiles_of_many_draws_are_xarrays(monkeypatch):
    """At and above LANE_DRAWS the reduction runs lane by lane: the same Dataset as xarray's quantile
    and mean over `draw` (draw first, in the middle and last; integers), the quantiles bitwise."""
    from ewaste.analysis import uncertainty

    monkeypatch.setattr(uncertainty, "LANE_DRAWS", 50)
    rng = np.random.default_rng(5)
    results = xr.Dataset(
        {
            "a": (("fleet", "draw"), rng.lognormal(size=(2, 301))),
            "b": (("fleet", "draw", "metal"), rng.normal(size=(2, 301, 3)), {"units": "t"}),
            "c": (("draw", "fleet"), rng.integers(0, 9, size=(301, 2))),
            "fixed": (("fleet",), [1.0, 2.0]),
        },
        coords={"fleet": ["x", "y"], "metal": ["Au", "Ag", "Pd"], "draw": np.arange(301), "energy_pue": 1.2},
    )
    got = quantiles(results, (0.05, 0.5, 0.95))
    for name in ("a", "b", "c"):  # each variable as xarray reduces it (a scalar coordinate: kept by the mean)
        q, mean = uncertainty.over_draws(results[name], (0.05, 0.5, 0.95))
        want = results[name].quantile([0.05, 0.5, 0.95], dim="draw", skipna=False)
        xr.testing.assert_identical(q, want.assign_attrs(results[name].attrs))
        xr.testing.assert_allclose(mean, results[name].mean("draw"), rtol=1e-15)
        assert set(mean.coords) == set(results[name].mean("draw").coords) and mean.attrs == results[name].attrs
        np.testing.assert_array_equal(got[name].values, want.values)  # and in the Dataset of all of them
        np.testing.assert_array_equal(got[f"{name}_mean"].values, mean.values)
    xr.testing.assert_identical(got["fixed"], results["fixed"])
