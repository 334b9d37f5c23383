"""The capital side: per-unit book values against the closed forms of each depreciation method, single
cohorts against hand-worked schedules, the cohort identity capex = depreciation + written off + book
value held in every regime, the economic view, leases, embodied emissions, GPUs, and bad input."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest

import ewaste
from ewaste.errors import InputError
from ewaste.inputs.scenario import scenario_to_grid
from ewaste.inputs.validate import validate
from ewaste.model.depreciation import book_share, mean_life, resale_share

PRICE = 300_000.0


def run(raw: dict, **options) -> object:
    raw = copy.deepcopy(raw)
    return ewaste.evaluate(validate(scenario_to_grid(raw, "f.toml"), "f.toml"), backend="numpy", **options)


def one_cohort(life: float, method: str = "straight-line", accounting: float = 6.0, **finance) -> dict:
    """1,000 units bought in 2020 (inflow-driven, none after), fixed lifetime `life`, 'middle' ages."""
    return {
        "scenario": {"start_year": 2020, "end_year": 2032},
        "finance": {"currency": "USD", "price_year": 2024},
        "fleets": {
            "s": {
                "driver": "inflow",
                "inflow": {"2020": 1000, "2021": 0, "2032": 0},
                "lifetime": {"type": "fixed", "mean": life},
                "mass": 100,
                "gpus_per_unit": 8,
                "embodied": 2544,
                "finance": {"price": PRICE, "accounting_life": accounting, "depreciation": method, **finance},
            }
        },
    }


# finance.md section 6: C = 300k, S = 0, L = 6, at 3 years: SL 150k, double-declining 88.9k, SYD 85.7k
@pytest.mark.parametrize(
    ("method", "at_3"),
    [("straight-line", 0.5), ("declining-balance", (2 / 3) ** 3), ("sum-of-years-digits", 6 / 21)],
)
def test_book_value_at_three_years_is_the_reference_example(method, at_3):
    assert book_share(method, np.array(3.0), np.array(6.0), np.array(0.0)) == pytest.approx(at_3, rel=1e-12)


def test_declining_balance_switches_to_straight_line_and_ends_at_salvage():
    # L = 5, k = 2: 1, 0.6, 0.36, 0.216, then straight-line on the remainder: 0.108, 0
    ages = np.arange(6.0)
    got = book_share("declining-balance", ages, np.array(5.0), np.array(0.0))
    np.testing.assert_allclose(got, [1, 0.6, 0.36, 0.216, 0.108, 0.0], atol=1e-15)
    with_salvage = book_share("declining-balance", ages, np.array(5.0), np.array(0.1))
    assert with_salvage[-1] == pytest.approx(0.1) and np.all(np.diff(with_salvage) <= 0)
    # within a year the value falls linearly
    assert book_share("declining-balance", np.array(0.5), np.array(5.0), np.array(0.0)) == pytest.approx(0.8)


def test_straight_line_with_salvage_and_beyond_the_life():
    got = book_share("straight-line", np.array([0.0, 2.0, 4.0, 9.0]), np.array(4.0), np.array(0.2))
    np.testing.assert_allclose(got, [1.0, 0.6, 0.2, 0.2])


def test_resale_and_mean_life_closed_forms():
    assert resale_share(np.array(2.0), np.array(0.67)) == pytest.approx(0.4489)
    weibull = mean_life("weibull", {"shape": np.array([[2.0]]), "scale": np.array([[4.0]])}, 1.0)
    assert float(weibull.squeeze()) == pytest.approx(4.0 * np.sqrt(np.pi) / 2, rel=1e-12)  # scale * Gamma(1.5)
    tab = mean_life("tabulated", {"cumulative": np.array([[0.0], [0.5], [1.0]])}, 0.25)
    assert float(tab.squeeze()) == pytest.approx(0.25 * (1.0 + 0.5))


@pytest.mark.parametrize(
    ("method", "share_at_retirement"),
    [
        ("straight-line", 1 - 3.5 / 6),
        ("declining-balance", 0.5 * ((2 / 3) ** 3 + (2 / 3) ** 3 * 2 / 3)),  # between years 3 and 4
        ("sum-of-years-digits", 1 - 16.5 / 21),
    ],
)
def test_a_single_cohort_matches_its_closed_form(method, share_at_retirement):
    r = run(one_cohort(3, method)).sel(fleet="s")
    # fixed 3-year life, 'middle' ages: the units retire at the end of 2023, at age 3.5
    written = r["written_off"].sel(time=2023.0)
    assert float(written) == pytest.approx(1000 * PRICE * share_at_retirement, rel=1e-12)
    assert float(r["written_off"].sum()) == pytest.approx(float(written), rel=1e-12)
    assert float(r["depreciation"].sum()) == pytest.approx(1000 * PRICE * (1 - share_at_retirement), rel=1e-12)
    assert float(r["capex"].sum()) == 1000 * PRICE
    resale = 1000 * PRICE * 0.67**3.5
    assert float(r["resale_value"].sum()) == pytest.approx(resale, rel=1e-12)
    loss = max(1000 * PRICE * share_at_retirement - resale, 0.0)
    assert float(r["stranded_value"].sum()) == pytest.approx(loss, rel=1e-12)
    assert float(r["net_book_value"].isel(time=-1)) == 0.0


def test_the_worked_example_of_the_docs():
    """docs/finance.md, "A single cohort by hand"."""
    r = run(one_cohort(3)).sel(fleet="s")
    years = {2020.0: 25e6, 2021.0: 50e6, 2022.0: 50e6, 2023.0: 50e6}
    for t, dep in years.items():
        assert float(r["depreciation"].sel(time=t)) == pytest.approx(dep, rel=1e-12)
    assert float(r["written_off"].sel(time=2023.0)) == pytest.approx(125e6, rel=1e-12)
    assert float(r["stranded_value"].sum()) / 1e6 == pytest.approx(51.1, abs=0.05)
    economic = 300e6 * (1 - 0.67**3) / 3
    assert float(r["depreciation_economic"].sel(time=2021.0)) == pytest.approx(economic, rel=1e-12)
    assert economic / 1e6 == pytest.approx(69.9, abs=0.05)
    assert float(r["deferred_depreciation"].sel(time=2022.0)) / 1e6 == pytest.approx(19.9, abs=0.05)
    ddb = run(one_cohort(3, "declining-balance")).sel(fleet="s")
    assert float(ddb["stranded_value"].sum()) / 1e6 == pytest.approx(0.2, abs=0.05)
    syd = run(one_cohort(3, "sum-of-years-digits")).sel(fleet="s")
    assert float(syd["gain_on_disposal"].sum()) / 1e6 == pytest.approx(9.6, abs=0.05)
    kt = r["embodied_emissions_amortised"] * 1e3
    np.testing.assert_allclose(
        kt.sel(time=[2020.0, 2021.0, 2022.0, 2023.0]), [2.544 / 6, 2.544 / 3, 2.544 / 3, 2.544 / 6]
    )


def test_nothing_is_stranded_when_every_unit_outlives_its_accounting_life():
    r = run(one_cohort(7, accounting=6)).sel(fleet="s")
    assert float(abs(r["written_off"]).max()) == 0.0 and float(abs(r["stranded_value"]).max()) == 0.0
    assert float(r["gain_on_disposal"].sum()) == pytest.approx(1000 * PRICE * 0.67**7.5, rel=1e-12)


def test_economic_view_equals_reported_where_the_books_use_the_economic_life():
    # straight-line over the mean life (3 yr) down to the resale value at that age: nothing deferred
    r = run(one_cohort(3, accounting=3, salvage=0.67**3)).sel(fleet="s")
    np.testing.assert_allclose(r["depreciation_economic"], r["depreciation"], rtol=1e-12, atol=1e-6)
    assert float(abs(r["deferred_depreciation"]).max()) < 1e-6
    longer = run(one_cohort(3, accounting=6)).sel(fleet="s")
    assert float(longer["deferred_depreciation"].sel(time=2021.0)) > 0  # the books spread it over 6 years


STOCK = {
    "scenario": {"start_year": 2020, "end_year": 2030, "negative_inflow": "correct"},
    "finance": {"currency": "EUR", "price_year": 2025},
    "fleets": {
        "s": {
            "driver": "stock",
            # the installed base shrinks in 2024: the correction retires cohorts early
            "stock": {"2020": 1000, "2023": 5000, "2024": 2000, "2030": 6000},
            "lifetime": {"type": "weibull", "shape": 2.0, "scale": {"2020": 3.0, "2030": 5.0}},
            "mass": 100,
            "power": 10,
            "embodied": 2500,
            "finance": {"price": {"2020": 200_000, "2030": 500_000}, "accounting_life": 5, "lease_price": 60_000},
        }
    },
}


@pytest.mark.parametrize("method", ["straight-line", "declining-balance", "sum-of-years-digits"])
@pytest.mark.parametrize("convention", ["middle", "end"])
def test_capex_is_depreciation_plus_written_off_plus_book_value_held(method, convention):
    raw = copy.deepcopy(STOCK)
    raw["scenario"]["age_convention"] = convention
    raw["fleets"]["s"]["finance"]["depreciation"] = method
    r = run(raw).sel(fleet="s")
    assert int(r["negative_inflow_steps"]) > 0
    accounted = float(r["depreciation"].sum() + r["written_off"].sum() + r["net_book_value"].isel(time=-1))
    assert accounted == pytest.approx(float(r["capex"].sum()), rel=1e-12)
    # written off = stranded - gain + resale, unit by unit
    lhs = r["written_off"].sum()
    rhs = r["stranded_value"].sum() - r["gain_on_disposal"].sum() + r["resale_value"].sum()
    assert float(lhs) == pytest.approx(float(rhs), rel=1e-12)
    assert r["capex"].attrs["units"] == "EUR" and r["capex"].attrs["price_year"] == 2025


def test_lease_cost_is_unit_years_times_the_lease_price():
    r = run(STOCK).sel(fleet="s")
    np.testing.assert_allclose(r["lease_cost"], r["in_service_units"] * 60_000, rtol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_leases_read_the_units_in_service_that_energy_converts_in_place(backend):
    """Energy turns the power in service into kWh in its own memory; the leases, which read the
    units in service of the same engine series after it, still get units x lease price."""
    raw = copy.deepcopy(STOCK)
    raw["fleets"]["s"]["power"] = 1.0  # a weight of one: the power in service is the units' own array
    grid = validate(scenario_to_grid(raw, "f.toml"), "f.toml")
    full = ewaste.evaluate(grid, backend=backend).sel(fleet="s")
    some = ewaste.evaluate(grid, backend=backend, outputs=["lease_cost", "energy"]).sel(fleet="s")
    np.testing.assert_allclose(some["lease_cost"], full["in_service_units"] * 60_000, rtol=1e-12)
    np.testing.assert_allclose(some["energy"], full["energy"], rtol=1e-12)
    kwh = full["in_service_units"] * 1.0 * float(grid["utilisation"].sel(fleet="s")) * float(grid["pue"]) * 8760
    np.testing.assert_allclose(some["energy"], kwh * 1e-9, rtol=1e-12)


def test_embodied_emissions_at_purchase_and_amortised_add_up_over_a_closed_cohort():
    r = run(one_cohort(3)).sel(fleet="s")
    purchase = 1000 * 2544 * 1e-9  # MtCO2e
    assert float(r["embodied_emissions"].sum()) == pytest.approx(purchase, rel=1e-12)
    assert float(r["embodied_emissions_amortised"].sum()) == pytest.approx(purchase, rel=1e-12)
    # amortised over the 3-year mean life: half a year's share in 2020 ('middle')
    assert float(r["embodied_emissions_amortised"].sel(time=2020.0)) == pytest.approx(purchase * 0.5 / 3, rel=1e-12)


def test_gpus_and_capital_ratios():
    r = run(one_cohort(3)).sel(fleet="s")
    np.testing.assert_allclose(r["stock_gpus"], 8 * r["stock_units"], rtol=1e-15)
    gpu_years = 8 * 1000 * 3.0  # a 3-year life at 'middle' ages: 0.5 + 1 + 1 + 0.5 years
    assert float(r["gpu_years_cumulative_target"]) == pytest.approx(gpu_years, rel=1e-12)
    assert float(r["capex_per_gpu_year_cumulative_target"]) == pytest.approx(1000 * PRICE / gpu_years, rel=1e-12)
    tonnes = 1000 * 0.1
    per_t = float(r["stranded_value_cumulative_target"]) / tonnes
    assert float(r["stranded_value_per_tonne_cumulative_target"]) == pytest.approx(per_t, rel=1e-12)


def test_capacity_years_and_capex_per_pflop_year():
    # two cohorts of 1,000 units, fixed 3-year life, 'middle' ages: 3 unit-years each within 2020-2024;
    # the 2020 cohort gives 16 PFLOP/s per unit, the 2021 cohort 40 (capacity per unit by cohort)
    raw = one_cohort(3)
    fleet = raw["fleets"]["s"]
    fleet["inflow"] = {"2020": 1000, "2021": 1000, "2022": 0, "2032": 0}
    fleet["inflow"]["interpolation"] = "step"
    fleet["capacity_per_unit"] = {"2020": 16, "2021": 40, "interpolation": "step"}
    fleet["capacity_unit"] = "PFLOP/s"
    fleet["power"] = 10.2
    r = run(raw).sel(fleet="s")
    capacity_years = 1000 * 3.0 * (16 + 40)
    assert float(r["capacity_years_cumulative_target"]) == pytest.approx(capacity_years, rel=1e-12)
    assert r["capacity_years"].attrs["units"] == "PFLOP/s yr"
    # in 2021 the 2020 cohort serves its full year, the 2021 cohort half of it
    assert float(r["in_service_capacity"].sel(time=2021.0)) == pytest.approx(1000 * (16 + 0.5 * 40), rel=1e-12)
    capex = 2 * 1000 * PRICE
    assert float(r["capex_per_capacity_year_cumulative_target"]) == pytest.approx(capex / capacity_years, rel=1e-12)
    assert r["capex_per_capacity_year_cumulative_target"].attrs["units"] == "USD/(PFLOP/s yr)"
    gpu_years = 8 * 2 * 1000 * 3.0
    depreciation = float(r["depreciation_cumulative_target"])
    assert float(r["depreciation_per_gpu_year_cumulative_target"]) == pytest.approx(depreciation / gpu_years, rel=1e-12)
    per_cap = float(r["depreciation_per_capacity_year_cumulative_target"])
    assert per_cap == pytest.approx(depreciation / capacity_years, rel=1e-12)
    mwh = float(r["energy_cumulative_target"]) * 1e6
    assert float(r["capex_per_mwh_cumulative_target"]) == pytest.approx(capex / mwh, rel=1e-12)


def test_a_cascade_carries_capacity_and_a_fleet_without_it_counts_none():
    raw = one_cohort(3)
    raw["fleets"]["s"]["capacity_per_unit"] = 16
    raw["fleets"]["second"] = {
        "driver": "inflow",
        "inflow": {"from": "s", "share": 0.5},
        "lifetime": {"type": "fixed", "mean": 2},
    }
    raw["fleets"]["other"] = {"driver": "inflow", "inflow": 10, "lifetime": {"type": "fixed", "mean": 2}, "mass": 1}
    r = run(raw)
    # 500 units arrive at the end of 2022 and serve 2 years ('middle' ages: 0.5 + 1 + 0.5)
    assert float(r["capacity_years_cumulative_target"].sel(fleet="second")) == pytest.approx(500 * 2 * 16, rel=1e-12)
    assert float(r["capacity_years_cumulative_target"].sel(fleet="other")) == 0.0
    assert np.isnan(float(r["capex_per_capacity_year_cumulative_target"].sel(fleet="other")))


def test_a_swept_method_and_history_cohorts():
    raw = one_cohort(3)
    raw["fleets"]["s"]["finance"]["depreciation"] = ["straight-line", "sum-of-years-digits"]
    raw["fleets"]["s"]["inflow_history"] = {"2018": 1000, "2019": 1000}
    raw["fleets"]["s"]["inflow"] = 0
    r = run(raw).sel(fleet="s")
    sl = r.sel(s_finance_depreciation="straight-line")  # a sweep's automatic dimension name
    # history cohorts (2018, 2019) bought at the first cohort's price; at the start (end of 2019) they
    # are 1.5 and 0.5 years old: book value 1000 x 300k x ((1 - 1.5/6) + (1 - 0.5/6))
    opening = 1000 * PRICE * ((1 - 1.5 / 6) + (1 - 0.5 / 6))
    accounted = float(sl["depreciation"].sum() + sl["written_off"].sum() + sl["net_book_value"].isel(time=-1))
    assert accounted == pytest.approx(opening, rel=1e-12)
    assert float(sl["capex"].sum()) == 0.0


BAD = [
    (lambda f: f.update(accounting_life=0), "fleets.s.finance.accounting_life"),
    (lambda f: f.update(accounting_life=-2), "fleets.s.finance.accounting_life"),
    (lambda f: f.update(residual_retention=1.2), "fleets.s.finance.residual_retention"),
    (lambda f: f.update(depreciation="units-of-production"), "fleets.s.finance.depreciation"),
    (lambda f: f.update(depreciation="sum-of-years-digits", accounting_life=5.5), "fleets.s.finance.accounting_life"),
    (lambda f: f.update(price={"value": 3e5, "units": "EUR/unit"}), "fleets.s.finance.price.units"),
    (lambda f: f.update(prize=3), "fleets.s.finance.prize"),
]


@pytest.mark.parametrize(("change", "field"), BAD)
def test_bad_finance_is_refused_naming_the_field(change, field):
    raw = one_cohort(3)
    change(raw["fleets"]["s"]["finance"])
    with pytest.raises(InputError) as info:
        validate(scenario_to_grid(raw, "f.toml"), "f.toml")
    assert info.value.field == field


def test_currency_and_price_year_are_required_and_checked(tmp_path):
    raw = one_cohort(3)
    del raw["finance"]
    with pytest.raises(InputError, match="price year"):
        scenario_to_grid(raw, "f.toml")
    raw["finance"] = {"currency": "XYZ", "price_year": 2024}
    with pytest.raises(InputError) as info:
        scenario_to_grid(raw, "f.toml")
    assert info.value.field == "finance.currency"
    path = tmp_path / "bad.toml"
    path.write_text(
        '[finance]\ncurrency = "USD"\nprice_year = 2024\n[fleets.s]\ndriver = "inflow"\ninflow = 1\n'
        'lifetime = { type = "fixed", mean = 3 }\nmass = 1\n[fleets.s.finance]\nprice = 1\naccounting_life = 0\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "ewaste.cli", "run", str(path), "-o", str(tmp_path / "r.nc")],
        capture_output=True,
        text=True,
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("ewaste: error")]
    assert done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr
    assert "fleets.s.finance.accounting_life" in errors[0] and not (tmp_path / "r.nc").exists()


def test_bundled_depreciation_scenarios_keep_the_identity_and_order():
    r = ewaste.evaluate(ewaste.load_grid("depreciation"), backend="numpy").sel(fleet="ai_servers")
    held = r["net_book_value"].isel(time=-1)
    accounted = r["depreciation"].sum("time") + r["written_off"].sum("time") + held
    np.testing.assert_allclose(accounted, r["capex"].sum("time"), rtol=1e-12)
    six = r.sel(books_life=6)["stranded_value_cumulative_target"].values  # economic lives 1..6
    assert np.all(np.diff(six) < 0)  # the longer the units serve, the less is stranded
    assert float(r.sel(books_life=4, economic_life=6)["deferred_depreciation_cumulative_target"]) < 0
    h = ewaste.evaluate(ewaste.load_grid("hyperscaler-capex"), backend="numpy").sel(fleet="hyperscalers")
    deferred = h["deferred_depreciation_annual"].sel(year=[2026, 2027, 2028]).sum("year").values
    assert np.all(deferred > 0) and np.all(np.diff(deferred) < 0)  # economic lives 3, 4, 5 < 6 yr books


SCENARIO_FILE = """
[scenario]
start_year = 2020
end_year = 2025

[finance]
currency = "USD"
price_year = 2024

[fleets.s]
driver = "inflow"
inflow = { 2020 = 1000, 2021 = 0, 2025 = 0 }
lifetime = { type = "fixed", mean = 3 }
mass = 100

[fleets.s.finance]
price = 300000
accounting_life = 6
"""


def test_money_in_the_spreadsheet_and_the_iamc_file(tmp_path):
    """The hand-worked cohort (docs/finance.md) read back from the files an analyst files."""
    import openpyxl
    import pandas as pd

    (tmp_path / "f.toml").write_text(SCENARIO_FILE)
    for name, extra in (("r.xlsx", []), ("i.csv", ["--format", "iamc"])):
        done = subprocess.run(
            [sys.executable, "-m", "ewaste.cli", "run", "f.toml", "-q", "-o", name, *extra],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
    sheet = openpyxl.load_workbook(tmp_path / "r.xlsx")["Money"]
    head = [c.value for c in sheet[1]]
    rows = {r[head.index("year")]: r for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert rows[2020][head.index("capex (USD/yr)")] == pytest.approx(300e6)
    assert rows[2021][head.index("depreciation (USD/yr)")] == pytest.approx(50e6)
    assert rows[2023][head.index("written_off, cumulative (USD)")] == pytest.approx(125e6)
    iamc = pd.read_csv(tmp_path / "i.csv")
    capex = iamc[(iamc["variable"] == "Investment|AI Hardware") & (iamc["year"] == 2020)]
    assert capex["value"].tolist() == pytest.approx([300e6]) and capex["unit"].tolist() == ["USD/yr"]


def test_summary_mode_and_blocks_of_grid_points_give_the_same_money(monkeypatch):
    # summary mode keeps the flows reduced in the engine and the money from the cohort accounts beside
    # them; the accounts run in blocks of grid points (here 2 at a time): both equal the full run
    from ewaste.model import finance  # noqa: PLC0415

    raw = copy.deepcopy(STOCK)
    del raw["fleets"]["s"]["finance"]["lease_price"]
    raw["fleets"]["s"]["finance"]["accounting_life"] = {"dim": "books", "values": [4, 5, 6]}
    raw["fleets"]["s"]["lifetime"]["shape"] = {"dim": "shape", "values": [1.5, 2.0, 3.0]}
    raw["dimensions"] = {"books": ["4", "5", "6"], "shape": ["a", "b", "c"]}
    full = run(raw)
    monkeypatch.setattr(finance, "BLOCK_POINTS", 2)
    summary = run(raw, summary=True)
    assert summary.attrs["mode"] == "summary"
    for name in ("capex", "depreciation", "stranded_value", "net_book_value", "embodied_emissions_amortised"):
        for suffix in ("_target", "_cumulative_target"):
            if name + suffix in full:
                np.testing.assert_allclose(summary[name + suffix], full[name + suffix], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(summary["capex_per_mwh_cumulative_target"], full["capex_per_mwh_cumulative_target"])
    np.testing.assert_allclose(summary["ewaste_generated_target"], full["ewaste_generated_target"], rtol=1e-12)


ONE_LIFETIME = {"type": "weibull", "shape": {"dim": "shape", "values": [1.5, 2.0, 3.0]}, "scale": 4.0}


@pytest.mark.parametrize(
    ("lifetime", "stock", "convention"),
    [
        (None, None, "middle"),  # by cohort, and corrected: step by step
        (ONE_LIFETIME, {"2020": 1000, "2030": 6000}, "middle"),  # a convolution over the lags
        (ONE_LIFETIME, {"2020": 1000, "2030": 6000}, "end"),
        # one lifetime; the correction retires cohorts early for two shapes of three: those step by step
        (ONE_LIFETIME, {"2020": 1000, "2023": 5000, "2024": 3900, "2030": 6000}, "middle"),
    ],
)
def test_embodied_emissions_without_finance_are_those_with_it(lifetime, stock, convention, monkeypatch):
    """Without [finance] the emissions still to amortise come from Accounts.held_sum (a convolution
    where it can, else step by step, in O(steps x points) memory, here in blocks of two grid points);
    with it, from the (N, N, S) cohort accounts the money views use: the same to 1e-13."""
    base = copy.deepcopy(STOCK)
    base["scenario"]["age_convention"] = convention
    base["fleets"]["s"]["embodied"] = {"2020": 2000, "2030": 3000}  # per cohort
    if lifetime is not None:
        base["fleets"]["s"]["lifetime"] = lifetime
        base["dimensions"] = {"shape": ["a", "b", "c"]}
    if stock is not None:
        base["fleets"]["s"]["stock"] = stock
    priced = run(base)
    corrected = priced["negative_inflow_steps"].values.ravel().tolist()
    assert corrected == ([1] if lifetime is None else [0, 1, 1] if "2024" in (stock or {}) else [0, 0, 0])
    raw = copy.deepcopy(base)
    del raw["finance"], raw["fleets"]["s"]["finance"]
    from ewaste.model import cohorts, finance  # noqa: PLC0415

    monkeypatch.setattr(finance, "EMBODIED_BLOCK_POINTS", 2)  # the three shapes in two blocks
    if corrected == [0, 0, 0]:  # the convolution, not the steps
        monkeypatch.setattr(cohorts, "_held_rows", None)
    bare = run(raw)
    assert "capex" not in bare
    for name in ("embodied_emissions", "embodied_emissions_amortised"):
        np.testing.assert_allclose(bare[name], priced[name], rtol=1e-13, atol=0)
    # amortised over a closed history: everything bought is charged by the end or still held
    assert float(bare["embodied_emissions_amortised"].sum()) <= float(bare["embodied_emissions"].sum())


def test_the_cohort_convolution_in_blocks_of_scenarios(monkeypatch):
    """Accounts.held_sum's convolution over the lags, in blocks of scenarios (a last, partial block
    included), against numpy.convolve column by column."""
    from ewaste.model import cohorts  # noqa: PLC0415

    rng = np.random.default_rng(3)
    a, weight = rng.uniform(size=(7, 5)), rng.uniform(size=(7, 5))
    monkeypatch.setattr(cohorts, "CONVOLVE_BLOCK", 2)
    got = cohorts._convolve(a, lambda k: weight[k])
    want = np.stack([np.convolve(a[:, j], weight[:, j])[:7] for j in range(5)], axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-14)
