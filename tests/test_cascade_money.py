"""Money along a cascade: units sold on at their resale value or moved inside one owner's books at
their net book value, worked by hand for one cohort; the books close fleet by fleet and over the
chain; the stranded value a move at book value avoids; bad transfers refused."""

from __future__ import annotations

import copy

import pytest
import xarray as xr

import ewaste
from ewaste.errors import InputError
from ewaste.inputs.scenario import scenario_to_grid
from ewaste.inputs.validate import validate

PRICE, RETENTION = 300_000.0, 0.67
# one cohort of 1,000 units bought in 2020, a fixed 3-year life at 'middle' ages: in service from
# mid-2020, retired in 2023 at age 3.5 at the end of that step; straight-line over 6 years, no salvage
AGE_OUT = 3.5
BOOK_OUT = PRICE * (1 - AGE_OUT / 6)  # 125,000 per unit
MARKET_OUT = PRICE * RETENTION**AGE_OUT  # what one sells for at retirement


def chain(transfer: str, share: float = 0.5) -> dict:
    return {
        "scenario": {"start_year": 2020, "end_year": 2030, "target_year": 2030},
        "finance": {"currency": "USD", "price_year": 2024},
        "fleets": {
            "training": {
                "driver": "inflow",
                "inflow": {"2020": 1000, "2021": 0, "2030": 0},
                "lifetime": {"type": "fixed", "mean": 3},
                "mass": 130,
                "finance": {"price": PRICE, "accounting_life": 6, "residual_retention": RETENTION},
            },
            "inference": {  # a second life of 2 years; the books give the units 2 more years
                "driver": "inflow",
                "inflow": {"from": "training", "share": share, "transfer": transfer},
                "lifetime": {"type": "fixed", "mean": 2},
                "finance": {"accounting_life": 2, "residual_retention": RETENTION},
            },
        },
    }


def run(raw: dict) -> xr.Dataset:
    grid = validate(scenario_to_grid(copy.deepcopy(raw), "c.toml"), "c.toml")
    return ewaste.evaluate(grid, backend="numpy")


def total(res: xr.Dataset, name: str, fleet: str) -> float:
    return float(res[name].sel(fleet=fleet).sum())


def test_a_move_at_book_value_writes_nothing_off_for_the_units_moved():
    r = run(chain("book"))
    assert total(r, "transferred_out", "training") == pytest.approx(500 * BOOK_OUT, rel=1e-12)
    assert total(r, "transferred_in", "inference") == pytest.approx(500 * BOOK_OUT, rel=1e-12)
    assert total(r, "capex", "inference") == 0.0
    # the other 500 are sold: written off at book value, stranded above their resale value
    assert total(r, "written_off", "training") == pytest.approx(500 * BOOK_OUT, rel=1e-12)
    assert total(r, "resale_value", "training") == pytest.approx(500 * MARKET_OUT, rel=1e-12)
    assert total(r, "stranded_value", "training") == pytest.approx(500 * (BOOK_OUT - MARKET_OUT), rel=1e-12)
    # inference depreciates 125k a unit over its 2 years; at 2.5 years the units leave fully depreciated and
    # sell at the market value of a unit 6 years old (resale keeps the unit's age: 3.5 + 2.5)
    assert total(r, "depreciation", "inference") == pytest.approx(500 * BOOK_OUT, rel=1e-12)
    assert total(r, "stranded_value", "inference") == pytest.approx(0.0, abs=1e-6)
    resale = 500 * PRICE * RETENTION**6
    assert total(r, "gain_on_disposal", "inference") == pytest.approx(resale, rel=1e-12)
    assert total(r, "resale_value", "inference") == pytest.approx(resale, rel=1e-12)


def test_a_sale_passes_the_units_on_at_their_resale_value():
    r = run(chain("sale"))
    assert "transferred_in" not in r
    assert total(r, "resale_value", "training") == pytest.approx(1000 * MARKET_OUT, rel=1e-12)
    assert total(r, "stranded_value", "training") == pytest.approx(1000 * (BOOK_OUT - MARKET_OUT), rel=1e-12)
    assert total(r, "capex", "inference") == pytest.approx(500 * MARKET_OUT, rel=1e-12)
    # the buyer's resale value goes on from the price it paid: the same unit, 6 years old
    assert total(r, "resale_value", "inference") == pytest.approx(500 * PRICE * RETENTION**6, rel=1e-12)


def test_moving_at_book_value_avoids_the_stranded_value_of_the_units_moved():
    sold, moved = run(chain("sale")), run(chain("book"))
    avoided = float(sold["stranded_value"].sum() - moved["stranded_value"].sum())
    assert avoided == pytest.approx(500 * (BOOK_OUT - MARKET_OUT), rel=1e-12)
    # the e-waste is the same either way: how the units change hands does not move a tonne
    xr.testing.assert_allclose(sold["ewaste_generated"], moved["ewaste_generated"], rtol=1e-15)


@pytest.mark.parametrize("transfer", ["sale", "book"])
@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_the_books_close_fleet_by_fleet_and_over_the_chain(transfer, share):
    r = run(chain(transfer, share))
    moved_in = r["transferred_in"] if "transferred_in" in r else 0.0
    moved_out = r["transferred_out"] if "transferred_out" in r else 0.0
    lhs = (r["capex"] + moved_in).sum("time")
    rhs = (r["depreciation"] + r["written_off"] + moved_out).sum("time") + r["net_book_value"].isel(time=-1, drop=True)
    xr.testing.assert_allclose(lhs, rhs, rtol=1e-12)
    if transfer == "book":  # nothing is bought twice: the chain's books hold the first purchase only
        assert float(r["capex"].sum()) == pytest.approx(1000 * PRICE, rel=1e-12)
        chain_out = (r["depreciation"] + r["written_off"]).sum() + r["net_book_value"].isel(time=-1, drop=True).sum()
        assert float(chain_out) == pytest.approx(1000 * PRICE, rel=1e-12)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda f: f["inference"]["inflow"].update(transfer="gift"), "fleets.inference.inflow.transfer"),
        (lambda f: f["inference"]["finance"].update(price=1000.0), "fleets.inference.finance.price"),
        (
            lambda f: f["inference"].update(inflow={"from": "training", "ratio": 0.5, "transfer": "book"}),
            "fleets.inference.inflow.transfer",
        ),
    ],
)
def test_bad_transfers_are_refused_naming_the_field(edit, field):
    raw = chain("book")
    edit(raw["fleets"])
    if "ratio" in str(raw["fleets"]["inference"]["inflow"]):
        raw["fleets"]["inference"]["mass"] = 130
    with pytest.raises(InputError) as err:
        run(raw)
    assert err.value.field == field
