"""Global sensitivity against analytic values: Sobol' indices of the Ishigami function, Morris and
tornado on linear functions, and on scenarios a parameter that cannot matter (0) or acts alone (1)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from ewaste.analysis import experiments
from ewaste.analysis.experiments import ScenarioModel
from ewaste.analysis.sensitivity import morris, ranked, sobol, tornado
from ewaste.errors import InputError

# Ishigami and Homma (1990), a = 7, b = 0.1, x uniform on [-pi, pi]^3: V = a^2/8 + b pi^4/5 + b^2 pi^8/18 + 1/2
A, B = 7.0, 0.1
V = A**2 / 8 + B * np.pi**4 / 5 + B**2 * np.pi**8 / 18 + 0.5
V1 = 0.5 * (1 + B * np.pi**4 / 5) ** 2
V2 = A**2 / 8
V13 = B**2 * np.pi**8 / 18 - B**2 * np.pi**8 / 50
S1 = [V1 / V, V2 / V, 0.0]
ST = [(V1 + V13) / V, V2 / V, V13 / V]


def ishigami(u: np.ndarray) -> xr.Dataset:
    x = -np.pi + 2 * np.pi * u
    y = np.sin(x[:, 0]) + A * np.sin(x[:, 1]) ** 2 + B * x[:, 2] ** 4 * np.sin(x[:, 0])
    return xr.Dataset({"y": ("draw", y)})


def test_sobol_indices_of_the_ishigami_function_match_the_analytic_values():
    res = sobol(["x1", "x2", "x3"], ishigami, n=4096, seed=3, conf=0.99).sel(output="y")
    for key, want in (("S1", S1), ("ST", ST)):
        got, conf = res[key].values, res[f"{key}_conf"].values
        assert np.all(np.abs(got - np.array(want)) <= conf), (key, got, want, conf)
    assert ranked(sobol(["x1", "x2", "x3"], ishigami, n=1024, seed=3), "y") == ["x1", "x2", "x3"]


def linear(u: np.ndarray) -> xr.Dataset:
    return xr.Dataset({"y": ("draw", 2.0 * u[:, 0] - 3.0 * u[:, 1] + 0.0 * u[:, 2])})


def test_the_same_seed_gives_the_same_intervals_seed_0_included():
    """The bootstrap intervals repeat from the seed (SALib's own analysis leaves seed 0 unseeded)."""
    for seed in (0, 3):
        a, b = (sobol(["x1", "x2", "x3"], ishigami, n=256, seed=seed) for _ in range(2))
        xr.testing.assert_identical(a, b)


def test_each_outputs_rank_is_the_order_of_its_table():
    """`rank` holds, per output, the order the printed table ranks the parameters in (Ishigami's
    total indices: x1 0.56, x2 0.44, x3 0.24)."""
    from ewaste.analysis.sensitivity import with_rank

    res = with_rank(sobol(["x1", "x2", "x3"], ishigami, n=1024, seed=3))
    assert res["rank"].sel(output="y").values.tolist() == [1, 2, 3]
    assert sorted(res["parameter"].values, key=lambda p: int(res["rank"].sel(output="y", parameter=p))) == ranked(
        res, "y"
    )


def test_morris_and_tornado_on_a_linear_function():
    """y = 2 u1 - 3 u2: Morris moves each u over 0.01..0.99, so mu* = 0.98 |coefficient|; the tornado
    moves it from 0.05 to 0.95: swing 0.9 |coefficient|; u3 does nothing."""
    m = morris(["u1", "u2", "u3"], linear, trajectories=20, seed=1).sel(output="y")
    np.testing.assert_allclose(m["mu_star"].values, [1.96, 2.94, 0.0], atol=1e-12)
    np.testing.assert_allclose(m["sigma"].values, 0.0, atol=1e-12)  # a linear function has no interactions
    t = tornado(["u1", "u2", "u3"], linear).sel(output="y")
    np.testing.assert_allclose(t["swing"].values, [1.8, 2.7, 0.0], atol=1e-12)
    np.testing.assert_allclose(t["base"].values, 2.0 * 0.5 - 3.0 * 0.5)


SCENARIO = """
[scenario]
start_year = 2020
end_year = 2026
age_convention = "end"

[fleets.s]
driver = "stock"
stock = {{ 2020 = 1000, 2026 = 3000, interpolation = "log" }}
lifetime = {{ type = "weibull", mean = {lifetime}, std = 1 }}
mass = {{ dist = "triangular", min = 100, mode = 130, max = 140 }}
power = 10

[recycling]
collection_rate = {{ dist = "uniform", min = 0.2, max = 0.8 }}
"""


def test_a_parameter_that_cannot_matter_has_total_index_zero(tmp_path):
    """The collection rate does not enter energy: its first-order and total indices are 0."""
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.format(lifetime='{ dist = "uniform", min = 2, max = 6 }'))
    model = ScenarioModel(path, outputs=["energy_target", "collected_target"], backend="numpy")
    res = sobol(model.names, model, n=256, seed=1)
    energy = res.sel(output="energy_target", parameter="recycling.collection_rate")
    assert float(energy["ST"]) == pytest.approx(0.0, abs=1e-12) and float(energy["S1"]) == pytest.approx(0.0, abs=1e-12)
    assert float(res["ST"].sel(output="energy_target", parameter="fleets.s.mass")) == pytest.approx(0.0, abs=1e-12)
    # what is collected depends on the collection rate: it moves it
    assert float(res["ST"].sel(output="collected_target", parameter="recycling.collection_rate")) > 0.1


def test_a_parameter_that_acts_alone_and_linearly_explains_everything(tmp_path):
    """Only the mass varies (the collection rate does not enter e-waste generated): e-waste is linear
    in it, so S1 = ST = 1 for the mass."""
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.format(lifetime="4"))
    model = ScenarioModel(path, outputs=["ewaste_generated_target"], backend="numpy")
    res = sobol(model.names, model, n=512, seed=2).sel(output="ewaste_generated_target", parameter="fleets.s.mass")
    assert float(res["S1"]) == pytest.approx(1.0, abs=0.05) and float(res["ST"]) == pytest.approx(1.0, abs=0.05)


def test_an_output_no_drawn_input_moves_has_zero_indices(tmp_path):
    """Only the mass is drawn: energy has no draw dimension at all, and every index of it is 0."""
    path = tmp_path / "mass.toml"
    path.write_text(SCENARIO.format(lifetime="4").replace('{ dist = "uniform", min = 0.2, max = 0.8 }', "0.5"))
    model = ScenarioModel(path, outputs=["energy_target", "ewaste_generated_target"], backend="numpy")
    res = sobol(model.names, model, n=64, seed=2)
    assert float(abs(res["ST"].sel(output="energy_target")).max()) == 0.0
    mass = res["ST"].sel(output="ewaste_generated_target", parameter="fleets.s.mass")
    assert float(mass) == pytest.approx(1, abs=0.05)


def test_chunked_evaluation_gives_the_same_indices(tmp_path, monkeypatch):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.format(lifetime='{ dist = "uniform", min = 2, max = 6 }'))
    model = ScenarioModel(path, outputs=["ewaste_generated_target"], backend="numpy", memory_limit=2 * 10**6)
    whole = sobol(model.names, model, n=64, seed=4)
    monkeypatch.setattr(experiments, "CHUNKED_ABOVE", 10)
    chunked = sobol(model.names, model, n=64, seed=4)
    np.testing.assert_allclose(chunked["ST"].values, whole["ST"].values, rtol=1e-12)
    monkeypatch.setattr(experiments, "BLOCK", 37)  # rows in blocks of a grid each, the last one short
    blocks = sobol(model.names, model, n=64, seed=4)
    np.testing.assert_allclose(blocks["ST"].values, whole["ST"].values, rtol=1e-12)


def test_nothing_to_vary_and_bad_sample_sizes_are_refused(tmp_path):
    path = tmp_path / "fixed.toml"
    fixed = SCENARIO.format(lifetime="4").replace('{ dist = "triangular", min = 100, mode = 130, max = 140 }', "130")
    path.write_text(fixed)
    path.write_text(path.read_text().replace('{ dist = "uniform", min = 0.2, max = 0.8 }', "0.5"))
    with pytest.raises(InputError, match="no parameter carries a distribution"):
        ScenarioModel(path)
    with pytest.raises(ValueError, match="power of 2"):
        sobol(["x1", "x2", "x3"], ishigami, n=1000)


def test_a_scenario_with_correlations_says_they_are_not_applied(tmp_path):
    """Sobol', Morris and the tornado vary the parameters independently: the tables say so."""
    from ewaste.outputs.sensitivity import sensitivity_text

    path = tmp_path / "c.toml"
    pair = '["fleets.s.mass", "recycling.collection_rate"]'
    corr = f"\n[uncertainty]\ncorrelations = [{{ between = {pair}, rank = 0.5 }}]\n"
    path.write_text(SCENARIO.format(lifetime="4") + corr)
    res = experiments.sensitivity(path, "tornado", outputs=["collected_target"], backend="numpy")
    assert res.attrs["correlations_not_applied"] == 1
    assert "1 rank correlation(s) are not applied here" in sensitivity_text(res)


def test_a_sweep_beside_the_draws_gives_indices_at_each_point(tmp_path):
    """A sweep of the PUE: e-waste, which the PUE leaves alone, has the same indices at both points;
    energy is proportional to the PUE, so its Sobol' shares are the same and its Morris effects
    scale by 1.5 / 1.2."""
    path = tmp_path / "sw.toml"
    lifetime = '{ dist = "uniform", min = 2, max = 6 }'
    path.write_text(SCENARIO.format(lifetime=lifetime) + "\n[energy]\npue = [1.2, 1.5]\n")
    model = ScenarioModel(path, outputs=["ewaste_generated_target", "energy_target"], backend="numpy")
    s = sobol(model.names, model, n=64, seed=1)
    m = morris(model.names, model, trajectories=10, seed=1)
    for res, key in ((s, "ST"), (m, "mu_star")):
        waste = res[key].sel(output="ewaste_generated_target")
        xr.testing.assert_equal(waste.sel(energy_pue=1.2, drop=True), waste.sel(energy_pue=1.5, drop=True))
    energy = s["ST"].sel(output="energy_target")
    np.testing.assert_allclose(energy.sel(energy_pue=1.5), energy.sel(energy_pue=1.2), rtol=1e-9, atol=1e-12)
    mu = m["mu_star"].sel(output="energy_target")
    np.testing.assert_allclose(mu.sel(energy_pue=1.5), 1.25 * mu.sel(energy_pue=1.2), rtol=1e-12, atol=1e-12)
