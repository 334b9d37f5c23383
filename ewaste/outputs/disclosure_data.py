"""The package data of the disclosure tables: waste codes, disposal routes and the grid mix, read and checked.

Each table lives in `ewaste/data/` with a source and status for every entry (waste_codes.toml,
disposal_routes.toml, grid_mix.toml); docs/disclosure.md shows them.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from ..errors import InputError

DISPOSAL = ("incin_er", "incin_no_er", "landfill", "other")  # GRI 306-5-b-i..iv, in that order
SOURCES = ("fossil", "nuclear", "renewable")  # ESRS E1-5 para 37(a)-(c), in that order
BASES = ("equipment", "fraction")
SHARE_TOLERANCE = 1e-6  # how far shares may sum from 1


@dataclass(frozen=True)
class Entry:
    """One sourced value of the package data: a waste code or a share, where it comes from, its status."""

    value: str | float
    source: str
    status: str


def _read(name: str) -> dict:
    return tomllib.loads(resources.files("ewaste.data").joinpath(name).read_text(encoding="utf-8"))


def hazardous(code: str) -> bool:
    """Whether a List of Waste code is a hazardous entry: it carries an asterisk (Decision 2000/532/EC, Art. 7)."""
    return code.rstrip().endswith("*")


@cache
def waste_codes() -> dict[str, dict]:
    """`ewaste/data/waste_codes.toml`: {"codes": code -> description, source, status; "equipment": the two
    whole-unit entries; "fraction": material -> Entry(code), with "default" for a material not listed}."""
    raw = _read("waste_codes.toml")
    entry = lambda item: Entry(item["code"], item["source"], item["status"])  # noqa: E731
    return {
        "codes": raw["codes"],
        "equipment": {key: entry(item) for key, item in raw["equipment"].items()},
        "fraction": {key: entry(item) for key, item in raw["fraction"].items()},
    }


def fraction_code(material: str) -> Entry:
    """The List of Waste code of a material as the fraction it becomes at depollution (`default` if not listed)."""
    table = waste_codes()["fraction"]
    return table.get(material, table["default"])


@cache
def disposal_routes() -> dict[str, tuple[dict[str, float], str, str]]:
    """`ewaste/data/disposal_routes.toml`: stream ("not_collected", "processing_losses") -> (shares by
    disposal operation of DISPOSAL, summing to 1; source; status). Raises ValueError on a broken table."""
    out = {}
    for stream, item in _read("disposal_routes.toml").items():
        shares = {op: float(item["shares"].get(op, 0.0)) for op in DISPOSAL}
        if set(item["shares"]) - set(DISPOSAL) or abs(sum(shares.values()) - 1) > SHARE_TOLERANCE:
            raise ValueError(f"disposal_routes.toml: {stream}: shares of {DISPOSAL} summing to 1 expected")
        out[stream] = (shares, item["source"], item["status"])
    return out


@dataclass(frozen=True)
class GridMix:
    """Shares of electricity generation by source (fossil, nuclear, renewable; sum 1), and where they come from."""

    shares: dict[str, float]
    name: str
    entries: dict[str, Entry]

    def describe(self) -> str:
        """One line for the methodology note: the shares and the source and status of each."""
        parts = [f"{s} {self.shares[s]:.1%} ({self.entries[s].source} [{self.entries[s].status}])" for s in SOURCES]
        return f"{self.name}: " + "; ".join(parts)


@cache
def default_grid_mix() -> GridMix:
    """The bundled grid mix (`ewaste/data/grid_mix.toml`): world electricity generation in 2024 (Ember,
    Global Electricity Review 2025)."""
    raw = _read("grid_mix.toml")
    entries = {s: Entry(float(raw[s]["value"]), raw[s]["source"], raw[s]["status"]) for s in SOURCES}
    return GridMix({s: float(e.value) for s, e in entries.items()}, raw["name"], entries)


def parse_grid_mix(text: str | None, source: str | None = None) -> GridMix:
    """A grid mix from `--grid-mix fossil=0.6,nuclear=0.1,renewable=0.3` (shares, each of the three
    named once, none negative, summing to 1 within 1e-6); the bundled default for None.

    Raises InputError (naming `source` and the field `--grid-mix`) otherwise.
    """
    if text is None:
        return default_grid_mix()
    fail = lambda message: InputError(source, "--grid-mix", message)  # noqa: E731
    shares: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in SOURCES:
            raise fail(f"expected fossil=SHARE,nuclear=SHARE,renewable=SHARE, not {part.strip()!r}")
        if name in shares:
            raise fail(f"{name} is given twice")
        try:
            shares[name] = float(value)
        except ValueError:
            raise fail(f"{name}: {value.strip()!r} is not a number") from None
        if not math.isfinite(shares[name]) or shares[name] < 0:
            raise fail(f"{name}: a share is a number from 0 to 1, not {value.strip()}")
    missing = [s for s in SOURCES if s not in shares]
    if missing:
        raise fail(f"{', '.join(missing)} missing: give all three shares")
    total = sum(shares.values())
    if abs(total - 1) > SHARE_TOLERANCE:
        raise fail(f"the shares sum to {total:g}, not 1")
    given = Entry(0.0, "given with --grid-mix", "given")
    return GridMix(shares, "grid mix given with --grid-mix", {s: given for s in SOURCES})
