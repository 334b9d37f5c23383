"""Fleets that feed each other: a cascade (second life) and a replacement, the chain's mass balance,
a unit counted once, per-unit values that arrive with the units, and links refused where they
cannot hold."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import ewaste
from ewaste.errors import InputError
from ewaste.inputs.scenario import scenario_to_grid
from ewaste.inputs.validate import validate

CHAIN = {
    "scenario": {"start_year": 2020, "end_year": 2032, "step": "quarter"},
    "fleets": {
        "training": {
            "driver": "stock",
            "stock": {"2020Q1": 1000, "2026Q4": 20000, "2032Q4": 30000},
            "lifetime": {"type": "weibull", "mean": {"2020Q1": 2.0, "2032Q4": 3.5}, "std": 0.8},
            "mass": {"2020Q1": 120.0, "2032Q4": 150.0},  # heavier cohorts later: the arrivals' mass changes
            "power": 10.0,
            "gpus_per_unit": 8,
            "composition": {"steel": 0.5, "circuit_boards": 0.1},
            "pcb_metal_content": {"Au": 155.0},
        },
        "inference": {
            "driver": "inflow",
            "inflow": {"from": "training", "share": 0.6},
            "lifetime": {"type": "weibull", "mean": 2.0, "std": 0.7},
            "power": 4.0,  # refused for a cascade: power arrives with the units (tests delete it)
        },
    },
    "recycling": {"collection_rate": 0.5},
}


def grid_of(raw: dict):  # noqa: ANN201
    return validate(scenario_to_grid(copy.deepcopy(raw), "l.toml"), "l.toml")


@pytest.fixture(scope="module")
def chain():
    raw = copy.deepcopy(CHAIN)
    del raw["fleets"]["inference"]["power"]
    return ewaste.evaluate(grid_of(raw), backend="numpy")


def test_a_cascade_takes_its_share_of_the_retirements_and_they_are_not_ewaste(chain):
    a, b = chain.sel(fleet="training"), chain.sel(fleet="inference")
    np.testing.assert_allclose(b["inflow_units"], 0.6 * a["outflow_units"], rtol=1e-12)
    retired_t = a["ewaste_generated"] + a["reused"]  # all that training retired, in t
    np.testing.assert_allclose(a["reused"], 0.6 * retired_t, rtol=1e-12)
    np.testing.assert_allclose(b["inflow_mass"], a["reused"], rtol=1e-10, atol=1e-9)  # the units arrive with their mass
    assert float(b["reused"].sum()) == 0.0


def test_the_chain_balances_its_mass(chain):
    bought = float(chain["inflow_mass"].sel(fleet="training").sum())
    wasted = float(chain["ewaste_generated"].sum())
    held = float(chain["stock_mass"].isel(time=-1).sum())
    assert wasted + held == pytest.approx(bought, rel=1e-10)
    by_material = chain["ewaste_by_material"].sum(("fleet", "time"))
    assert float(by_material.sum()) == pytest.approx(wasted, rel=1e-10)


def test_arriving_units_keep_their_power_gpus_and_metals(chain):
    a, b = chain.sel(fleet="training"), chain.sel(fleet="inference")
    np.testing.assert_allclose(b["stock_gpus"], 8 * b["stock_units"], rtol=1e-10)  # every unit has 8 GPUs
    au = chain["metal_in_ewaste"].sel(metal="Au").sum("time")
    # Au per tonne of e-waste is the same in both fleets: 10 % boards at 155 g/t
    np.testing.assert_allclose(au / chain["ewaste_generated"].sum("time"), 0.1 * 155e-6, rtol=1e-9)
    assert float(b["energy"].sum()) > 0 and float(a["energy"].sum()) > 0


def test_a_replacement_buys_new_units_and_leaves_the_retirements_as_ewaste():
    raw = copy.deepcopy(CHAIN)
    raw["fleets"]["inference"] = {
        "driver": "inflow",
        "inflow": {"from": "training", "ratio": 0.125},
        "lifetime": {"type": "fixed", "mean": 4},
        "mass": 1360,
    }
    r = ewaste.evaluate(grid_of(raw), backend="numpy")
    a, b = r.sel(fleet="training"), r.sel(fleet="inference")
    np.testing.assert_allclose(b["inflow_units"], 0.125 * a["outflow_units"], rtol=1e-12)
    np.testing.assert_allclose(b["inflow_mass"], 1.36 * b["inflow_units"], rtol=1e-12)
    assert float(abs(r["reused"]).max()) == 0.0  # nothing passed on: all training retires is e-waste
    alone = copy.deepcopy(CHAIN)
    del alone["fleets"]["inference"]
    single = ewaste.evaluate(grid_of(alone), backend="numpy").sel(fleet="training")
    np.testing.assert_allclose(a["ewaste_generated"], single["ewaste_generated"], rtol=1e-12)


def test_a_swept_share_of_zero_is_the_baseline():
    raw = copy.deepcopy(CHAIN)
    del raw["fleets"]["inference"]["power"]
    raw["fleets"]["inference"]["inflow"]["share"] = [0.0, 0.3]
    r = ewaste.evaluate(grid_of(raw), backend="numpy")
    dim = next(d for d in r["reused"].dims if d not in ("fleet", "time"))
    base = r.isel({dim: 0})
    assert float(base["stock_units"].sel(fleet="inference").max()) == 0.0
    alone = copy.deepcopy(CHAIN)
    del alone["fleets"]["inference"]
    single = ewaste.evaluate(grid_of(alone), backend="numpy").sel(fleet="training")
    np.testing.assert_allclose(base["ewaste_generated"].sel(fleet="training"), single["ewaste_generated"], rtol=1e-12)
    lever = r.isel({dim: 1})
    assert float(lever["ewaste_generated"].sum()) < float(base["ewaste_generated"].sum())  # to 2032: less e-waste


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda f: f["inference"].update(inflow={"from": "nobody", "share": 0.5}), "fleets.inference.inflow.from"),
        (lambda f: f["inference"].update(inflow={"from": "inference", "share": 0.5}), "fleets.inference.inflow.from"),
        (lambda f: f["inference"].update(inflow={"from": "training", "share": 1.5}), "fleets.inference.inflow.share"),
        (lambda f: f["inference"].update(inflow={"from": "training"}), "fleets.inference.inflow"),
        (lambda f: f["inference"].update(mass=100), "fleets.inference.mass"),
        (lambda f: f["inference"].update(power=4), "fleets.inference.power"),
        (
            lambda f: f.update(
                resale={
                    "driver": "inflow",
                    "inflow": {"from": "training", "share": 0.6},
                    "lifetime": f["inference"]["lifetime"],
                }
            ),
            "fleets.training",
        ),
    ],
)
def test_links_that_cannot_hold_are_refused(edit, field):
    raw = copy.deepcopy(CHAIN)
    del raw["fleets"]["inference"]["power"]
    edit(raw["fleets"])
    with pytest.raises(InputError) as info:
        grid_of(raw)
    assert info.value.field == field


def test_a_cycle_is_refused():
    raw = copy.deepcopy(CHAIN)
    del raw["fleets"]["inference"]["power"]
    raw["fleets"]["training"] = {
        "driver": "inflow",
        "inflow": {"from": "inference", "ratio": 1.0},
        "lifetime": {"type": "fixed", "mean": 3},
        "mass": 100,
    }
    with pytest.raises(InputError, match="cycle"):
        grid_of(raw)


def test_units_by_cohort_age_follow_the_links(chain):
    from ewaste.model.cohorts import stock_by_age

    raw = copy.deepcopy(CHAIN)
    del raw["fleets"]["inference"]["power"]
    by_age = stock_by_age(grid_of(raw)).sum("age")
    np.testing.assert_allclose(by_age.transpose(*chain["stock_units"].dims), chain["stock_units"], rtol=1e-9, atol=1e-6)
