"""Money and embodied emissions in a scenario file: the `[finance]` section (currency, price year,
price basis) and each fleet's `[fleets.NAME.finance]` table (price, accounting life, depreciation
method, salvage, resale value, lease price), with the catalogue's dated prices and their sources.

Every money value is in the one currency the scenario states; ewaste converts no currency and no
price year. Definitions and formulas: docs/finance.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from .defaults import record
from .names import FINANCE_VARS
from .parameters import Context, check_keys, choice, parse_parameter, suggest
from .variables import table

METHODS = ("straight-line", "declining-balance", "sum-of-years-digits")
BASES = ("nominal", "constant")
# ISO 4217 codes of the currencies analysts in this field report in (a price in another is refused)
CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CNY", "CHF", "CAD", "AUD", "KRW", "TWD", "INR", "SEK", "NOK", "DKK", "SGD")
SETTINGS = {"currency", "price_year", "basis"}
FLEET_KEYS = {*FINANCE_VARS, "depreciation"}
NO_METHOD = "none"  # the depreciation method of a fleet without a finance table (no money counted)


def settings(raw: Any, source: str) -> dict | None:
    """The [finance] section -> {"currency", "price_year", "basis"}; None without one.

    Raises InputError for an unknown key, a currency not in CURRENCIES, a price year outside
    1900-2300 or a basis other than "nominal" or "constant".
    """
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InputError(source, "finance", "expected a table: currency, price_year, basis")
    check_keys(raw, SETTINGS, source, "finance")
    currency = raw.get("currency")
    if currency not in CURRENCIES:
        near = suggest(str(currency), set(CURRENCIES))
        raise InputError(source, "finance.currency", f"unknown currency {currency!r}" + near)
    year = raw.get("price_year")
    if isinstance(year, bool) or not isinstance(year, int) or not 1900 <= year <= 2300:
        raise InputError(source, "finance.price_year", "required: the year the scenario's prices are in (e.g. 2024)")
    basis = raw.get("basis", "nominal")
    if basis not in BASES:
        raise InputError(source, "finance.basis", f"unknown basis {basis!r}; expected nominal or constant")
    return {"currency": currency, "price_year": year, "basis": basis}


def fleet_finance(
    raw: Any, ctx: Context, field: str, money: dict | None, catalogue_price: dict | None, arriving: str = ""
) -> tuple[dict[str, xr.DataArray], xr.DataArray, dict[str, dict]]:
    """A fleet's finance table -> (numeric variables, depreciation method (a sweep where given as a list),
    defaults used).

    `money`: the [finance] settings (required where a fleet has a finance table); `catalogue_price`:
    the fleet's archetype price entry ({value, date, source, status}) used where the table gives none;
    `arriving`: for a cascade, how its units arrive ("at their resale value", "at their net book value"):
    then the model gives their value, and the table may not.
    Raises InputError naming the field: an unknown key or method, a price in another currency, an
    accounting life <= 0, a residual retention above 1, sum-of-years'-digits or declining balance
    over a life that is not a whole number of years.
    """
    if not isinstance(raw, dict):
        raise ctx.fail(field, "expected a table: price, accounting_life, depreciation, ...")
    if money is None:
        raise ctx.fail("finance", 'state the currency and price year: [finance] currency = "USD", price_year = 2024')
    check_keys(raw, FLEET_KEYS, ctx.source, field)
    raw = dict(raw)
    used: dict[str, dict] = {}
    if arriving:
        if "price" in raw:
            raise ctx.fail(f"{field}.price", f"a cascade's units arrive with their value ({arriving})")
        raw["price"] = 0.0  # the model replaces it by the value they arrive with
        ctx.sources[f"{field}.price"] = f"the units' value in the fleet they come from, {arriving} [D]"
    elif "price" not in raw:
        if catalogue_price is None:
            raise ctx.fail(f"{field}.price", "required: the purchase price of one unit (or an archetype that has one)")
        raw["price"] = catalogue_price["value"]
        note = f"archetype price ({catalogue_price['date']}): {catalogue_price['source']} [{catalogue_price['status']}]"
        ctx.sources[f"{field}.price"] = note
        if catalogue_price.get("currency", "USD") != money["currency"]:
            currency = money["currency"]
            raise ctx.fail(f"{field}.price", f"the archetype's price is in USD, the scenario's money in {currency}")
    out = {}
    for key in FINANCE_VARS:
        var = table()[key]
        if key in raw:
            value = _in_currency(raw[key], money["currency"], var.units, ctx, f"{field}.{key}")
            out[key] = parse_parameter(value, var, ctx, f"{field}.{key}")
        elif var.default is not None:
            out[key] = xr.DataArray(var.default)
            used[key] = record(var.default, var.units, var.source, var.status, [])
    method = choice(raw.get("depreciation", METHODS[0]), METHODS, ctx, f"{field}.depreciation")
    if set(np.unique(method.values).astype(str)) != {METHODS[0]}:
        life = out["accounting_life"]
        if bool((abs(life - life.round()) > 1e-9).any()):
            raise ctx.fail(f"{field}.accounting_life", "declining balance and sum-of-years' digits need whole years")
    return out, method, used


def _in_currency(raw: Any, currency: str, canonical: str, ctx: Context, field: str) -> Any:
    """A money value with its units checked against the scenario's currency and made canonical."""
    if not (isinstance(raw, dict) and "units" in raw and "currency" in canonical):
        return raw
    units = str(raw["units"])
    expected = canonical.replace("currency", currency)
    if units not in (expected, canonical):
        found = units.split("/")[0]
        hint = "ewaste converts no currencies" if found in CURRENCIES else f"expected {expected!r}"
        raise ctx.fail(f"{field}.units", f"{units!r}: the scenario's money is in {currency}; {hint}")
    return {**raw, "units": canonical}


def without_finance() -> tuple[dict[str, xr.DataArray], xr.DataArray]:
    """What a fleet without a finance table holds where another fleet has one: price 0 (no money
    counted), the other variables at their defaults (not recorded: they apply to nothing)."""
    numeric = {k: xr.DataArray(table()[k].default if table()[k].default is not None else 0.0) for k in FINANCE_VARS}
    return numeric, xr.DataArray(NO_METHOD)
