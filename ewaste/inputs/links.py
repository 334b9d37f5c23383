"""Fleets that feed each other: a fleet's inflow taken from another fleet's retirements.

- cascade, `inflow = { from = "training", share = 0.6 }`: 60 % of the units `training` retires in a
  step enter this fleet in that step for a second life (its own lifetime); they are not e-waste of
  `training`, and they keep what they are made of (mass, power, materials, metals, GPUs arrive with
  them); their embodied emissions were counted at their first purchase.
  In money (with [finance]) a cascade is a sale (`transfer = "sale"`, the default: the source sells
  them at their resale value, writing off its book value above it, and this fleet buys them at that
  value) or a move inside one owner's books (`transfer = "book"`: they arrive at their net book
  value, nothing is written off or sold, and this fleet depreciates that value over its own
  accounting life, the life the books give them from their arrival).
- replacement, `inflow = { from = "h100", ratio = 0.125 }`: this fleet buys 0.125 new units for each
  unit `h100` retires (for a ratio of capacity, give capacity retired / capacity of a new unit);
  the retired units are e-waste of `h100` as usual.

A unit is counted once: it is in service in one fleet at a time. The shares passed on from one
fleet add up to at most 1, and links may not form a cycle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from .parameters import Context, check_keys, parse_parameter
from .variables import table

KINDS = {"share": "cascade", "ratio": "replacement"}
NONE = "none"
TRANSFERS = ("sale", "book")  # how a cascade's units change hands in money; the first is the default
# what a cascade's units bring with them
TAKEN = ("mass", "power", "composition", "pcb_metal_content", "gpus_per_unit", "capacity_per_unit")


def is_link(raw: Any) -> bool:
    """Whether a fleet's `inflow` is a link to another fleet."""
    return isinstance(raw, dict) and "from" in raw


def parse_link(raw: dict, ctx: Context, field: str) -> tuple[str, str, xr.DataArray, str]:
    """`{ from = FLEET, share = x, transfer = "sale" }` or `{ from = FLEET, ratio = y }` -> (source,
    kind, share, transfer: "sale" or "book" for a cascade, "" for a replacement).

    Raises InputError for a missing or extra key, a source that is not text, a share outside [0, 1]
    (cascade), or a transfer that is not one of TRANSFERS (or given for a replacement).
    """
    check_keys(raw, {"from", "share", "ratio", "transfer"}, ctx.source, field)
    source = raw.get("from")
    if not isinstance(source, str) or not source:
        raise ctx.fail(f"{field}.from", "expected the name of another fleet")
    given = [k for k in KINDS if k in raw]
    if len(given) != 1:
        raise ctx.fail(field, "give share (a cascade: a second life) or ratio (a replacement), not both or neither")
    key = given[0]
    value = parse_parameter(raw[key], table()["link_share"], ctx, f"{field}.{key}")
    if key == "share" and float(value.max()) > 1.0:
        raise ctx.fail(f"{field}.share", f"a share of the retired units: at most 1, got {float(value.max()):g}")
    if key == "ratio":
        if "transfer" in raw:
            raise ctx.fail(f"{field}.transfer", "a replacement buys new units: no transfer (only a cascade has one)")
        return source, KINDS[key], value, ""
    transfer = raw.get("transfer", TRANSFERS[0])
    if transfer not in TRANSFERS:
        raise ctx.fail(f"{field}.transfer", f"expected one of {', '.join(map(repr, TRANSFERS))}, got {transfer!r}")
    return source, KINDS[key], value, transfer


def check_links(
    sources: dict[str, str], kinds: dict[str, str], shares: dict[str, xr.DataArray], where: str
) -> list[str]:
    """The fleets in an order in which every source comes before the fleets it feeds.

    sources, kinds, shares: by fleet (source "" and kind "none" without a link). Raises InputError
    (naming `where` and the field) for a link to an unknown fleet or to itself, a cycle of links, or
    cascade shares from one fleet that add up to more than 1.
    """
    names = list(sources)
    for name, src in sources.items():
        if src and src not in names:
            raise InputError(where, f"fleets.{name}.inflow.from", f"no fleet {src!r}; fleets are {', '.join(names)}")
        if src == name:
            raise InputError(where, f"fleets.{name}.inflow.from", "a fleet cannot feed itself")
    for src in names:
        passed = [shares[t] for t in names if sources[t] == src and kinds[t] == "cascade"]
        if passed and float(sum(xr.broadcast(*passed)).max()) > 1.0 + 1e-12:
            raise InputError(where, f"fleets.{src}", "the cascade shares taken from this fleet add up to more than 1")
    order: list[str] = []
    while len(order) < len(names):
        ready = [n for n in names if n not in order and (not sources[n] or sources[n] in order)]
        if not ready:
            cycle = " -> ".join(n for n in names if n not in order)
            raise InputError(where, f"fleets.{cycle.split(' -> ')[0]}.inflow.from", f"links form a cycle: {cycle}")
        order += ready
    return order


def grid_transfers(grid: xr.Dataset) -> dict[str, str]:
    """How each fleet's cascade changes hands (text variable `inflow_transfer`): "sale", "book" or ""."""
    names = [str(f) for f in grid["fleet"].values]
    if "inflow_transfer" not in grid:
        kinds = grid_links(grid)[1]
        return {n: TRANSFERS[0] if kinds[n] == "cascade" else "" for n in names}
    return {n: str(np.asarray(grid["inflow_transfer"].sel(fleet=n).values).item()) for n in names}


def grid_links(grid: xr.Dataset) -> tuple[dict[str, str], dict[str, str], dict[str, xr.DataArray]]:
    """The links a grid holds (text variables `inflow_from`, `inflow_link`; numeric `link_share`)."""
    names = [str(f) for f in grid["fleet"].values]
    if "inflow_from" not in grid:
        return dict.fromkeys(names, ""), dict.fromkeys(names, NONE), {}
    sources = {n: str(np.asarray(grid["inflow_from"].sel(fleet=n).values).item()) for n in names}
    kinds = {n: str(np.asarray(grid["inflow_link"].sel(fleet=n).values).item()) for n in names}
    shares = {n: grid["link_share"].sel(fleet=n, drop=True) for n in names}
    return sources, kinds, shares
