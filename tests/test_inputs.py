"""Scenario inputs: inflow histories longer than the run, grids without NaN and the defaults they
record, flows given as totals per period, validation that says what a run will say, and inputs
that must be refused in one line (deep nesting, too many dimensions, names NetCDF cannot store).

Expected values are computed here by hand or in closed form (scipy.stats), not by ewaste.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import xarray as xr
from conftest import evaluate_dict
from numpy.testing import assert_allclose

import ewaste
from ewaste.engine import host
from ewaste.engine.stockflow import require_first_step
from ewaste.errors import InputError
from ewaste.inputs import validate as validate_module
from ewaste.inputs.load import load_grid, save_grid
from ewaste.inputs.scenario import scenario_to_grid
from ewaste.inputs.validate import validate
from ewaste.model.defaults import fill_defaults


def grid_of(raw: dict, name: str = "test.toml") -> xr.Dataset:
    return validate(scenario_to_grid(copy.deepcopy(raw), name), name)


def refusal(raw: dict, name: str = "test.toml") -> InputError:
    with pytest.raises(InputError) as info:
        grid_of(raw, name)
    return info.value


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ewaste.cli", *args], capture_output=True, text=True)


def one_fleet(fleet: dict, **scenario) -> dict:
    base = {"driver": "inflow", "inflow": 1000, "lifetime": {"type": "normal", "mean": 3, "std": 1}, "mass": 100}
    return {"scenario": {"start_year": 2020, "end_year": 2025, **scenario}, "fleets": {"servers": {**base, **fleet}}}


# ----------------------------------------------------------------------------------------------
# 1. An inflow history longer than the run
# ----------------------------------------------------------------------------------------------

# survival of a normal(3, 1) lifetime; 'middle': a cohort is 0.5 yr old at the end of its first year
SF = scipy.stats.norm(3, 1).sf
# cohorts 2026, 2027, 2028 (history, 1000 each) and 2029, 2030 (1000 each), stocks at year end
STOCK_2028 = 1000 * (SF(2.5) + SF(1.5) + SF(0.5))
STOCK_2029 = 1000 * (SF(3.5) + SF(2.5) + SF(1.5) + SF(0.5))
STOCK_2030 = 1000 * (SF(4.5) + SF(3.5) + SF(2.5) + SF(1.5) + SF(0.5))
LONG_HISTORY = one_fleet({"inflow_history": {"2026": 1000, "2028": 1000}}, start_year=2029, end_year=2030)


def test_inflow_history_longer_than_the_run_inflow_driven():
    res = evaluate_dict(LONG_HISTORY)
    stock = res["stock_units"].sel(fleet="servers").values
    outflow = res["outflow_units"].sel(fleet="servers").values
    assert_allclose(stock, [STOCK_2029, STOCK_2030], rtol=1e-12)
    assert_allclose(outflow, [STOCK_2028 + 1000 - STOCK_2029, STOCK_2029 + 1000 - STOCK_2030], rtol=1e-12)
    assert_allclose(stock, [2926.98, 2993.79], atol=0.01)  # the values of the issue
    assert_allclose(outflow, [691.46, 933.19], atol=0.01)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_inflow_history_longer_than_the_run_on_each_engine_and_in_summary_mode(backend: str):
    if backend == "cpu" and not host.status()[0]:
        pytest.skip(f"compiled CPU engine unavailable: {host.status()[1]}")
    grid = grid_of(LONG_HISTORY)
    full = ewaste.evaluate(grid, backend=backend)
    assert_allclose(full["stock_units"].sel(fleet="servers").values, [STOCK_2029, STOCK_2030], rtol=1e-12)
    summary = ewaste.evaluate(grid, backend=backend, summary=True)
    outflow = STOCK_2028 + 1000 - STOCK_2029 + STOCK_2029 + 1000 - STOCK_2030  # 2029 and 2030
    assert_allclose(summary["outflow_units_cumulative_target"].sel(fleet="servers"), outflow, rtol=1e-12)


def test_inflow_history_longer_than_the_run_stock_driven():
    raw = copy.deepcopy(LONG_HISTORY)
    fleet = raw["fleets"]["servers"]
    del fleet["inflow"]
    fleet.update(driver="stock", stock={"2029": STOCK_2029, "2030": STOCK_2030})
    res = evaluate_dict(raw)
    assert_allclose(res["inflow_units"].sel(fleet="servers").values, [1000, 1000], rtol=1e-9)
    assert_allclose(res["outflow_units"].sel(fleet="servers").values, [691.46, 933.19], atol=0.01)


def test_quarterly_history_of_twelve_steps_before_a_run_of_four():
    # 400 a year put in service 2026-2028 (100 a quarter), none after; a 10-year life keeps all 1200
    raw = one_fleet(
        {"inflow": 0, "inflow_history": {"2026": 400}, "lifetime": {"type": "fixed", "mean": 10}},
        start_year=2029,
        end_year=2029,
        step="quarter",
    )
    assert_allclose(evaluate_dict(raw)["stock_units"].values, 1200.0, rtol=1e-12)


def test_validate_and_run_accept_a_long_history(tmp_path: Path):
    path = tmp_path / "history.toml"
    path.write_text(
        '[scenario]\nstart_year = 2029\nend_year = 2030\n[fleets.servers]\ndriver = "inflow"\ninflow = 1000\n'
        'inflow_history = { 2026 = 1000, 2028 = 1000 }\nlifetime = { type = "normal", mean = 3, std = 1 }\nmass = 100\n'
    )
    assert cli("validate", str(path)).returncode == 0
    out = cli("run", str(path), "--backend", "numpy")
    assert out.returncode == 0, out.stderr


# ----------------------------------------------------------------------------------------------
# 2. A grid holds no NaN: defaults filled when it is built, recorded; NaN in a saved grid refused
# ----------------------------------------------------------------------------------------------

TWO_FLEETS = {
    "scenario": {"start_year": 2020, "end_year": 2026},
    "fleets": {
        "servers": {
            "driver": "inflow",
            "inflow": 100,
            "lifetime": {"type": "normal", "mean": 3, "std": 1},
            "mass": 100,
            "power": {"2020": 5, "2026": 8},
            "utilisation": {"2020": 0.5, "2026": 0.8},
            "composition": {"steel": 0.5, "circuit_boards": 0.1},
            "pcb_metal_content": {"Au": 100},
        },
        "racks": {
            "driver": "stock",
            "stock": 50,
            "lifetime": {"type": "weibull", "shape": 2, "scale": 4},
            "mass": 1000,
        },
    },
    "recycling": {"preprocessing_yield": {"steel": 0.5}},
}


def test_grid_from_toml_holds_defaults_not_nan():
    grid = grid_of(TWO_FLEETS)
    for name, da in grid.data_vars.items():
        if da.dtype.kind == "f":
            assert not np.isnan(da.values).any(), name
    racks = grid.sel(fleet="racks")
    assert_allclose(racks["utilisation"].values, 1.0)  # the sourced defaults, in the grid itself
    assert_allclose(racks["power"].values, 0.0)
    assert_allclose(racks["composition"].sel(material="other").values, 1.0)
    assert_allclose(racks["pcb_metal_content"].values, 0.0)
    assert float(grid["collection_rate"]) == 0.223 and float(grid["pue"]) == 1.56
    used = json.loads(grid.attrs["defaults_used"])
    assert used["utilisation"]["where"] == ["racks"] and used["utilisation"]["value"] == 1.0
    assert used["power"]["where"] == ["racks"] and used["composition"]["where"] == ["racks"]
    assert used["collection_rate"]["where"] == "all" and "E-waste Monitor" in used["collection_rate"]["source"]
    assert used["preprocessing_yield"]["where"]["other"]["value"] == 0.0
    assert "steel" not in used["preprocessing_yield"]["where"]
    assert used["metal_preprocessing_yield"]["where"]["Au"]["value"] == 0.256  # Chancerel et al. (2009)


def test_results_keep_the_grids_record_of_defaults_and_count_no_metal_for_a_fleet_without():
    res = evaluate_dict(TWO_FLEETS)
    used = json.loads(res.attrs["defaults_used"])
    assert used["utilisation"]["where"] == ["racks"] and used["pue"]["where"] == "all"
    assert used["endprocessing_yield"]["where"]["steel"]["value"] == 1.0
    metal = res["metal_in_ewaste"].sel(fleet="racks")  # no metals given: none counted (was NaN)
    assert float(abs(metal).max()) == 0.0


def test_fill_defaults_fills_only_absent_variables_and_drops_edited_defaults():
    grid = grid_of(TWO_FLEETS).drop_vars(["pue", "grid_intensity"])
    grid["power"] = grid["power"].where(grid["fleet"] != "racks", 2.0)  # edited: no longer the default 0
    filled, used = fill_defaults(grid)
    assert float(filled["pue"]) == 1.56 and float(filled["grid_intensity"]) == 475.0
    assert used["pue"]["where"] == "all" and used["grid_intensity"]["where"] == "all"
    assert "power" not in used  # the grid recorded power for racks; that value was edited since
    assert used["utilisation"]["where"] == ["racks"]
    assert_allclose(filled["power"].sel(fleet="racks").values, 2.0)


def test_a_grid_without_the_material_other_gets_the_remainder():
    """A grid edited in Python without the material 'other' (composition and yields): 'other' is added
    with the remainder of each unit's mass and the yields of a material without one (0, recorded), so
    the materials still add up to the e-waste (they did not: the run stopped on a balance error)."""
    grid = grid_of(TWO_FLEETS)
    named = [m for m in grid["material"].values if m != "other"]
    res = ewaste.evaluate(grid.sel(material=named), backend="numpy")
    full = ewaste.evaluate(grid, backend="numpy")
    by_material = res["ewaste_by_material"]
    assert by_material["material"].values[-1] == "other"
    assert_allclose(by_material.sum("material").values, res["ewaste_generated"].values, rtol=1e-12)
    assert_allclose(by_material.sel(material=named).values, full["ewaste_by_material"].sel(material=named).values)
    share = 1.0 - grid["composition"].sel(material=named).sum("material")  # the mass no named material takes
    assert_allclose(
        by_material.sel(material="other").values,
        (res["ewaste_generated"] * share).transpose(*by_material.sel(material="other").dims).values,
        rtol=1e-12,
    )
    used = json.loads(res.attrs["defaults_used"])
    assert used["preprocessing_yield"]["where"]["other"]["value"] == 0.0
    assert_allclose(res["recovered"].values, full["recovered"].values, rtol=1e-12)


@pytest.fixture
def saved_grid(tmp_path: Path) -> Path:
    path = tmp_path / "grid.nc"
    save_grid(grid_of(TWO_FLEETS, str(tmp_path / "two.toml")), path)
    return path


def test_a_saved_grid_runs_with_the_same_defaults(saved_grid: Path):
    from_toml = evaluate_dict(TWO_FLEETS)
    from_nc = ewaste.evaluate(load_grid(saved_grid), backend="numpy")
    assert json.loads(from_nc.attrs["defaults_used"]) == json.loads(from_toml.attrs["defaults_used"])
    assert_allclose(from_nc["ewaste_generated"].values, from_toml["ewaste_generated"].values, rtol=1e-12)


@pytest.mark.parametrize(
    ("variable", "at", "field", "where"),
    [
        ("utilisation", {"fleet": "servers", "time": 2025.0}, "fleets.servers.utilisation", "time=2025"),
        ("power", {"fleet": "servers", "time": 2023.0}, "fleets.servers.power", "time=2023"),
        ("mass", {"fleet": "racks"}, "fleets.racks.mass", "fleet=racks"),
        ("preprocessing_yield", {"material": "steel"}, "recycling.preprocessing_yield.steel", "material=steel"),
        ("metal_endprocessing_yield", {"metal": "Au"}, "recycling.endprocessing_yield.Au", "metal=Au"),
        ("lifetime_mean", {"fleet": "servers"}, "fleets.servers.lifetime.mean", "fleet=servers"),
    ],
)
def test_nan_in_a_saved_grid_is_refused_where_it_is(saved_grid: Path, variable, at, field, where):
    with xr.open_dataset(saved_grid) as g:
        grid = g.load()
    if "time" in at and "time" not in grid[variable].dims:
        grid[variable] = grid[variable].expand_dims(time=grid["time"]).copy()
    grid[variable].loc[at] = np.nan
    edited = saved_grid.with_name("edited.nc")
    grid.to_netcdf(edited)
    with pytest.raises(InputError) as info:
        load_grid(edited)
    assert info.value.source == str(edited) and info.value.field == field
    assert where in info.value.message and "NaN" in info.value.message
    if "fleet" in at:
        assert f"fleet={at['fleet']}" in info.value.message


def test_nan_in_a_saved_grid_one_line_from_the_command(saved_grid: Path):
    with xr.open_dataset(saved_grid) as g:
        grid = g.load()
    grid["utilisation"].loc[{"fleet": "servers", "time": 2025.0}] = np.nan
    edited = saved_grid.with_name("nan.nc")
    grid.to_netcdf(edited)
    for command in ("validate", "run"):
        out = cli(command, str(edited))
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert f"{edited}: fleets.servers.utilisation: NaN at fleet=servers, time=2025" in out.stderr


def test_show_lists_the_defaults_once(tmp_path: Path):
    from ewaste.outputs.show import describe_scenario

    text = describe_scenario(grid_of(TWO_FLEETS))
    racks = text.split("fleet racks")[1].split("global")[0]
    assert "utilisation" not in racks and "power" not in racks and "lifetime_mean" not in racks
    assert "default utilisation = 1.0 (fleets racks)" in text
    assert "default power = 0.0 (fleets racks)" in text
    assert "default preprocessing_yield[other] = 0" in text and "default pue = 1.56" in text


# ----------------------------------------------------------------------------------------------
# 3. Flows given as totals per period (basis = "total")
# ----------------------------------------------------------------------------------------------


def inflow_grid(inflow, step: str = "quarter", start: int = 2024, end: int = 2026) -> xr.Dataset:
    return grid_of(one_fleet({"inflow": inflow}, start_year=start, end_year=end, step=step))


def per_step(grid: xr.Dataset, var: str = "inflow") -> np.ndarray:
    """Units put in service in each step: the grid's rate (unit/yr) times the step length."""
    dt = {"year": 1.0, "quarter": 0.25, "month": 1 / 12}[grid.attrs["step"]]
    return grid[var].sel(fleet="servers").values * dt


YEARLY = {"2024": 400, "2025": 800, "2026": 800}


def test_rate_basis_is_the_rate_at_the_middle_of_each_period():
    # quarters read the straight line through (2024.5, 400), (2025.5, 800): yearly sums 450, 750, 800
    assert_allclose(per_step(inflow_grid(YEARLY)).reshape(3, 4).sum(1), [450, 750, 800], rtol=1e-12)
    stepped = per_step(inflow_grid({**YEARLY, "interpolation": "step"})).reshape(3, 4).sum(1)
    assert_allclose(stepped, [400, 600, 800], rtol=1e-12)  # the change takes effect mid-2025
    assert_allclose(per_step(inflow_grid(YEARLY, "year")), [400, 800, 800], rtol=1e-12)


def test_totals_are_kept_by_quarterly_steps_with_a_linear_shape():
    quarters = per_step(inflow_grid({**YEARLY, "basis": "total"}))
    # by hand: the line through the average rates at mid-year (400 flat before mid-2024, to 800 at
    # mid-2025, flat after), integrated over each quarter, rescaled year by year to the year's total
    q2024 = np.array([100, 100, 0.25 * (400 + 500) / 2, 0.25 * (500 + 600) / 2])
    q2025 = np.array([0.25 * (600 + 700) / 2, 0.25 * (700 + 800) / 2, 200, 200])
    expected = np.concatenate([q2024 * 400 / q2024.sum(), q2025 * 800 / q2025.sum(), [200] * 4])
    assert_allclose(quarters, expected, rtol=1e-12)
    assert_allclose(quarters.reshape(3, 4).sum(1), [400, 800, 800], rtol=1e-12)


@pytest.mark.parametrize("interpolation", ["linear", "log", "step"])
@pytest.mark.parametrize("step", ["year", "quarter", "month"])
def test_every_given_year_keeps_its_total(interpolation: str, step: str):
    spec = {"value": YEARLY, "basis": "total", "interpolation": interpolation}  # the full form takes it too
    steps = per_step(inflow_grid(spec, step))
    assert_allclose(steps.reshape(3, -1).sum(1), [400, 800, 800], rtol=1e-12)
    res = ewaste.evaluate(inflow_grid(spec, step), backend="numpy")  # and the results' yearly inflow
    assert_allclose(res["inflow_units_annual"].sel(fleet="servers").values, [400, 800, 800], rtol=1e-12)
    if interpolation == "step":  # each year's average rate holds through the year
        assert_allclose(steps, np.repeat([400, 800, 800], steps.size // 3) / (steps.size // 3), rtol=1e-12)


def test_quarter_totals_with_a_gap_and_monthly_steps():
    months = per_step(inflow_grid({"2025Q1": 300, "2025Q3": 900, "basis": "total"}, "month", 2025, 2025))
    assert_allclose(months[0:3].sum(), 300, rtol=1e-12)
    assert_allclose(months[6:9].sum(), 900, rtol=1e-12)
    # Q2, between the given quarters: the line from 1200/yr at mid-Q1 to 3600/yr at mid-Q3, as it is
    line = np.interp([2025.25, 2025.5], [2025.125, 2025.625], [1200, 3600])
    assert_allclose(months[3:6].sum(), 0.25 * line.mean(), rtol=1e-12)
    assert_allclose(months[9:12], 300, rtol=1e-12)  # after the last quarter its rate (3600/yr) holds


def test_month_totals_with_yearly_steps():
    # January and December give 10 each; the months between run at the same rate (120/yr)
    years = per_step(inflow_grid({"2025-01": 10, "2025-12": 10, "basis": "total"}, "year", 2024, 2026))
    assert_allclose(years, [120, 120, 120], rtol=1e-12)


def test_history_totals():
    raw = one_fleet(
        {"inflow": 0, "inflow_history": {"value": {"2027Q3": 100}, "basis": "total"}}, start_year=2029, end_year=2030
    )
    # nothing before 2027Q3; 100 in it and, the last rate holding, 100 in Q4 and 400 in 2028
    assert_allclose(grid_of(raw)["inflow_history"].sel(fleet="servers").values, [200, 400], rtol=1e-12)
    raw["fleets"]["servers"]["inflow_history"] = {"2026": 1000, "2028": 1000, "basis": "total"}
    raw["fleets"]["servers"]["inflow"] = 1000
    assert_allclose(evaluate_dict(raw)["stock_units"].values[0], [STOCK_2029, STOCK_2030], rtol=1e-12)


def test_a_sweep_of_totals():
    grid = inflow_grid({"values": [YEARLY, {"2024": 100, "2026": 300}], "basis": "total", "dim": "case"}, "quarter")
    sums = (grid["inflow"].sel(fleet="servers") * 0.25).groupby("year").sum().transpose("case", "year").values
    assert_allclose(sums[0], [400, 800, 800], rtol=1e-12)
    assert_allclose(sums[1][[0, 2]], [100, 300], rtol=1e-12)


@pytest.mark.parametrize(
    ("fleet", "field", "words"),
    [
        ({"driver": "stock", "stock": {"2024": 1, "basis": "total"}}, "stock.basis", "is for flows"),
        ({"mass": {"value": {"2024": 1}, "basis": "total"}}, "mass.basis", "is for flows"),
        (
            {"lifetime": {"type": "normal", "mean": {"2024": 3, "basis": "total"}, "std": 1}},
            "lifetime.mean.basis",
            "is for flows",
        ),
        ({"inflow": {"value": 400, "basis": "total"}}, "inflow", "a total belongs to a period"),
        ({"inflow": {"2024": 400, "basis": "totals"}}, "inflow.basis", "did you mean 'total'"),
        ({"inflow": {"2025": 400, "2025Q3": 100, "basis": "total"}}, "inflow", "2025 and 2025Q3 overlap"),
        ({"inflow": {"value": {"2025": 1}, "basis": "total", "units": "unit/quarter"}}, "inflow.units", "no units"),
    ],
)
def test_totals_refused_where_they_mean_nothing(fleet: dict, field: str, words: str):
    raw = one_fleet(fleet)
    if fleet.get("driver") == "stock":
        del raw["fleets"]["servers"]["inflow"]
    error = refusal(raw)
    assert error.field == f"fleets.servers.{field}" and words in error.message


# ----------------------------------------------------------------------------------------------
# 4. Validation says what a run will say, in the words of the scenario file
# ----------------------------------------------------------------------------------------------


def stock_fleet(lifetime: dict, **scenario) -> dict:
    return one_fleet({"driver": "stock", "stock": 1000, "inflow": None, "lifetime": lifetime}, **scenario)


def first_step_refusal(raw: dict) -> InputError:
    del raw["fleets"]["servers"]["inflow"]
    return refusal(raw)


def engine_words(first_step: float) -> str:
    with pytest.raises(InputError) as info:
        require_first_step(first_step)
    return info.value.message


@pytest.mark.parametrize(
    ("lifetime", "scenario", "first_step"),
    [
        # 'middle': a cohort is half a step old at the end of its first step; fixed 0.4 yr is gone by then
        ({"type": "fixed", "mean": 0.4}, {}, 0.0),
        ({"type": "normal", "mean": 0.3, "std": 0.02}, {}, scipy.stats.norm(0.3, 0.02).sf(0.5)),
        # by cohort: the 2025 cohorts have a mean of 0.3 yr, the earlier ones are fine
        ({"type": "normal", "mean": {"2020": 5, "2025": 0.3}, "std": 0.02}, {}, scipy.stats.norm(0.3, 0.02).sf(0.5)),
        # tabulated: the share left after lag 0 is 1 - w0
        ({"type": "tabulated", "weights": [0.9995, 0.0005]}, {}, 1 - 0.9995),
        ({"type": "tabulated", "weights": [[0.5, 0.5], [0.9995, 0.0005]]}, {}, 1 - 0.9995),
    ],
)
def test_stock_driven_fleet_that_cannot_be_solved_is_refused_by_validation(lifetime, scenario, first_step):
    error = first_step_refusal(stock_fleet(lifetime, **scenario))
    assert error.source == "test.toml" and error.field == "fleets.servers.lifetime"
    assert error.message == engine_words(first_step)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize(
    ("lifetime", "first_step"),
    [
        ({"type": "fixed", "mean": 0.4}, 0.0),
        ({"type": "normal", "mean": {"2020": 5, "2025": 0.3}, "std": 0.02}, scipy.stats.norm(0.3, 0.02).sf(0.5)),
        ({"type": "tabulated", "weights": [[0.5, 0.5], [0.9995, 0.0005]]}, 1 - 0.9995),
    ],
)
def test_evaluate_leaves_the_first_step_to_the_engine_which_refuses_alike(backend, lifetime, first_step):
    """evaluate validates without the first-step check (the engines make it as they run): the same
    file, field and words as validation's."""
    raw = stock_fleet(lifetime)
    del raw["fleets"]["servers"]["inflow"]
    with pytest.raises(InputError) as info:
        ewaste.evaluate(scenario_to_grid(raw, "test.toml"), backend)
    error = info.value
    assert (error.source, error.field) == ("test.toml", "fleets.servers.lifetime")
    assert error.message == engine_words(first_step)


@pytest.mark.parametrize(
    ("lifetime", "first_step"),
    [
        ({"type": "normal", "mean": [5, 4, 3, 0.3], "std": [0.03, 0.02]}, scipy.stats.norm(0.3, 0.02).sf(0.5)),
        ({"type": "tabulated", "weights": [[0.5, 0.5], [0.6, 0.4], [0.9995, 0.0005]]}, 1 - 0.9995),
    ],
)
def test_sweeps_are_checked_a_block_at_a_time(lifetime, first_step, monkeypatch):
    """Validation evaluates the parameters' combinations in blocks (bounded memory); the worst of
    them, in the last block, is still found (here blocks of 2 combinations)."""
    monkeypatch.setattr(validate_module, "CHECK_BLOCK", 2)
    error = first_step_refusal(stock_fleet(lifetime))
    assert error.field == "fleets.servers.lifetime" and error.message == engine_words(first_step)


def test_weibull_mean_of_a_hundredth_of_a_year_is_refused_by_validation():
    error = first_step_refusal(stock_fleet({"type": "weibull", "mean": 0.01, "std": 0.005}))
    assert error.field == "fleets.servers.lifetime" and "survives the step it enters service" in error.message


@pytest.mark.parametrize(
    ("lifetime", "scenario"),
    [
        ({"type": "fixed", "mean": 0.4}, {"age_convention": "end"}),  # no age in the step of entry
        ({"type": "fixed", "mean": 0.4}, {"step": "quarter"}),  # an eighth of a year old at the first quarter's end
        ({"type": "tabulated", "weights": [0.998, 0.002]}, {}),
    ],
)
def test_solvable_stock_driven_fleets_pass(lifetime, scenario):
    raw = stock_fleet(lifetime, **scenario)
    del raw["fleets"]["servers"]["inflow"]
    res = evaluate_dict(raw)
    assert_allclose(res["stock_units"].values, 1000, rtol=1e-9)


def test_inflow_driven_and_wang2024_fleets_need_no_first_step_survival():
    grid_of(one_fleet({"lifetime": {"type": "fixed", "mean": 0.4}}))  # an inflow-driven fleet: nothing to solve


SHORT = """[scenario]
start_year = 2020
end_year = 2025

[fleets.servers]
driver = "stock"
stock = 1000
lifetime = { type = "fixed", mean = LIFE }
mass = 100
"""


def test_validate_prints_the_line_run_prints(tmp_path: Path):
    path = tmp_path / "short.toml"
    path.write_text(SHORT.replace("LIFE", "0.4"))
    lines = [cli(command, str(path)) for command in ("validate", "run")]
    assert [out.returncode for out in lines] == [2, 2]
    assert lines[0].stderr == lines[1].stderr and len(lines[0].stderr.strip().splitlines()) == 1
    assert f"{path}: fleets.servers.lifetime: only 0 of a cohort survives" in lines[0].stderr


def test_errors_about_a_saved_grid_name_that_grid(tmp_path: Path):
    toml = tmp_path / "built-from.toml"
    toml.write_text(SHORT.replace("LIFE", "3"))
    grid_nc = tmp_path / "edited.nc"
    save_grid(load_grid(toml), grid_nc)
    with xr.open_dataset(grid_nc) as g:
        grid = g.load()
    grid["lifetime_mean"][:] = 0.4
    grid.to_netcdf(grid_nc, mode="w")
    lines = [cli(command, str(grid_nc)) for command in ("validate", "run")]
    assert [out.returncode for out in lines] == [2, 2] and lines[0].stderr == lines[1].stderr
    assert f"{grid_nc}: fleets.servers.lifetime: only 0 of a cohort survives" in lines[0].stderr
    assert "built-from.toml" not in lines[0].stderr


@pytest.mark.parametrize(
    ("variable", "value", "field", "words"),
    [
        ("lifetime_mean", -3.0, "fleets.servers.lifetime.mean", "value -3 below the minimum 1e-06 yr"),
        ("preprocessing_yield", 1.5, "recycling.preprocessing_yield.steel", "value 1.5 above the maximum 1"),
        ("metal_preprocessing_yield", 2.0, "recycling.preprocessing_yield.Au", "value 2 above the maximum 1"),
        ("composition", 2.0, "fleets.servers.composition.steel", "value 2 above the maximum 1"),
    ],
)
def test_grid_errors_name_the_toml_path(tmp_path: Path, variable, value, field, words):
    raw = copy.deepcopy(TWO_FLEETS)
    raw["fleets"]["servers"]["lifetime"] = {"type": "normal", "mean": 3, "std": 1}
    grid = grid_of(raw)
    label = {"preprocessing_yield": {"material": "steel"}, "metal_preprocessing_yield": {"metal": "Au"}}
    at = label.get(variable, {"fleet": "servers", **({"material": "steel"} if variable == "composition" else {})})
    grid[variable].loc[at] = value
    with pytest.raises(InputError) as info:
        validate(grid, "edited.nc")
    assert (info.value.source, info.value.field) == ("edited.nc", field) and words in info.value.message


def test_a_weibull_unused_by_one_fleet_is_not_range_checked_for_it():
    # racks read shape and scale, servers mean and std; each holds 0 in the other's (not read, not refused)
    grid = grid_of(TWO_FLEETS)
    assert float(grid["lifetime_shape"].sel(fleet="servers")) == 0.0
    assert float(grid["lifetime_mean"].sel(fleet="racks")) == 0.0


def test_the_range_is_checked_where_a_fleet_reads_the_value_and_nan_everywhere():
    """The range applies to the fleets that read a parameter (racks read the Weibull's shape, servers
    do not); a NaN is refused in any fleet, read or not."""
    grid = grid_of(TWO_FLEETS)
    grid["lifetime_shape"].loc[{"fleet": "servers"}] = 1e9  # servers read mean and std: not checked
    validate(grid, "edited.nc")
    grid["lifetime_shape"].loc[{"fleet": "racks"}] = 1e9
    with pytest.raises(InputError, match="above the maximum") as info:
        validate(grid, "edited.nc")
    assert info.value.field == "fleets.racks.lifetime.shape"
    grid = grid_of(TWO_FLEETS)
    grid["lifetime_shape"].loc[{"fleet": "servers"}] = np.nan
    with pytest.raises(InputError, match="NaN at fleet=servers"):
        validate(grid, "edited.nc")


def test_units_of_a_grid_variable_named_as_in_the_file():
    grid = grid_of(TWO_FLEETS)
    grid["lifetime_mean"].attrs["units"] = "furlong"
    with pytest.raises(InputError) as info:
        validate(grid, "edited.nc")
    assert info.value.field == "fleets.*.lifetime.mean" and "units 'furlong' not accepted" in info.value.message


@pytest.mark.parametrize(
    "lifetime",
    [
        {"type": "normal", "mean": -3, "std": 1},
        {"type": "weibull", "shape": 500, "scale": 3},
        {"type": "weibull", "mean": 5e-7, "std": 5e-7},
        {"type": "tabulated", "weights": [0.7, 0.7]},
    ],
)
def test_toml_errors_never_name_internal_variables(lifetime: dict):
    error = refusal(one_fleet({"lifetime": lifetime}))
    assert error.field.startswith("fleets.servers.lifetime") and "lifetime_" not in str(error)


def test_byte_order_mark_named_as_such(tmp_path: Path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + SHORT.replace("LIFE", "3").encode())
    out = cli("validate", str(path))
    assert out.returncode == 2
    assert out.stderr.strip() == f"ewaste: error: {path}: starts with a UTF-8 byte-order mark; save it without one"


# ----------------------------------------------------------------------------------------------
# 5. Inputs that used to break the program: refused in one line, by validation
# ----------------------------------------------------------------------------------------------

GOOD = SHORT.replace("LIFE", "3")


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("{ a = " * 3000 + "1" + " }" * 3000, "fleets.servers.power"),  # deep enough to exhaust tomllib
        ("[" * 3000 + "1" + "]" * 3000, "fleets.servers.power"),
        ("{ values = [" * 40 + "1" + "] }" * 40, "fleets.servers.power"),  # sweeps nested 40 deep
    ],
)
def test_deep_nesting_is_one_line(tmp_path: Path, value: str, field: str):
    path = tmp_path / "deep.toml"
    path.write_text(GOOD + f"power = {value}\n")
    for command in ("validate", "run"):
        out = cli(command, str(path))
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr[-500:]
        assert f"{path}: {field}: values nested more than 32 levels deep" in out.stderr


def test_deep_nesting_in_a_scenario_given_as_tables():
    deep: object = 1
    for _ in range(40):
        deep = {"values": [deep]}
    error = refusal(one_fleet({"power": deep}))
    assert error.field == "fleets.servers.power" and "nested more than 32 levels" in error.message


def test_strings_and_comments_do_not_count_as_nesting(tmp_path: Path):
    path = tmp_path / "quoted.toml"
    brackets = "[" * 50
    path.write_text(GOOD.replace("[scenario]", f"# {brackets}\n[scenario]\ndescription = '{brackets}'"))
    assert load_grid(path).attrs["description"] == brackets


def test_too_many_sweep_dimensions():
    composition = {f"m{i}": [0.01] for i in range(30)}  # each a sweep of one value: a dimension each
    error = refusal(one_fleet({"composition": composition}))
    assert error.field == "fleets.servers.composition.m29"
    assert error.message == "30 sweep dimensions, more than the 29 a grid can have"
    grid = grid_of(one_fleet({"composition": {f"m{i}": [0.01] for i in range(29)}}))
    assert len(grid.dims) == 29 + 3  # and fleet, time, material


def test_too_many_grid_points():
    error = refusal(one_fleet({"composition": {f"m{i}": [0.01 * k for k in range(1, 11)] for i in range(16)}}))
    assert error.field == "fleets.servers.composition.m15" and "1e+16 grid points, more than 1e+15" in error.message


BAD_NAMES = ["a/b", "..", ".", "", " lead", "trail ", "tab\tbed", "new\nline", "__reserved", "9lives", "x" * 256]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_dimension_names_netcdf_and_zarr_cannot_store(name: str):
    error = refusal(one_fleet({"mass": {"values": [1, 2], "dim": name}}))
    assert error.field == "fleets.servers.mass.dim" and "cannot name a dimension" in error.message
    error = refusal({**one_fleet({"mass": {"values": [1, 2], "dim": name}}), "dimensions": {name: ["a", "b"]}})
    assert error.field == f"dimensions.{name}"


def test_a_sweep_named_after_a_material_with_a_space_asks_for_a_name():
    error = refusal(one_fleet({"composition": {"rare earths": [0.01, 0.02]}}))
    assert error.field == "fleets.servers.composition.rare earths"
    assert 'give dim = "NAME"' in error.message
    grid = grid_of(one_fleet({"composition": {"rare earths": {"values": [0.01, 0.02], "dim": "rare_earths"}}}))
    assert grid.sizes["rare_earths"] == 2


@pytest.mark.parametrize("name", ["a/b", " x", "__x"])
def test_a_grid_built_in_python_with_a_bad_dimension_name(name: str):
    grid = grid_of(one_fleet({}))
    grid["pue"] = xr.DataArray([1.1, 1.2], dims=name, attrs={"units": "1"})
    with pytest.raises(InputError, match="cannot name a dimension"):
        ewaste.evaluate(grid, backend="numpy")


def test_good_dimension_names_pass():
    for name in ("case", "Case_2", "rcp4.5", "low-high", "_x"):
        assert name in grid_of(one_fleet({"mass": {"values": [1, 2], "dim": name}})).dims
