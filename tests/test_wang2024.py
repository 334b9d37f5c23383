"""Wang et al. (2024): the bundled scenario reproduces the authors' released model quarter by quarter.

The reference below is an independent, plain-Python transcription of the rule as the data README
in shared/data/wang2024 states it (a loop per quarter, whole servers, moving 24-quarter sum of
retired capacity valued at the retirement quarter's capacity), run on the numbers of the bundled
file read with tomllib; a second test checks those numbers against the authors' CSV files.
"""

from __future__ import annotations

import csv
import importlib.util
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

import ewaste

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "wang2024"
MASS_T = 0.13045  # t per server (DGX H100), as in the README's reproduction
BASE = {"chip": "normal", "efficiency": "constant", "users": "demo"}


@pytest.fixture(scope="module")
def results():
    return ewaste.evaluate(ewaste.load_grid(ROOT / "scenarios" / "wang2024.toml"))


def _csv(name: str) -> list[dict]:
    with open(DATA / name, newline="") as f:
        return list(csv.DictReader(f))


def authors_rule(demand: list[float], per_server: list[float], weights: list[float]) -> tuple[list, list]:
    """In(0) = ceil(D0/P0); Out(t) = sum_j w[j] In(t-1-j); In(t) = ceil((D(t)-D(t-1)+Rep(t))/P(t))."""
    n, window = len(demand), len(weights)
    units_in, units_out = [0] * n, [0.0] * n
    units_in[0] = math.ceil(demand[0] / per_server[0])
    for t in range(1, n):
        units_out[t] = sum(weights[j] * units_in[t - 1 - j] for j in range(min(t, window)))
        rep = sum(per_server[k] * units_out[k] for k in range(t - min(t, window) + 1, t + 1))
        units_in[t] = math.ceil((demand[t] - demand[t - 1] + rep) / per_server[t])
    return units_in, units_out


CHIPS = ["normal", "lag_1_year", "catchup_2030Q4", "immediate_upgrade_demo", "immediate_upgrade_suppfig4"]


def _bundled_inputs(case: str, chip: str) -> dict[str, tuple[list[float], list[float]]]:
    """Demand and per-server capacity as written in scenarios/wang2024.toml (read with tomllib)."""
    raw = tomllib.loads((ROOT / "scenarios" / "wang2024.toml").read_text())
    cases = raw["dimensions"]["case"]
    out = {}
    for fleet in ("training", "inference"):
        f = raw["fleets"][fleet]
        demand = f["demand"]["values"][cases.index(case)]
        if fleet == "inference":
            demand = demand["values"][0]  # users from the code's workbook
        per_server = f["capacity_per_unit"]["values"][CHIPS.index(chip)]["values"][0]  # constant efficiency
        out[fleet] = (list(demand.values()), list(per_server.values()))
    return out


@pytest.mark.parametrize("case", ["aggressive", "moderate", "conservative"])
@pytest.mark.parametrize("chip", ["normal", "lag_1_year", "immediate_upgrade_suppfig4"])
def test_quarter_by_quarter_against_the_authors_rule(results, case: str, chip: str):
    raw = tomllib.loads((ROOT / "scenarios" / "wang2024.toml").read_text())
    weights = raw["fleets"]["training"]["lifetime"]["weights"][1:]  # lag 0 is 0; weight j at lag j + 1
    sel = {**BASE, "chip": chip, "case": case, "rule": "wang2024"}
    for fleet, (demand, per_server) in _bundled_inputs(case, chip).items():
        units_in, units_out = authors_rule(demand, per_server, weights)
        got = results.sel(fleet=fleet, **sel)
        np.testing.assert_allclose(got["inflow_units"].values, units_in, rtol=1e-14)  # whole servers
        np.testing.assert_allclose(got["outflow_units"].values, units_out, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(got["stock_units"].values, np.cumsum(units_in) - np.cumsum(units_out), rtol=1e-12)


@pytest.mark.skipif(not DATA.exists(), reason="shared/data/wang2024 not beside the checkout")
@pytest.mark.parametrize("case", ["aggressive", "conservative"])
def test_bundled_file_carries_the_authors_numbers(case: str):
    demand = [r for r in _csv("demand.csv") if r["scenario"] == case]
    capacity = [
        r
        for r in _csv("server_capacity.csv")
        if r["chip_variant"] == "normal" and r["efficiency_variant"] == "constant"
    ]
    bundled = _bundled_inputs(case, "normal")
    for fleet, column in (("training", "train"), ("inference", "infer")):
        assert bundled[fleet][0] == [float(r[f"R_{column}"]) for r in demand]
        assert bundled[fleet][1] == [float(r[f"P_{column}"]) for r in capacity]
    weights = [float(r["weight"]) for r in _csv("lifetime_weights.csv")]
    raw = tomllib.loads((ROOT / "scenarios" / "wang2024.toml").read_text())
    assert raw["fleets"]["training"]["lifetime"]["weights"] == [0.0, *weights]


def test_published_figures_under_the_authors_rule(results):
    e = results["ewaste_generated_annual"].sum("fleet").sel(**BASE, rule="wang2024")
    assert float(e.sel(case="aggressive", year=2023)) == pytest.approx(2600, rel=0.05)  # 2.6 kt in 2023
    assert 2.2e6 <= float(e.sel(case="aggressive", year=2030)) <= 2.4e6
    assert 4.4e6 <= float(e.sel(case="aggressive").sum("year")) <= 4.7e6
    in_2030 = [float(e.sel(case=c, year=2030)) for c in ("aggressive", "moderate", "conservative")]
    assert in_2030[0] > in_2030[1] > in_2030[2]


def test_authors_rule_builds_more_capacity_than_demand_and_balanced_rule_does_not(results):
    ratio = results["capacity_demand_ratio"].sel(**BASE)
    assert float(ratio.sel(rule="wang2024", case="aggressive").isel(time=-1).min()) > 3.0
    balanced = results["capacity_demand_ratio"].sel(rule="balanced")
    assert float(balanced.max()) <= 1 + 1e-9
    # the balanced rule: installed capacity equals demand wherever no correction fired
    np.testing.assert_allclose(balanced.sel(**BASE).values, 1.0, rtol=1e-9)


def test_rules_differ_and_balanced_is_smaller(results):
    e = results["ewaste_generated_annual"].sum("fleet").sel(**BASE, year=2030)
    assert float(e.sel(rule="balanced", case="aggressive")) < 0.6 * float(e.sel(rule="wang2024", case="aggressive"))


def _monte_carlo():
    spec = importlib.util.spec_from_file_location("wang2024_monte_carlo", ROOT / "tools" / "wang2024_monte_carlo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_monte_carlo_design_reproduces_the_authors_offset_of_the_mean():
    """The authors report Monte Carlo means of inflow and outflow 0.16-0.21 % above the deterministic run."""
    table = _monte_carlo().compare(draws=20000, seed=7)
    for figure in ("inflow_units", "outflow_units"):
        s = table[figure]
        offset = s.sel(stat="mean") / s.sel(stat="deterministic") - 1
        two_se = 2 * s.sel(stat="se_mean") / s.sel(stat="deterministic")
        assert bool(((offset + two_se >= 0.0016) & (offset - two_se <= 0.0021)).all()), offset.values
        assert bool((s.sel(stat="p5") < s.sel(stat="deterministic")).all())
        assert bool((s.sel(stat="deterministic") < s.sel(stat="p95")).all())


def test_every_monte_carlo_draw_is_the_authors_rule_on_its_own_inputs():
    raw = tomllib.loads((ROOT / "scenarios" / "wang2024.toml").read_text())
    weights = raw["fleets"]["training"]["lifetime"]["weights"][1:]
    _, drawn = _monte_carlo().monte_carlo_grid(draws=50, seed=3)
    some = drawn.isel(draw=[0, 17, 49])
    got = ewaste.evaluate(some)
    for case in ("aggressive", "conservative"):
        for fleet in ("training", "inference"):
            for k in range(3):
                point = some.sel(fleet=fleet, case=case).isel(draw=k)
                units_in, units_out = authors_rule(
                    list(point["demand"].values), list(point["capacity_per_unit"].values), weights
                )
                out = got.sel(fleet=fleet, case=case).isel(draw=k)
                np.testing.assert_allclose(out["inflow_units"].values, units_in, rtol=1e-14)
                np.testing.assert_allclose(out["outflow_units"].values, units_out, rtol=1e-12, atol=1e-9)


def _rule_scenario(weights: list[float], demand: dict) -> dict:
    return {
        "scenario": {"start_year": 2020, "end_year": 2021, "step": "quarter"},
        "fleets": {
            "f": {
                "driver": "capacity",
                "demand": demand,
                "capacity_per_unit": 1.0,
                "lifetime": {"type": "tabulated", "weights": weights},
                "mass": 1.0,
                "replacement": "wang2024",
            }
        },
    }


def test_authors_rule_refuses_retirement_in_the_step_of_entry():
    from ewaste.errors import InputError
    from ewaste.inputs.scenario import scenario_to_grid
    from ewaste.inputs.validate import validate

    raw = _rule_scenario([0.1, 0.9], {"2020Q1": 10, "2021Q4": 20})
    with pytest.raises(InputError, match="first weight"):
        validate(scenario_to_grid(raw, "w.toml"), "w.toml")


def test_authors_rule_counts_negative_purchases():
    """Falling demand: the authors' rule buys a negative number of servers; kept, and counted."""
    from ewaste.inputs.scenario import scenario_to_grid
    from ewaste.inputs.validate import validate

    demand = {
        "2020Q1": 100,
        "2020Q2": 100,
        "2020Q3": 40,
        "2020Q4": 40,
        "2021Q1": 40,
        "2021Q2": 40,
        "2021Q3": 40,
        "2021Q4": 40,
    }
    raw = _rule_scenario([0.0, 0.0, 0.0, 1.0], demand)
    res = ewaste.evaluate(validate(scenario_to_grid(raw, "w.toml"), "w.toml"))
    inflow = res["inflow_units"].sel(fleet="f").values
    assert inflow[2] == -60  # ceil(40 - 100 + 0) with nothing retired yet
    assert int(res["negative_inflow_steps"].sel(fleet="f")) == int((inflow < 0).sum()) >= 1


def test_summary_of_one_shared_demand_equals_the_trajectories(results):
    """One demand trajectory for every grid point (a single users and case), the chips and rules
    swept: summary mode sums that shared demand once for all points (`fleet._run_fleet`) and gives
    the capacity/demand ratio the trajectories give."""
    grid = ewaste.load_grid(ROOT / "scenarios" / "wang2024.toml").isel(users=0, case=0)
    summary = ewaste.evaluate(grid, summary=True)
    want = results["capacity_demand_ratio_target"].isel(users=0, case=0)
    np.testing.assert_allclose(summary["capacity_demand_ratio_target"].transpose(*want.dims), want, rtol=1e-12)
