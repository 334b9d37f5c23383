"""The capital side of a fleet, cohort by cohort: capex, depreciation as reported (accounting life)
and economic (the mean life the units serve), net book value, what retirements write off and sell
for, stranded value, and embodied emissions counted at purchase and amortised.

Each cohort's units in service and retired come from the engine (`cohorts.cohort_stock`, the
negative-inflow correction included); per-unit book values by age from `depreciation`. Every step
all units held at its start depreciate through it; those that retire then leave at the step's end
with their book value, written off less their resale value. So, cohort by cohort and exactly,

    capex (+ book value brought in) = depreciation + written off + book value at the end.

Formulas and a worked example: docs/finance.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import xarray as xr

from ..engine.arrays import NUMPY, Backend
from ..inputs.finance import NO_METHOD
from ..inputs.links import check_links, grid_links, grid_transfers
from ..inputs.timeaxis import STEPS_PER_YEAR
from ..inputs.validate import NON_SCENARIO_DIMS
from .cohorts import accounts
from .depreciation import book_share, resale_share
from .embodied import EMBODIED, embodied_emissions, embodied_only

# price: what a unit is booked at when it enters the fleet; price_economic: the same in the economic view;
# market_value: what it would sell for then (the base of its resale value). All three are the purchase
# price, except for a cascade's units (`_arriving`).
COHORT_PARAMS = (
    "price",
    "price_economic",
    "market_value",
    "accounting_life",
    "salvage",
    "residual_retention",
    "embodied",
)
SPLIT = ("replacement", "depreciation")  # text variables that may be swept: one run per value


def _lagged(per_cohort: np.ndarray) -> np.ndarray:
    """(N, N, S) the value of the cohort k steps old in step m, from (N, S) per cohort (before the first
    cohort, where no unit is held, the first cohort's value: finite, and multiplied by 0 units)."""
    n = per_cohort.shape[0]
    out = np.broadcast_to(per_cohort[:1], (n, *per_cohort.shape)).copy()
    for k in range(n):
        out[k:, k] = per_cohort[: n - k]
    return out


def fleet_money(
    g: xr.Dataset, method: str, dt: float, priced: bool = True, be: Backend = NUMPY
) -> dict[str, xr.DataArray]:
    """Money and embodied emissions of one fleet per modelled step (time, sweep dims): see `MONEY`.
    Without `priced` (a scenario without [finance]) only the embodied emissions. be: the backend the
    model ran with (the cohort accounts run on the compiled CPU engine where it is "cpu")."""
    if not priced:
        return embodied_only(g, dt, be)
    params = {p: g[p] for p in COHORT_PARAMS}
    acc = accounts(g, tuple(params.values()), be)
    age_start, age_end = acc.ages(g.attrs["age_convention"], dt)
    per_cohort = {p: acc.by_cohort(da) for p, da in params.items()}
    cohort = {p: _lagged(v) for p, v in per_cohort.items()}
    factor = float(np.asarray(g["declining_factor"].values).max()) if "declining_factor" in g else 2.0
    kind = str(g["lifetime_type"].values)
    econ_life = _lagged(acc.mean_life(kind, dt))
    price, embodied, retention = cohort["price"], cohort["embodied"], cohort["residual_retention"]
    market, economic = cohort["market_value"], cohort["price_economic"]
    resale = market * resale_share(age_end, retention)
    # the economic view ends at the resale value at the end of the mean life, as a share of its value
    econ_salvage = np.divide(market * resale_share(econ_life, retention), economic, where=economic > 0, out=0 * market)
    value = {"reported": price, "economic": economic}
    views = {
        "reported": lambda a: book_share(method, a, cohort["accounting_life"], cohort["salvage"], factor),
        "economic": lambda a: book_share("straight-line", a, econ_life, econ_salvage),
    }
    start, held = acc.start(), acc.held
    retired = start - held
    out: dict[str, np.ndarray] = {"capex": acc.units_in * per_cohort["price"]}
    for view, share in views.items():
        sums, after = _written_down(value[view], share, (age_start, age_end), start, held, retired)
        out |= {f"{view}_{part}": a for part, a in sums.items()}
        # book value retired less resale: a loss (stranded) or a gain, unit by unit
        out[f"{view}_loss"] = (retired * np.maximum(after - resale, 0.0)).sum(axis=1)
        out[f"{view}_gain"] = (retired * np.maximum(resale - after, 0.0)).sum(axis=1)
    out["resale"] = (retired * resale).sum(axis=1)
    out["retired_units"] = retired.sum(axis=1)
    share_end = book_share("straight-line", age_end, econ_life, 0.0)
    out |= embodied_emissions(acc, per_cohort["embodied"], (held * embodied * share_end).sum(axis=1))
    return {name: acc.wrap(a) for name, a in out.items()}


def _written_down(
    value: np.ndarray,
    share: Callable[[np.ndarray], np.ndarray],
    ages: tuple,
    start: np.ndarray,
    held: np.ndarray,
    retired: np.ndarray,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A value (N, N lags, S) written down to `share(age)` of itself: per step (N, S) the charge on the
    units held at its start, the value of those that retire (`retired` = start - held), and of those
    held at its end; and the per-unit value at the step's end (N, N, S). Lag 0 starts at the full value."""
    before, after = value * share(ages[0]), value * share(ages[1])
    sums = {"charge": (start * (before - after)).sum(axis=1), "retired": (retired * after).sum(axis=1)}
    return sums | {"held": (held * after).sum(axis=1)}, after


# result -> (units: "money" (the scenario's currency) or a unit, long name, kind)
MONEY = {
    "capex": ("money", "capital expenditure: units put in service x their price", "flow"),
    "depreciation": ("money", "depreciation expense over the accounting life (as reported)", "flow"),
    "depreciation_economic": ("money", "depreciation over the mean life the units serve (economic view)", "flow"),
    "deferred_depreciation": ("money", "economic minus reported depreciation: what the books defer", "flow"),
    "written_off": ("money", "net book value of the units retired (as reported)", "flow"),
    "resale_value": ("money", "what the units retired sell for (price x residual_retention^age)", "flow"),
    "stranded_value": (
        "money",
        "book value of retired units above what they sell for: a write-off (as reported)",
        "flow",
    ),
    "gain_on_disposal": ("money", "resale value of retired units above their book value (as reported)", "flow"),
    "stranded_value_economic": (
        "money",
        "book value of retired units above what they sell for (economic view)",
        "flow",
    ),
    "ownership_cost": ("money", "cost of owning: depreciation plus book value retired less resale value", "flow"),
    "lease_cost": ("money", "cost of leasing the same units in service (lease_price x unit-years)", "flow"),
    "transferred_in": ("money", "net book value of units arriving from another fleet at book value", "flow"),
    "transferred_out": ("money", "net book value of retired units moved on to another fleet at book value", "flow"),
    "net_book_value": ("money", "net book value of the units in service at the end of the step (as reported)", "stock"),
    "net_book_value_economic": ("money", "net book value at the end of the step (economic view)", "stock"),
}
DEFAULTS = {"price": 0.0, "accounting_life": 6.0, "salvage": 0.0, "residual_retention": 0.67, "embodied": 0.0}


def money(
    grid: xr.Dataset, in_service_units: xr.DataArray | None, fleets: list[xr.Dataset], be: Backend = NUMPY
) -> xr.Dataset:
    """Money (with [finance]) and embodied emissions (where a fleet gives them) per step, over
    (fleet, time, sweep dimensions); an empty Dataset for a scenario with neither.

    grid: the filled, validated scenario grid; in_service_units: the results' average units in
    service per step (for the lease view); fleets: each fleet's grid as it ran (a linked fleet's
    inflow from its source); be: the backend the model ran with (the cohort accounts run on the compiled
    CPU engine where it did, else on NumPy's). Money variables carry `units` = the currency and the
    attributes `currency`, `price_year`, `price_basis`.
    """
    settings = json.loads(grid.attrs["finance"]) if "finance" in grid.attrs else None
    if settings is None and "embodied" not in grid:
        return xr.Dataset()
    dt = 1.0 / STEPS_PER_YEAR[grid.attrs["step"]]
    raw = _accounts(grid, fleets, dt, settings is not None, be)
    out = xr.Dataset()
    if settings is not None:
        values = {
            "capex": raw["capex"],
            "depreciation": raw["reported_charge"],
            "depreciation_economic": raw["economic_charge"],
            "deferred_depreciation": raw["economic_charge"] - raw["reported_charge"],
            "written_off": raw["reported_retired"],
            "resale_value": raw["resale"],
            "stranded_value": raw["reported_loss"],
            "gain_on_disposal": raw["reported_gain"],
            "stranded_value_economic": raw["economic_loss"],
            "ownership_cost": raw["reported_charge"] + raw["reported_retired"] - raw["resale"],
            "net_book_value": raw["reported_held"],
            "net_book_value_economic": raw["economic_held"],
        }
        if _booked(grid):
            values |= {"transferred_in": raw["moved_in"], "transferred_out": raw["moved_out"]}
        if in_service_units is not None and _leased(grid):
            values["lease_cost"] = in_service_units * grid["lease_price"] * dt
        money_attrs = {
            "currency": settings["currency"],
            "price_year": settings["price_year"],
            "price_basis": settings["basis"],
        }
        for name, da in values.items():
            _, long_name, kind = MONEY[name]
            out[name] = da.assign_attrs(units=settings["currency"], long_name=long_name, kind=kind, **money_attrs)
    if "embodied" in grid:
        amortised = raw["embodied_amortised"]
        for name, da in (("embodied_emissions", raw["embodied_purchase"]), ("embodied_emissions_amortised", amortised)):
            units, long_name, kind = EMBODIED[name]
            out[name] = (da * 1e-9).assign_attrs(units=units, long_name=long_name, kind=kind)  # kg -> Mt
    return out


def _accounts(grid: xr.Dataset, fleets: list[xr.Dataset], dt: float, priced: bool, be: Backend) -> xr.Dataset:
    """Every fleet's accounts over (fleet, time, sweep dims), sources first: a cascade's units arrive at
    the value per unit its source retires them with (resale value for a sale, net book value for a
    move at book value), and what a source moves at book value leaves its books unsold and not
    written off (`moved_out`), arriving as `moved_in`, not capex."""
    names = [str(f) for f in grid["fleet"].values]
    sources, kinds, shares = grid_links(grid)
    transfers = grid_transfers(grid)
    raw = {}
    for name in check_links(sources, kinds, shares, "grid"):
        g = fleets[names.index(name)]
        g = g.assign({p: g[p] if p in g else xr.DataArray(v) for p, v in DEFAULTS.items()})
        if kinds[name] == "cascade" and priced:
            g = _arriving(g, raw[sources[name]], transfers[name])
        bought = {p: g[p] if p in g else g["price"] for p in ("price_economic", "market_value")}
        raw[name] = _split(g.assign(bought), dt, priced, be)
    for name in names if priced else []:
        booked = [shares[t] for t in names if sources[t] == name and transfers[t] == "book"]
        raw[name] = _moved(raw[name], sum(booked, xr.DataArray(0.0)), transfers[name] == "book")
    return xr.concat([raw[n] for n in names], dim=xr.DataArray(names, dims="fleet"), coords="minimal", join="outer")


def _arriving(g: xr.Dataset, source: xr.Dataset, transfer: str) -> xr.Dataset:
    """A cascade fleet's grid with the value per unit of the units arriving in each step."""
    some = source["retired_units"].where(source["retired_units"] > 0)
    market = source["resale"] / some
    if transfer == "book":
        price, economic = source["reported_retired"] / some, source["economic_retired"] / some
    else:
        price = economic = market
    values = {"price": price, "price_economic": economic, "market_value": market}
    return g.assign({k: v.fillna(0.0) for k, v in values.items()})


MOVED = ("reported_retired", "reported_loss", "reported_gain", "economic_retired", "economic_loss", "economic_gain")


def _moved(raw: xr.Dataset, booked: xr.DataArray, arrived_at_book: bool) -> xr.Dataset:
    """A fleet's accounts with the share `booked` of its retirements moved on at book value (the same
    share of every cohort's retirements: the sums scale exactly), and its own arrivals at book value
    counted as moved in rather than bought."""
    out = raw.assign({v: raw[v] * (1.0 - booked) for v in (*MOVED, "resale")})
    out["moved_out"] = raw["reported_retired"] * booked
    out["moved_in"] = raw["capex"] if arrived_at_book else xr.zeros_like(raw["capex"])
    if arrived_at_book:
        out["capex"] = xr.zeros_like(raw["capex"])
    return out


def _booked(grid: xr.Dataset) -> bool:
    """Whether a cascade moves units at book value (the transfer results are given only then)."""
    return "book" in grid_transfers(grid).values()


BLOCK_POINTS = 4096
"""Grid points whose cohort accounts are held at once: they take (steps x steps x points) arrays."""
EMBODIED_BLOCK_POINTS = 2**18
"""The same for embodied emissions alone, which take (steps x points) arrays (`embodied.embodied_only`)."""


def _split(g: xr.Dataset, dt: float, priced: bool, be: Backend) -> xr.Dataset:
    """One fleet's money, once per replacement rule and depreciation method where they are swept, and
    in blocks of at most BLOCK_POINTS grid points (EMBODIED_BLOCK_POINTS for embodied emissions alone),
    halving the longest sweep the accounts read."""
    for var in SPLIT:
        if var in g and g[var].dims:
            dim = g[var].dims[0]
            parts = [_split(g.isel({dim: j}), dt, priced, be) for j in range(g.sizes[dim])]
            return xr.concat(parts, dim=g[dim], coords="minimal", join="outer")
    sweeps = _account_sweeps(g)
    if math.prod(sweeps.values()) > (BLOCK_POINTS if priced else EMBODIED_BLOCK_POINTS):
        dim = max(sweeps, key=sweeps.__getitem__)
        half = sweeps[dim] // 2
        parts = [_split(g.isel({dim: s}), dt, priced, be) for s in (slice(0, half), slice(half, None))]
        return xr.concat(parts, dim=dim, coords="minimal", join="exact")
    method = str(g["depreciation"].values) if "depreciation" in g else NO_METHOD
    return xr.Dataset(fleet_money(g, "straight-line" if method == NO_METHOD else method, dt, priced, be))


def _account_sweeps(g: xr.Dataset) -> dict[str, int]:
    """The sweep dimensions (and lengths) a fleet's cohort accounts run over: those of the variables
    they read (driver, lifetime, per-cohort money and embodied, arriving values)."""
    read = [v for v in g.data_vars if v.startswith(("lifetime_", "inflow", "stock", "demand", "capacity_per_unit"))]
    read += [v for v in (*COHORT_PARAMS, "declining_factor") if v in g]
    dims = {d for v in read for d in g[v].dims} - NON_SCENARIO_DIMS
    return {d: g.sizes[d] for d in sorted(dims)}


def _leased(grid: xr.Dataset) -> bool:
    """Whether a fleet gives a lease price (the lease view is compared only then)."""
    return "lease_price" in grid and bool((grid["lease_price"] > 0).any())


def money_names(grid: xr.Dataset) -> list[str]:
    """The money and embodied results `money` gives for this grid."""
    given = {"lease_cost": _leased(grid), "transferred_in": _booked(grid), "transferred_out": _booked(grid)}
    names = [n for n in MONEY if given.get(n, True)] if "finance" in grid.attrs else []
    return names + (list(EMBODIED) if "embodied" in grid else [])


# ratio -> (numerator, denominator, scale of the denominator, units: "money" the currency, "{den}" the
# denominator's units, long name). Shared reference finance.md section 9.
RATIOS = {
    "capex_per_gpu_year": ("capex", "gpu_years", 1.0, "money/(GPU yr)", "capex per GPU-year in service"),
    "depreciation_per_gpu_year": (
        "depreciation",
        "gpu_years",
        1.0,
        "money/(GPU yr)",
        "depreciation (as reported) per GPU-year in service",
    ),
    "capex_per_capacity_year": ("capex", "capacity_years", 1.0, "money/({den})", "capex per capacity-year in service"),
    "depreciation_per_capacity_year": (
        "depreciation",
        "capacity_years",
        1.0,
        "money/({den})",
        "depreciation (as reported) per capacity-year in service (e.g. per PFLOP/s x yr)",
    ),
    "capex_per_mwh": ("capex", "energy", 1e6, "money/MWh", "capex per MWh of electricity"),
    "depreciation_per_mwh": ("depreciation", "energy", 1e6, "money/MWh", "depreciation per MWh of electricity"),
    "stranded_value_per_tonne": (
        "stranded_value",
        "ewaste_generated",
        1.0,
        "money/t",
        "stranded value per tonne of e-waste generated",
    ),
}
SUFFIX = "_cumulative_target"


def ratios(res: xr.Dataset) -> dict[str, xr.DataArray]:
    """Capital-efficiency figures, cumulative to the target year, per fleet (shared reference
    finance.md section 9), and the embodied share of emissions (purchase view): those whose parts the
    results hold. NaN where the denominator is 0."""
    out = {}
    for name, (top, bottom, scale, units, long_name) in RATIOS.items():
        if top + SUFFIX in res and bottom + SUFFIX in res:
            den = res[bottom + SUFFIX] * scale
            currency = res[top + SUFFIX].attrs.get("currency", "")
            units = units.replace("money", currency).replace("{den}", res[bottom + SUFFIX].attrs.get("units", ""))
            out[name + SUFFIX] = (res[top + SUFFIX] / den.where(den > 0)).assign_attrs(
                units=units, long_name=f"{long_name}, cumulative to the target year"
            )
    embodied, use = "embodied_emissions" + SUFFIX, "emissions" + SUFFIX
    if embodied in res and use in res:
        total = res[embodied] + res[use]
        out["embodied_share" + SUFFIX] = (res[embodied] / total.where(total > 0)).assign_attrs(
            units="1", long_name="embodied share of emissions (embodied + use phase), cumulative to the target year"
        )
    return out
