"""End to end: scenario dicts (as read from TOML) -> grid -> results, against hand-worked numbers."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import scipy.stats
import xarray as xr
from conftest import evaluate_dict
from numpy.testing import assert_allclose

from ewaste.errors import InputError
from ewaste.inputs.scenario import scenario_to_grid
from ewaste.inputs.validate import validate

YEARS = list(range(2020, 2031))
MASS = 130.45  # kg per server (Wang et al. 2024, 287.6 lb)


def fleet_scenario(fleet: dict, **scenario) -> dict:
    raw = {
        "scenario": {"start_year": 2020, "end_year": 2030, "age_convention": "end", **scenario},
        "fleets": {"servers": fleet},
    }
    return raw


def one(res, name, fleet="servers", **sel):
    """A result variable of one fleet as a NumPy array."""
    da = res[name].sel(fleet=fleet, **sel)
    return np.asarray(da.values, dtype=float)


def series(values, years=YEARS) -> dict:
    return {str(y): float(v) for y, v in zip(years, values, strict=True)}


def const(value: float) -> dict:
    """A constant written as a year series (the bare-number form is tested at the end)."""
    return {"2020": value, "2030": value}


# ----------------------------------------------------------------------------------------------
# E-waste, materials, recycling chain, metals
# ----------------------------------------------------------------------------------------------

RECYCLED = {
    "scenario": {"start_year": 2020, "end_year": 2030, "age_convention": "end"},
    "fleets": {
        "servers": {
            "driver": "stock",
            "stock": 1000,
            "lifetime": {"type": "fixed", "mean": 3},
            "mass": MASS,
            "composition": {"steel": 0.5, "copper": 0.2, "circuit_boards": 0.1},
            "pcb_metal_content": {"Au": 155, "Ag": 647},
        }
    },
    "recycling": {
        "collection_rate": 0.4,
        "preprocessing_yield": {"steel": 0.9, "copper": 0.8, "Au": 0.25},
        "endprocessing_yield": {"steel": 0.95, "copper": 0.9, "Au": 0.95},
    },
}


@pytest.fixture(scope="module")
def recycled():
    return evaluate_dict(RECYCLED)


def test_units_constant_stock_fixed_lifetime(recycled):
    # 1000 servers held in service, 3-year life: replaced in full every third year
    assert_allclose(one(recycled, "stock_units"), 1000.0)
    assert_allclose(one(recycled, "inflow_units"), [1000, 0, 0] * 3 + [1000, 0], atol=1e-9)
    assert_allclose(one(recycled, "outflow_units"), [0, 0, 0] + [1000, 0, 0] * 2 + [1000, 0], atol=1e-9)


def test_ewaste_tonnes_and_materials(recycled):
    gen_t = 1000 * MASS / 1000  # 130.45 t in each replacement year
    retire = np.array([0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0], dtype=float)
    assert_allclose(one(recycled, "ewaste_generated"), gen_t * retire, atol=1e-9)
    shares = {"steel": 0.5, "copper": 0.2, "circuit_boards": 0.1, "other": 0.2}  # other = remainder
    for material, share in shares.items():
        assert_allclose(
            one(recycled, "ewaste_by_material", material=material), share * gen_t * retire, rtol=1e-12, atol=1e-9
        )
    assert_allclose(one(recycled, "stock_mass"), gen_t, rtol=1e-12)
    assert one(recycled, "ewaste_generated_cumulative_target") == pytest.approx(3 * gen_t, rel=1e-12)


def test_recycling_chain(recycled):
    gen_t = 130.45
    steel = gen_t * 0.5 * 0.4 * 0.9 * 0.95
    copper = gen_t * 0.2 * 0.4 * 0.8 * 0.9
    m = 3  # 2023
    assert one(recycled, "collected")[m] == pytest.approx(gen_t * 0.4, rel=1e-12)
    assert one(recycled, "recovered_by_material", material="steel")[m] == pytest.approx(steel, rel=1e-12)
    assert one(recycled, "recovered_by_material", material="copper")[m] == pytest.approx(copper, rel=1e-12)
    # no yield given for circuit boards and "other": nothing of them recovered (the documented
    # default), but for the boards' metals, recovered with their own yields (one ledger)
    pcb_t = gen_t * 0.1
    metals = pcb_t * 155e-6 * 0.4 * 0.25 * 0.95 + pcb_t * 647e-6 * 0.4 * 0.115 * 0.95  # Au as given, Ag default
    assert one(recycled, "recovered_by_material", material="circuit_boards")[m] == pytest.approx(metals, rel=1e-12)
    assert one(recycled, "recovered_by_material", material="other")[m] == 0.0
    assert one(recycled, "recovered")[m] == pytest.approx(steel + copper + metals, rel=1e-12)
    assert one(recycled, "disposed")[m] == pytest.approx(gen_t - steel - copper - metals, rel=1e-12)
    # every tonne ends in exactly one destination, every step
    assert_allclose(
        one(recycled, "recovered") + one(recycled, "disposed"),
        one(recycled, "ewaste_generated"),
        rtol=1e-12,
        atol=1e-12,
    )


def test_circuit_board_metals(recycled):
    pcb_t = 130.45 * 0.1  # t of circuit boards retired in 2023
    au = pcb_t * 155e-6  # g/t -> t/t
    ag = pcb_t * 647e-6
    m = 3
    assert one(recycled, "metal_in_ewaste", metal="Au")[m] == pytest.approx(au, rel=1e-12)
    assert one(recycled, "metal_in_ewaste", metal="Ag")[m] == pytest.approx(ag, rel=1e-12)
    assert one(recycled, "metal_recovered", metal="Au")[m] == pytest.approx(au * 0.4 * 0.25 * 0.95, rel=1e-12)
    # no Ag yield in the scenario: the sourced defaults (Chancerel et al. 2009: 11.5 %; smelter 95 %)
    assert one(recycled, "metal_recovered", metal="Ag")[m] == pytest.approx(ag * 0.4 * 0.115 * 0.95, rel=1e-12)
    assert one(recycled, "metal_disposed", metal="Ag")[m] == pytest.approx(ag * (1 - 0.4 * 0.115 * 0.95), rel=1e-12)
    used = json.loads(recycled.attrs["defaults_used"])
    assert used["metal_preprocessing_yield"]["where"]["Ag"]["value"] == 0.115
    assert "Chancerel" in used["metal_preprocessing_yield"]["where"]["Ag"]["source"]
    assert one(recycled, "metal_in_ewaste_cumulative_target", metal="Au") == pytest.approx(3 * au, rel=1e-12)


def test_one_ledger_boards_and_their_metals():
    """100 t retired: 50 t steel, 10 t boards (Au 155 g/t, Cu 155,000 g/t), 40 t other; collection 0.5,
    default yields (steel 0.9 x 1.0; Au 0.256 x 0.95; Cu 0.60 x 0.95). Recovered: 25 x 0.9 = 22.5 t of
    steel, 5 t x 0.155 x 0.6 x 0.95 = 0.44175 t of Cu and 5 t x 155e-6 x 0.256 x 0.95 of Au from the
    boards: 22.94194 t; the rest, 77.05806 t, disposed, boards included (once, not twice)."""
    raw = {
        "scenario": {"start_year": 2020, "end_year": 2021, "age_convention": "end"},
        "fleets": {
            "s": {
                "driver": "inflow",
                "inflow": {"2020": 1000, "2021": 0},
                "lifetime": {"type": "fixed", "mean": 1},
                "mass": 100,
                "composition": {"steel": 0.5, "circuit_boards": 0.1},
                "pcb_metal_content": {"Au": 155, "Cu": 155000},
            }
        },
        "recycling": {"collection_rate": 0.5},
    }
    res = evaluate_dict(raw).sel(fleet="s", year=2021)
    cu, au = 5 * 0.155 * 0.6 * 0.95, 5 * 155e-6 * 0.256 * 0.95
    assert float(res["ewaste_generated_annual"]) == pytest.approx(100.0, rel=1e-12)
    assert float(res["recovered_annual"]) == pytest.approx(22.5 + cu + au, rel=1e-12)
    assert float(res["recovered_annual"]) == pytest.approx(22.942, abs=5e-4)
    assert float(res["disposed_annual"]) == pytest.approx(77.058, abs=5e-4)
    boards = res["recovered_by_material_annual"].sel(material="circuit_boards")
    assert float(boards) == pytest.approx(float(res["metal_recovered_annual"].sum("metal")), rel=1e-12)
    assert float(res["disposed_by_material_annual"].sel(material="circuit_boards")) == pytest.approx(10 - cu - au)
    metal = res["metal_recovered_annual"] + res["metal_disposed_annual"]
    assert_allclose(metal.values, res["metal_in_ewaste_annual"].values, rtol=1e-12)


def test_composition_and_metal_content_by_cohort():
    # constant stock of 1000 x 100 kg, 3-year life ('end'): cohorts 2020, 2023, 2026 retire in
    # 2023, 2026, 2029, each with the steel share and gold content of its own year of entry;
    # the gold pre-processing yield is read by time step (the year of retirement)
    raw = fleet_scenario(
        {
            "driver": "stock",
            "stock": 1000,
            "lifetime": {"type": "fixed", "mean": 3},
            "mass": 100,
            "composition": {"steel": {"2020": 0.5, "2030": 0.6}, "circuit_boards": 0.1},
            "pcb_metal_content": {"Au": {"2020": 100, "2030": 200}},
        }
    )
    raw["recycling"] = {
        "collection_rate": 0.5,
        "preprocessing_yield": {"steel": 1, "Au": {"2020": 0.2, "2030": 0.7}},
        "endprocessing_yield": {"steel": 1, "Au": 1},
    }
    res = evaluate_dict(raw)
    gen_t = 1000 * 100 / 1000
    for cohort, m in ((0, 3), (3, 6), (6, 9)):
        steel = 0.5 + 0.01 * cohort
        gold_g_per_t = 100 + 10 * cohort
        assert one(res, "ewaste_by_material", material="steel")[m] == pytest.approx(gen_t * steel, rel=1e-12)
        assert one(res, "ewaste_by_material", material="other")[m] == pytest.approx(gen_t * (0.9 - steel), rel=1e-12)
        gold_t = gen_t * 0.1 * gold_g_per_t * 1e-6
        assert one(res, "metal_in_ewaste", metal="Au")[m] == pytest.approx(gold_t, rel=1e-12)
        pre_yield = 0.2 + 0.05 * m
        assert one(res, "metal_recovered", metal="Au")[m] == pytest.approx(gold_t * 0.5 * pre_yield, rel=1e-12)


def test_monthly_steps():
    # 10 units a month, a 6-month life ('end'): six cohorts in service from June on
    raw = fleet_scenario(
        {
            "driver": "inflow",
            "inflow": {"value": 10, "units": "unit/month"},
            "mass": 1,
            "lifetime": {"type": "fixed", "mean": {"value": 6, "units": "months"}},
        },
        step="month",
        end_year=2021,
    )
    res = evaluate_dict(raw)
    assert_allclose(one(res, "inflow_units"), 10.0, rtol=1e-12)
    assert_allclose(one(res, "stock_units"), [10, 20, 30, 40, 50] + [60] * 19, rtol=1e-12)
    assert_allclose(one(res, "outflow_units_annual"), [60, 120], rtol=1e-12)
    assert_allclose(one(res, "stock_units_annual"), [60, 60], rtol=1e-12)


@pytest.mark.parametrize("convention", ["end", "middle"])
def test_stock_driven_growth_mass_and_power_by_cohort(convention):
    # mass and power per unit change by cohort; fixed 2-year life: what retires in year m is
    # cohort m-2 and what is in service cohorts m-1 and m
    stock = [100, 150, 200, 260, 300, 360, 420, 480, 560, 600, 700]
    mass = [100 + 10 * k for k in range(11)]
    power = [1.0 + 0.5 * k for k in range(11)]
    raw = fleet_scenario(
        {
            "driver": "stock",
            "stock": series(stock),
            "lifetime": {"type": "fixed", "mean": 2},
            "mass": series(mass),
            "power": series(power),
        },
        age_convention=convention,
    )
    raw["energy"] = {"pue": 1.1, "grid_intensity": 300}
    res = evaluate_dict(raw)
    inflow = [100.0, 50.0]
    for m in range(2, 11):
        inflow.append(stock[m] - inflow[m - 1])  # survivors: only the previous cohort
    assert_allclose(one(res, "inflow_units"), inflow, rtol=1e-12)
    gen = [0.0, 0.0] + [inflow[m - 2] * mass[m - 2] / 1000 for m in range(2, 11)]
    assert_allclose(one(res, "ewaste_generated"), gen, rtol=1e-12, atol=1e-12)
    held = [inflow[0] * mass[0]] + [inflow[m] * mass[m] + inflow[m - 1] * mass[m - 1] for m in range(1, 11)]
    assert_allclose(one(res, "stock_mass"), np.array(held) / 1000, rtol=1e-12)
    # energy: the units in service on average over each year. 'end': a unit that enters at the end of
    # year c serves all of years c+1 and c+2; 'middle': entering evenly over year c, on average it
    # serves half of c, all of c+1 and half of c+2 (fixed 2-year life). The first year's stock is the
    # installed base the run starts from: in service all year.
    serves = {"end": [0.0, 1.0, 1.0], "middle": [0.5, 1.0, 0.5]}[convention]
    kw = [inflow[0] * power[0]]
    for m in range(1, 11):
        kw.append(sum(w * inflow[m - k] * power[m - k] for k, w in enumerate(serves) if m - k >= 0))
    kwh = np.array(kw) * 1.1 * 8760
    assert_allclose(one(res, "energy"), kwh * 1e-9, rtol=1e-12)
    assert_allclose(one(res, "emissions"), kwh * 300 * 1e-12, rtol=1e-12)


def test_time_varying_utilisation_and_collection_rate():
    # values for each year as written (annual steps); they apply to the step, not the cohort
    raw = fleet_scenario(
        {
            "driver": "stock",
            "stock": const(1000),
            "lifetime": {"type": "fixed", "mean": 3},
            "mass": 100,
            "power": 1,
            "utilisation": {"2020": 0.5, "2030": 1.0},
            "composition": {"steel": 0.5},
        }
    )
    raw["recycling"] = {
        "collection_rate": {"2020": 0.2, "2030": 0.7},
        "preprocessing_yield": {"steel": 1},
        "endprocessing_yield": {"steel": 0.5},
    }
    raw["energy"] = {"pue": 1}
    res = evaluate_dict(raw)
    utilisation = np.linspace(0.5, 1.0, 11)
    assert_allclose(one(res, "energy"), 1000 * utilisation * 8760 * 1e-9, rtol=1e-12)
    rate = np.linspace(0.2, 0.7, 11)
    retire = np.array([0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0])
    gen = 1000 * 100 / 1000 * retire  # 100 t in each replacement year
    assert_allclose(one(res, "collected"), gen * rate, rtol=1e-12, atol=1e-12)
    assert_allclose(one(res, "recovered"), gen * 0.5 * rate * 0.5, rtol=1e-12, atol=1e-12)
    assert_allclose(one(res, "ewaste_by_material", material="other"), gen * 0.5, rtol=1e-12, atol=1e-12)


def test_refuses_stock_driven_lifetime_shorter_than_half_step():
    raw = fleet_scenario(
        {"driver": "stock", "stock": const(1000), "lifetime": {"type": "fixed", "mean": 0.4}, "mass": 1},
        age_convention="middle",
    )
    with pytest.raises(InputError) as info:
        evaluate_dict(raw)
    assert "fleets.servers.lifetime" in str(info.value)


def test_weibull_from_mean_and_std():
    # the documented alternative to shape and scale: the grid's shape and scale reproduce them
    raw = fleet_scenario(
        {
            "driver": "stock",
            "stock": const(1000),
            "mass": 1,
            "lifetime": {"type": "weibull", "mean": [4, 2, 10], "std": [1, 3, 8]},
        }
    )
    grid = validate(scenario_to_grid(copy.deepcopy(raw), "w.toml"), "w.toml")
    for mean, std in ((4, 1), (2, 3), (10, 8)):
        point = {"fleet": "servers", "servers_lifetime_mean": float(mean)}
        shape = grid["lifetime_shape"].sel(point)
        scale = grid["lifetime_scale"].sel(point)
        if "servers_lifetime_std" in shape.dims:
            shape, scale = shape.sel(servers_lifetime_std=float(std)), scale.sel(servers_lifetime_std=float(std))
        dist = scipy.stats.weibull_min(float(shape), scale=float(scale))
        assert dist.mean() == pytest.approx(mean, rel=1e-9)
        assert dist.std() == pytest.approx(std, rel=1e-9)


def test_tabulated_lifetime_inflow_driven():
    # weights[j]: share retired j years after entering service
    raw = fleet_scenario(
        {
            "driver": "inflow",
            "inflow": const(1000),
            "mass": 10,
            "lifetime": {"type": "tabulated", "weights": [0, 0.5, 0.5]},
        }
    )
    res = evaluate_dict(raw)
    assert_allclose(one(res, "stock_units"), [1000] + [1500] * 10, rtol=1e-12)
    assert_allclose(one(res, "outflow_units"), [0, 500] + [1000] * 9, rtol=1e-12, atol=1e-9)


def test_inflow_history_gives_initial_age_structure():
    # 100 units/yr in service in 2017-2019; fixed 3-year life ('end'): at the end of 2020 the 2018
    # and 2019 cohorts remain (200); the 2017 cohort retires in 2020.
    raw = fleet_scenario(
        {
            "driver": "stock",
            "stock": const(500),
            "inflow_history": {"2017": 100, "2019": 100},
            "lifetime": {"type": "fixed", "mean": 3},
            "mass": 1,
        }
    )
    res = evaluate_dict(raw)
    assert one(res, "inflow_units")[0] == pytest.approx(300, rel=1e-12)
    assert one(res, "outflow_units")[0] == pytest.approx(100, rel=1e-12)
    assert one(res, "outflow_units")[1] == pytest.approx(100, rel=1e-12)  # the 2018 cohort
    assert one(res, "inflow_units")[1] == pytest.approx(100, rel=1e-12)


def test_negative_inflow_policy_from_scenario():
    stock = [1000, 1000, 600, 600, 600, 600, 600, 600, 600, 600, 600]
    fleet = {"driver": "stock", "stock": series(stock), "lifetime": {"type": "fixed", "mean": 10}, "mass": 1}
    allow = evaluate_dict(fleet_scenario(fleet, negative_inflow="allow"))
    correct = evaluate_dict(fleet_scenario(fleet, negative_inflow="correct"))
    assert one(allow, "inflow_units")[2] == pytest.approx(-400)
    assert one(allow, "outflow_units")[2] == pytest.approx(0, abs=1e-9)
    assert one(correct, "inflow_units")[2] == 0.0
    assert one(correct, "outflow_units")[2] == pytest.approx(400)
    assert int(one(allow, "negative_inflow_steps")) == 1
    assert int(one(correct, "negative_inflow_steps")) == 1
    assert correct.attrs["negative_inflow"] == "correct"


# ----------------------------------------------------------------------------------------------
# Energy and emissions (de Vries 2023, Joule 7(10))
# ----------------------------------------------------------------------------------------------


def test_energy_de_vries_2023():
    # 1.5 million servers at 6.5 kW (DGX A100) or 10.2 kW (DGX H100), full load, no overhead
    raw = fleet_scenario(
        {
            "driver": "stock",
            "stock": const(1.5e6),
            "lifetime": {"type": "fixed", "mean": 4},
            "mass": MASS,
            "power": [6.5, 10.2],
            "utilisation": 1,
        }
    )
    raw["energy"] = {"pue": 1, "grid_intensity": 400}
    res = evaluate_dict(raw)
    dim = "servers_power"
    energy = res["energy_annual"].sel(fleet="servers")
    assert float(energy.sel({dim: 6.5}).sel(year=2025)) == pytest.approx(85.41, rel=1e-3)
    assert float(energy.sel({dim: 10.2}).sel(year=2025)) == pytest.approx(134.0, rel=1e-3)
    assert_allclose(energy.sel({dim: 6.5}).values, 1.5e6 * 6.5 * 8760 * 1e-9, rtol=1e-12)
    # emissions = energy x grid intensity: TWh x 400 gCO2e/kWh = 0.4 MtCO2e per TWh
    emissions = res["emissions_annual"].sel(fleet="servers")
    assert_allclose(emissions.values, 0.4 * energy.values, rtol=1e-12)
    assert float(res["energy_cumulative_target"].sel(fleet="servers", **{dim: 10.2})) == pytest.approx(
        11 * 1.5e6 * 10.2 * 8760 * 1e-9, rel=1e-12
    )


def test_energy_pue_utilisation_and_default_grid_intensity():
    raw = fleet_scenario(
        {
            "driver": "stock",
            "stock": const(1000),
            "lifetime": {"type": "fixed", "mean": 4},
            "mass": 1,
            "power": {"value": 10200, "units": "W"},
            "utilisation": {"value": 60, "units": "%"},
        }
    )
    raw["energy"] = {"pue": 1.2}
    res = evaluate_dict(raw)
    kwh = 1000 * 10.2 * 0.6 * 1.2 * 8760
    assert_allclose(one(res, "energy"), kwh * 1e-9, rtol=1e-12)
    assert_allclose(one(res, "emissions"), kwh * 475 * 1e-12, rtol=1e-12)  # documented default 475 g/kWh
    assert "grid_intensity" in res.attrs["defaults_used"]


# ----------------------------------------------------------------------------------------------
# Capacity-driven fleets (Wang et al. 2024 style)
# ----------------------------------------------------------------------------------------------

DEMAND = [100, 180, 300, 420, 600, 800, 1000, 1300, 1600, 2000, 2500]
PER_UNIT = [1.0, 1.3, 1.7, 2.2, 2.8, 3.5, 4.5, 5.5, 7.0, 8.5, 10.0]


def test_capacity_driven_fixed_lifetime_hand_recursion():
    mass = [20.0 + k for k in range(11)]
    raw = fleet_scenario(
        {
            "driver": "capacity",
            "demand": series(DEMAND),
            "capacity_per_unit": series(PER_UNIT),
            "lifetime": {"type": "fixed", "mean": 3},
            "mass": series(mass),
            "power": 2.0,
        }
    )
    res = evaluate_dict(raw)
    # n[m] = (D[m] - capacity of cohorts m-1, m-2 still in service) / k[m]   (3-year life, 'end')
    n = []
    for m in range(11):
        alive = sum(n[c] * PER_UNIT[c] for c in range(max(0, m - 2), m))
        n.append((DEMAND[m] - alive) / PER_UNIT[m])
    n = np.array(n)
    assert (n > 0).all()
    assert_allclose(one(res, "inflow_units"), n, rtol=1e-12)
    units = [n[max(0, m - 2) : m + 1].sum() for m in range(11)]
    assert_allclose(one(res, "stock_units"), units, rtol=1e-12)
    retired = [0, 0, 0] + [n[m - 3] for m in range(3, 11)]
    assert_allclose(one(res, "outflow_units"), retired, rtol=1e-12, atol=1e-9)
    gen = [0, 0, 0] + [n[m - 3] * mass[m - 3] / 1000 for m in range(3, 11)]
    assert_allclose(one(res, "ewaste_generated"), gen, rtol=1e-12, atol=1e-12)
    # in service on average over year m ('end': a unit serves the three years after the one it enters
    # at the end of); the first year's units are the installed base, in service all year
    average = [n[0]] + [n[max(0, m - 3) : m].sum() for m in range(1, 11)]
    assert_allclose(one(res, "in_service_units"), average, rtol=1e-12)
    assert_allclose(one(res, "energy"), np.array(average) * 2.0 * 8760 * 1.56 * 1e-9, rtol=1e-12)


def test_capacity_driven_weibull_installed_capacity_equals_demand():
    shape, scale = 2.0, 4.0
    raw = fleet_scenario(
        {
            "driver": "capacity",
            "demand": series(DEMAND),
            "capacity_per_unit": series(PER_UNIT),
            "lifetime": {"type": "weibull", "shape": shape, "scale": scale},
            "mass": 1,
        },
        age_convention="middle",
    )
    res = evaluate_dict(raw)
    n = one(res, "inflow_units")
    age = np.arange(11)[:, None] - np.arange(11)[None, :] + 0.5
    sf = np.where(age > 0, scipy.stats.weibull_min.sf(np.maximum(age, 0), shape, scale=scale), 0.0)
    installed = sf @ (n * np.array(PER_UNIT))
    assert_allclose(installed, DEMAND, rtol=1e-10)
    assert_allclose(one(res, "stock_units"), sf @ n, rtol=1e-10)
    # units retired in step m: n[c] (sf[m-1, c] - sf[m, c]), with sf[m-1, m] = 1 for the new cohort
    sf_prev = np.vstack([np.zeros((1, 11)), sf[:-1]]) + np.eye(11)
    out = (sf_prev - sf) @ n
    assert_allclose(one(res, "outflow_units"), out, rtol=1e-9, atol=1e-9 * n.max())


# ----------------------------------------------------------------------------------------------
# Sweeps and named dimensions
# ----------------------------------------------------------------------------------------------

SWEEP_FLEET = {
    "driver": "stock",
    "stock": {"2020": 1000, "2030": 50000, "interpolation": "log"},
    "lifetime": {"type": "normal", "mean": 4, "std": 1},
    "mass": MASS,
    "power": 10.2,
    "composition": {"steel": 0.53, "copper": 0.169, "circuit_boards": 0.105},
}
COMPARE = [
    "stock_units",
    "inflow_units",
    "outflow_units",
    "ewaste_generated",
    "recovered",
    "disposed",
    "energy",
    "emissions",
    "ewaste_generated_annual",
    "recovered_cumulative_target",
]


def _assert_point_equals(sweep, single, point: dict):
    for name in COMPARE:
        a = sweep[name].sel({k: v for k, v in point.items() if k in sweep[name].dims})
        b = single[name]
        assert set(a.dims) == set(b.dims), name
        assert_allclose(a.transpose(*b.dims).values, b.values, rtol=1e-12, atol=1e-12, err_msg=name)


def _with(raw, path, value):
    out = copy.deepcopy(raw)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def test_sweep_list_creates_dimension_and_points_equal_single_runs():
    raw = {
        "scenario": {"start_year": 2020, "end_year": 2030},
        "fleets": {"servers": {**SWEEP_FLEET, "lifetime": {"type": "normal", "mean": [3, 4, 5], "std": 1}}},
        "recycling": {
            "collection_rate": [0.2, 0.5],
            "preprocessing_yield": {"steel": 0.9},
            "endprocessing_yield": {"steel": 0.95},
        },
    }
    res = evaluate_dict(raw)
    assert res.sizes["servers_lifetime_mean"] == 3
    assert res.sizes["recycling_collection_rate"] == 2
    for mean in (3, 4, 5):
        for rate in (0.2, 0.5):
            single = _with(
                _with(raw, ["fleets", "servers", "lifetime", "mean"], mean), ["recycling", "collection_rate"], rate
            )
            _assert_point_equals(
                res, evaluate_dict(single), {"servers_lifetime_mean": float(mean), "recycling_collection_rate": rate}
            )


def test_parameters_on_the_same_named_dimension_vary_together():
    raw = {
        "scenario": {"start_year": 2020, "end_year": 2030},
        "dimensions": {"generation": ["h100", "b200"]},
        "fleets": {
            "servers": {
                **SWEEP_FLEET,
                "mass": {"values": [MASS, 1360], "dim": "generation"},
                "power": {"values": [10.2, 120], "dim": "generation"},
                "lifetime": {"type": "normal", "mean": {"values": [4, 5], "dim": "generation"}, "std": 1},
            }
        },
    }
    res = evaluate_dict(raw)
    assert list(res["generation"].values) == ["h100", "b200"]
    scenario_dims = set(res["stock_units"].dims) - {"fleet", "time"}
    assert scenario_dims == {"generation"}  # zipped, not a cross product
    for label, mass, power, mean in (("h100", MASS, 10.2, 4), ("b200", 1360, 120, 5)):
        fleet = {**SWEEP_FLEET, "mass": mass, "power": power, "lifetime": {"type": "normal", "mean": mean, "std": 1}}
        single = {"scenario": raw["scenario"], "fleets": {"servers": fleet}}
        _assert_point_equals(res, evaluate_dict(single), {"generation": label})


def test_two_fleets_are_independent():
    other = {
        "driver": "inflow",
        "inflow": {"2024": 0, "2025": 1000, "2030": 5000},
        "lifetime": {"type": "lognormal", "mean": 4, "std": 1.5},
        "mass": 1360,
        "power": 120,
    }
    both = {"scenario": {"start_year": 2020, "end_year": 2030}, "fleets": {"servers": SWEEP_FLEET, "gb200": other}}
    alone = {"scenario": {"start_year": 2020, "end_year": 2030}, "fleets": {"gb200": other}}
    a = evaluate_dict(both)
    b = evaluate_dict(alone)
    for name in ("stock_units", "outflow_units", "ewaste_generated", "energy"):
        assert_allclose(one(a, name, fleet="gb200"), one(b, name, fleet="gb200"), rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# Time axis: quarters, annual, cumulative and target variables
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [("fleet", "year", "s"), ("s", "fleet", "year"), ("year", "s", "fleet")])
def test_cumulative_sums_by_hand(order):
    """Running sums over the year, wherever that axis lies: 1, 2, 3, 4 -> 1, 3, 6, 10 (n (n + 1) / 2);
    a NaN year makes every later sum NaN, as cumsum(skipna=False); coordinates and attributes kept."""
    from ewaste.model.aggregate import cumulative

    years = np.arange(2020, 2024)
    base = xr.DataArray(
        np.arange(1.0, 5.0)[None, :, None] * np.array([1.0, 10.0])[None, None, :] * np.ones((2, 1, 1)),
        dims=("fleet", "year", "s"),
        coords={"fleet": ["a", "b"], "year": years},
        attrs={"units": "t"},
    )
    base[1, 2, 1] = np.nan
    got = cumulative(base.transpose(*order)).transpose("fleet", "year", "s")
    assert got.attrs == {"units": "t"} and list(got["year"].values) == list(years)
    n = np.arange(1.0, 5.0)
    assert_allclose(got.sel(fleet="a", s=0), n * (n + 1) / 2, rtol=0)
    assert_allclose(got.sel(fleet="a", s=1), 10 * n * (n + 1) / 2, rtol=0)
    assert_allclose(got.sel(fleet="b", s=1), [10.0, 30.0, np.nan, np.nan], rtol=0)


def test_quarterly_inflow_driven_annual_aggregation():
    # 400 units/yr = 100 per quarter; 1-year life ('end'): ages 0, .25, .5, .75 stay in service
    raw = fleet_scenario(
        {"driver": "inflow", "inflow": const(400), "lifetime": {"type": "fixed", "mean": 1}, "mass": 1000, "power": 1},
        step="quarter",
        target_year=2025,
    )
    raw["energy"] = {"pue": 1}
    res = evaluate_dict(raw)
    assert_allclose(one(res, "inflow_units"), 100.0)
    stock = one(res, "stock_units")
    assert_allclose(stock[:4], [100, 200, 300, 400])
    assert_allclose(stock[4:], 400)
    assert_allclose(one(res, "inflow_units_annual"), 400.0)  # flows: summed over the quarters
    assert_allclose(one(res, "stock_units_annual"), 400.0)  # stocks: at Q4
    assert_allclose(one(res, "outflow_units_annual"), [0] + [400] * 10, atol=1e-9)
    # energy: each quarter is 8760/4 hours at the units in service on average over it; 'end': a unit
    # bought in a quarter serves the next four, so 0, 100, 200, 300 in the quarters of 2020
    energy = one(res, "energy_annual")
    assert energy[0] == pytest.approx((0 + 100 + 200 + 300) * 2190 * 1e-9, rel=1e-12)
    assert_allclose(energy[1:], 400 * 8760 * 1e-9, rtol=1e-12)
    # cumulative and target-year variables (target 2025 = index 5)
    assert one(res, "ewaste_generated_cumulative_target") == pytest.approx(5 * 400 * 1000 / 1000, rel=1e-12)
    assert one(res, "ewaste_generated_target") == pytest.approx(400.0, rel=1e-12)
    assert one(res, "stock_units_target") == pytest.approx(400.0, rel=1e-12)
    assert_allclose(one(res, "inflow_units_cumulative"), 400.0 * np.arange(1, 12), rtol=1e-12)
    assert "stock_units_cumulative" not in res  # a stock has no cumulative sum


def test_quarterly_stock_is_read_at_the_end_of_the_year():
    raw = fleet_scenario(
        {
            "driver": "stock",
            "stock": {"2020": 1000, "2030": 2000},
            "lifetime": {"type": "weibull", "shape": 2, "scale": 4},
            "mass": 1,
        },
        step="quarter",
    )
    res = evaluate_dict(raw)
    annual = res["stock_units_annual"].sel(fleet="servers")
    assert_allclose(annual.values, np.linspace(1000, 2000, 11), rtol=1e-12)
    # the per-step flows sum to the annual flows
    per_step = res["outflow_units"].sel(fleet="servers").values.reshape(11, 4).sum(axis=1)
    assert_allclose(res["outflow_units_annual"].sel(fleet="servers").values, per_step, rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# Units
# ----------------------------------------------------------------------------------------------


def test_mass_in_pounds():
    fleet = {
        "driver": "stock",
        "stock": const(1000),
        "lifetime": {"type": "fixed", "mean": 3},
        "mass": {"value": 287.6, "units": "lb"},
    }
    raw = fleet_scenario(fleet)
    grid = validate(scenario_to_grid(copy.deepcopy(raw), "lb.toml"), "lb.toml")
    assert float(grid["mass"].sel(fleet="servers")) == pytest.approx(130.45, rel=1e-4)
    assert float(grid["mass"].sel(fleet="servers")) == pytest.approx(287.6 * 0.45359237, rel=1e-12)
    res = evaluate_dict(raw)
    assert one(res, "ewaste_generated")[3] == pytest.approx(1000 * 287.6 * 0.45359237 / 1000, rel=1e-12)
    kg = evaluate_dict(fleet_scenario({**fleet, "mass": 287.6 * 0.45359237}))
    assert_allclose(one(res, "ewaste_generated"), one(kg, "ewaste_generated"), rtol=1e-12)


def test_lifetime_in_months_and_inflow_per_quarter():
    fleet = {
        "driver": "inflow",
        "inflow": {"value": const(250), "units": "unit/quarter"},
        "lifetime": {"type": "fixed", "mean": {"value": 36, "units": "months"}},
        "mass": 1,
    }
    res = evaluate_dict(fleet_scenario(fleet))
    assert_allclose(one(res, "inflow_units"), 1000.0, rtol=1e-12)  # 250 a quarter = 1000 a year
    assert_allclose(one(res, "stock_units"), [1000, 2000] + [3000] * 9, rtol=1e-12)
    assert_allclose(one(res, "outflow_units"), [0, 0, 0] + [1000] * 8, atol=1e-9)


# ----------------------------------------------------------------------------------------------
# A driver given as a bare number holds in every step (regression: it used to run one step and
# fail with "ValueError: cannot reshape array of size 1 into shape (11,)")
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fleet, expected_stock",
    [
        ({"driver": "stock", "stock": 1000}, 1000.0),
        ({"driver": "inflow", "inflow": 1000}, [1000, 2000] + [3000] * 9),
        ({"driver": "capacity", "demand": 1000, "capacity_per_unit": 2}, 500.0),
    ],
)
def test_constant_driver_as_a_number(fleet, expected_stock):
    raw = fleet_scenario({**fleet, "lifetime": {"type": "fixed", "mean": 3}, "mass": 1})
    res = evaluate_dict(raw)
    assert_allclose(one(res, "stock_units"), expected_stock, rtol=1e-12)


def test_constant_driver_sweep_of_numbers():
    raw = fleet_scenario(
        {"driver": "stock", "stock": [1000, 2000], "lifetime": {"type": "fixed", "mean": 3}, "mass": 1}
    )
    res = evaluate_dict(raw)
    for level in (1000.0, 2000.0):
        units = res["stock_units"].sel(fleet="servers", servers_stock=level).values
        assert_allclose(units, level, rtol=1e-12)
        retired = res["outflow_units"].sel(fleet="servers", servers_stock=level).values
        assert_allclose(retired, level * np.array([0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0]), atol=1e-9)


# ----------------------------------------------------------------------------------------------
# Intermediates scaled in their own memory (model/scratch.py) never write over what is read later
# ----------------------------------------------------------------------------------------------


def test_times_writes_in_place_only_into_what_it_owns():
    from ewaste.model.scratch import owned, times

    base = np.arange(6.0).reshape(2, 3)
    da = xr.DataArray(base.copy(), dims=("time", "s"))
    w = xr.DataArray([1.0, 10.0, 100.0], dims="s")
    got = times(da, w, [base])
    assert got is da and and_is_product(got, base, w)  # owned: written in place, the same products
    shared = xr.DataArray(base, dims=("time", "s"))
    got = times(shared, w, [base[0]])  # shares memory with an array read later: a new array
    assert got is not shared and and_is_product(got, base, w) and np.array_equal(base, np.arange(6.0).reshape(2, 3))
    labelled = xr.DataArray(base.copy(), dims=("time", "s"), coords={"s": ["a", "b", "c"]})
    other_order = xr.DataArray([100.0, 10.0, 1.0], dims="s", coords={"s": ["c", "b", "a"]})
    got = times(labelled, other_order, [])  # labels in another order: aligned, as da * factor
    assert got is not labelled and and_is_product(got, base, w)
    extra = xr.DataArray([2.0, 3.0], dims="x")  # the product has a dimension more: a new array
    assert times(xr.DataArray(base.copy(), dims=("time", "s")), extra, []).sizes == {"time": 2, "s": 3, "x": 2}
    frozen = base.copy()
    frozen.flags.writeable = False
    assert not owned(frozen, []) and not owned(base.astype(np.float32), []) and owned(base.copy(), [base])


def and_is_product(got: xr.DataArray, base: np.ndarray, w: xr.DataArray) -> bool:
    return bool(np.array_equal(got.values, base * w.values[None, :]))


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_evaluate_leaves_the_grid_as_it_was(backend):
    """Every bundled scenario: the grid's arrays are the same before and after a run, in trajectory
    and summary mode (results scaled in place must never reach the grid's memory)."""
    from ewaste import evaluate
    from ewaste.inputs import catalogue
    from ewaste.inputs.load import load_grid

    for name in sorted(catalogue.bundled()):
        grid = load_grid(catalogue.resolve(name))
        before = grid.copy(deep=True)
        for summary in (False, True):
            evaluate(grid, backend, summary=summary)
            xr.testing.assert_identical(grid, before)
