"""Scenario files (TOML) -> scenario grid (`xarray.Dataset`): sections, fleets and global parameters
assembled over fleet, time and the sweep dimensions. See docs/scenario-format.md.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..engine.lifetime import AGE_CONVENTIONS
from ..engine.stockflow import NEGATIVE_INFLOW_POLICIES
from ..errors import InputError
from ..version import __version__
from .defaults import ATTR, UNUSED, fill_globals, fleet_default
from .distributions import Distribution
from .finance import settings as finance_settings
from .finance import without_finance
from .fleets import fleet
from .links import NONE as NO_LINK
from .links import TAKEN, check_links
from .names import check_dim_name
from .parameters import Context, check_keys, named_table, parse_parameter, suggest
from .sampling import DRAWS, Design, draw, parse_design
from .timeaxis import STEPS_PER_YEAR, history_coords
from .tomlfile import check_nesting, read_toml
from .uncertain import Uncertainty
from .validate import validate
from .variables import cf_attrs, table

SECTIONS = {
    "scenario": {
        "name",
        "description",
        "sources",
        "start_year",
        "end_year",
        "step",
        "target_year",
        "age_convention",
        "negative_inflow",
    },
    "dimensions": None,
    "sources": None,
    "fleets": None,
    "recycling": {"collection_rate", "preprocessing_yield", "endprocessing_yield"},
    "energy": {"pue", "grid_intensity"},
    "uncertainty": None,
    "finance": None,
}
DEFAULT_DESIGN = Design(draws=DRAWS, seed=0, sampler="lhs")  # distributions without an [uncertainty] section


def _meta(raw: dict, source: str) -> dict:
    meta = {
        "name": Path(source).stem,
        "description": "",
        "sources": [],
        "start_year": 2020,
        "end_year": 2030,
        "step": "year",
        "target_year": None,
        "age_convention": "middle",
        "negative_inflow": "correct",
    }
    section = raw.get("scenario", {})
    if not isinstance(section, dict):
        raise InputError(source, "scenario", "expected a table")
    check_keys(section, SECTIONS["scenario"], source, "scenario")
    meta.update(section)
    for key in ("name", "description"):
        if not isinstance(meta[key], str):
            raise InputError(source, f"scenario.{key}", f"expected text, got {meta[key]!r}")
    if not isinstance(meta["sources"], list) or not all(isinstance(s, str) for s in meta["sources"]):
        raise InputError(source, "scenario.sources", 'expected a list of strings, e.g. ["de Vries (2023)"]')
    for key in ("start_year", "end_year"):
        if isinstance(meta[key], bool) or not isinstance(meta[key], int) or not 1900 <= meta[key] <= 2300:
            raise InputError(source, f"scenario.{key}", f"expected a year between 1900 and 2300, got {meta[key]!r}")
    if meta["end_year"] < meta["start_year"]:
        raise InputError(source, "scenario.end_year", "ends before the start year")
    if meta["target_year"] is None:
        meta["target_year"] = min(max(2030, meta["start_year"]), meta["end_year"])
    if not isinstance(meta["target_year"], int) or not meta["start_year"] <= meta["target_year"] <= meta["end_year"]:
        raise InputError(source, "scenario.target_year", "must be a year between start_year and end_year")
    choices = {"step": STEPS_PER_YEAR, "age_convention": AGE_CONVENTIONS, "negative_inflow": NEGATIVE_INFLOW_POLICIES}
    for key, allowed in choices.items():
        if not isinstance(meta[key], str) or meta[key] not in allowed:
            raise InputError(
                source, f"scenario.{key}", f"unknown value {meta[key]!r}" + suggest(str(meta[key]), set(allowed))
            )
    return meta


def _global(raw: dict, ctx: Context, materials: list[str], metals: list[str]) -> dict[str, xr.DataArray]:
    out = {}
    for section in ("recycling", "energy"):
        body = raw.get(section, {})
        if not isinstance(body, dict):
            raise ctx.fail(section, "expected a table")
        check_keys(body, SECTIONS[section], ctx.source, section)
        for key, val in body.items():
            field = f"{section}.{key}"
            if key.endswith("_yield"):
                if not isinstance(val, dict):
                    raise ctx.fail(field, "expected a table of material or metal names, e.g. { steel = 0.9 }")
                unknown = set(val) - set(materials) - set(metals)
                for name in unknown:
                    raise ctx.fail(
                        f"{field}.{name}",
                        "not a material or metal of any fleet" + suggest(name, set(materials) | set(metals)),
                    )
                mat = {k: v for k, v in val.items() if k in materials}
                met = {k: v for k, v in val.items() if k in metals}
                if mat:
                    out[key] = named_table(mat, table()[key], ctx, field)
                if met:
                    out[f"metal_{key}"] = named_table(met, table()[f"metal_{key}"], ctx, field)
            else:
                out[key] = parse_parameter(val, table()[key], ctx, field)
    return out


def _sources(raw: dict, source: str) -> dict[str, str]:
    """The optional [sources] table: parameter path (as written in the file) -> where it comes from."""
    table_ = raw.get("sources", {})
    if not isinstance(table_, dict):
        raise InputError(source, "sources", 'expected a table of parameter = "source" entries')
    for path, text in table_.items():
        node: Any = raw
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            raise InputError(source, f"sources.{path}", "names no parameter of this file")
        if not isinstance(text, str):
            raise InputError(source, f"sources.{path}", "expected a string")
    return dict(table_)


def scenario_to_grid(
    raw: dict, source: str, text_hash: str = "", draws: dict[str, np.ndarray] | None = None
) -> xr.Dataset:
    """Build the scenario grid from a parsed scenario file: every value a run reads, in canonical
    units, with the defaults used recorded in the attribute `defaults_used` (JSON).

    Parameters given as distributions get a `draw` dimension: their draws, made from the file's
    [uncertainty] design (or `draws`, by TOML path in the file's units, as sensitivity analysis
    passes its own samples); the design and the distributions are recorded in the attribute
    `uncertainty` (JSON).

    Raises InputError naming `source` and the TOML path at fault.
    """
    design = parse_design(raw["uncertainty"], source) if "uncertainty" in raw else None
    first = Uncertainty(draws)
    grid = _build(raw, source, text_hash, first)
    if not first.found:
        if design is not None:
            raise InputError(source, "uncertainty", "no parameter of this file carries a distribution ({ dist = ... })")
        return grid
    if draws is None:
        design = design or DEFAULT_DESIGN
        second = Uncertainty(draw(list(first.found.values()), design, source))
        grid = _build(raw, source, text_hash, second)
    record = {"parameters": first.record()}
    if draws is None:
        record |= {"draws": design.draws, "seed": design.seed, "sampler": design.sampler}
        record["correlations"] = [list(c) for c in design.correlations]
    grid.attrs["uncertainty"] = json.dumps(record)
    return grid


def distributions(raw: dict, source: str) -> list[Distribution]:
    """The uncertain parameters of a parsed scenario file, in the order the file gives them.

    Raises InputError as `scenario_to_grid` does.
    """
    found = Uncertainty()
    _build(raw, source, "", found)
    return list(found.found.values())


def _build(raw: dict, source: str, text_hash: str, uncertainty: Uncertainty) -> xr.Dataset:
    check_nesting(raw, source)
    for key in raw:
        if key not in SECTIONS:
            raise InputError(source, key, "unknown section" + suggest(key, set(SECTIONS)))
    meta = _meta(raw, source)
    dims = raw.get("dimensions", {})
    if not isinstance(dims, dict) or not all(isinstance(v, list) and v for v in dims.values()):
        raise InputError(source, "dimensions", "expected name = [labels, ...] entries")
    for name, labels in dims.items():
        check_dim_name(name, source, f"dimensions.{name}")
        if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in labels):
            raise InputError(source, f"dimensions.{name}", "labels are plain text or numbers")
        if len(set(labels)) != len(labels):
            raise InputError(source, f"dimensions.{name}", "labels repeat")
    ctx = Context(source, meta, dims, uncertainty)
    ctx.finance = finance_settings(raw.get("finance"), source)
    fleets_raw = raw.get("fleets")
    if not isinstance(fleets_raw, dict) or not fleets_raw:
        raise InputError(source, "fleets", "a scenario needs at least one [fleets.NAME] table")
    for name in fleets_raw:
        if not name.replace("_", "").replace("-", "").isalnum():
            raise InputError(source, f"fleets.{name}", "a fleet name is letters, digits, '_' and '-'")
    fleets = {name: fleet(name, body, ctx) for name, body in fleets_raw.items()}
    _complete_finance(fleets, ctx)
    _complete_links(fleets, ctx)
    metals = sorted(
        {m for v, _ in fleets.values() if "pcb_metal_content" in v for m in v["pcb_metal_content"]["metal"].values}
    )
    used: dict = dict(ctx.defaults)
    data = _fleet_variables(fleets, used)
    materials = sorted(str(m) for m in data["composition"]["material"].values)
    globals_ = _global(raw, ctx, materials, metals)
    fill_globals(globals_, materials, metals, used)
    grid = _assemble(data, globals_, ctx)
    ctx.sources.update(_sources(raw, source))
    for name in dims:
        if name not in grid.dims:
            raise InputError(source, f"dimensions.{name}", "declared, but no parameter varies along it")
    grid.attrs.update(
        {
            "title": str(meta["name"]),
            "description": str(meta["description"]),
            "sources": json.dumps(meta["sources"]),
            "start_year": meta["start_year"],
            "end_year": meta["end_year"],
            "step": meta["step"],
            "target_year": meta["target_year"],
            "age_convention": meta["age_convention"],
            "negative_inflow": meta["negative_inflow"],
            "scenario_file": Path(source).name,
            "scenario_sha256": text_hash,
            "history": f"built by ewaste {__version__} from {Path(source).name}",
            "ewaste_grid_version": 2,
            "parameter_sources": json.dumps(ctx.sources),
            ATTR: json.dumps(used),
        }
    )
    if ctx.finance is not None:
        grid.attrs["finance"] = json.dumps(ctx.finance)
    return grid


def _complete_links(fleets: dict, ctx: Context) -> None:
    """Where some fleets take their inflow from others: the others hold no link, the links are
    checked (known fleets, no cycle, cascade shares <= 1), and a cascade's units arrive with what
    they are made of in their source fleet (its mass, power, materials, metals, GPUs; embodied 0:
    counted at the first purchase), in place."""
    if not any("inflow_from" in strings for _, strings in fleets.values()):
        return
    for numeric, strings in fleets.values():
        if "inflow_from" not in strings:
            strings |= {
                "inflow_from": xr.DataArray(""),
                "inflow_link": xr.DataArray(NO_LINK),
                "inflow_transfer": xr.DataArray(""),
            }
            numeric["link_share"] = xr.DataArray(0.0)
    sources = {n: str(s["inflow_from"].values) for n, (_, s) in fleets.items()}
    kinds = {n: str(s["inflow_link"].values) for n, (_, s) in fleets.items()}
    shares = {n: v["link_share"] for n, (v, _) in fleets.items()}
    for name in check_links(sources, kinds, shares, ctx.source):
        if kinds[name] != "cascade":
            continue
        numeric, source = fleets[name][0], fleets[sources[name]][0]
        numeric.update({k: source[k] for k in TAKEN if k in source})
        fleets[name][1]["capacity_unit"] = fleets[sources[name]][1]["capacity_unit"]
        if "embodied" in source:  # counted when the units were first bought
            numeric["embodied"] = xr.DataArray(0.0)
        ctx.sources[f"fleets.{name}.mass"] = f"arrives with the units retired by fleet {sources[name]} (cascade)"


def _complete_finance(fleets: dict, ctx: Context) -> None:
    """Where some fleets have a finance table, the others hold no money (price 0), in place; a
    [finance] section without any fleet's finance table is refused."""
    with_money = [name for name, (_, strings) in fleets.items() if "depreciation" in strings]
    if ctx.finance is not None and not with_money:
        raise InputError(ctx.source, "finance", "no fleet has a [fleets.NAME.finance] table: nothing to price")
    for numeric, strings in fleets.values():
        if with_money and "depreciation" not in strings:
            money, method = without_finance()
            numeric.update(money)
            strings["depreciation"] = method


def _fleet_variables(fleets: dict, used: dict) -> dict[str, xr.DataArray]:
    """Each fleet variable over `fleet`: what the fleet gives, else its default (recorded in `used`),
    else UNUSED where the fleet does not read it (another driver's data or lifetime's parameters)."""
    names = list(fleets)
    fleet_vars = sorted({k for v, _ in fleets.values() for k in v} | {"power", "utilisation", "composition"})
    data: dict[str, xr.DataArray] = {}
    for var in fleet_vars:
        parts = []
        for name in names:
            given = fleets[name][0]
            default = None if var in given else fleet_default(var)
            if default is not None and default[1] is not None:
                used.setdefault(var, default[1])["where"].append(name)
            parts.append(given[var] if var in given else default[0] if default else xr.DataArray(UNUSED))
        data[var] = _over_fleets(parts, names, fill_value=0.0)
    for var in fleets[names[0]][1]:
        data[var] = _over_fleets([fleets[f][1][var] for f in names], names)
    return data


def _over_fleets(parts: list[xr.DataArray], names: list[str], **fill: float) -> xr.DataArray:
    """One variable of each fleet along `fleet` (outer join); one fleet's without a copy (drawn
    parameters are draws x steps: 90 MB at a million draws)."""
    if len(parts) == 1:  # a view of the fleet's own array (nothing writes into a grid in place)
        return parts[0].expand_dims(fleet=names)
    return xr.concat(parts, dim=xr.DataArray(names, dims="fleet"), coords="minimal", join="outer", **fill)


def _assemble(data: dict[str, xr.DataArray], globals_: dict[str, xr.DataArray], ctx: Context) -> xr.Dataset:
    names = [str(f) for f in data["mass"]["fleet"].values]
    grid = xr.Dataset({**data, **globals_}).assign_coords(fleet=names, **{k: v for k, v in ctx.coords.items()})
    if ctx.history_years:
        grid = grid.assign_coords(history_coords(ctx.history_years, ctx.meta["start_year"], ctx.meta["step"]))
    for dim, labels in ctx.dimensions.items():
        if dim in grid.dims:
            grid = grid.assign_coords({dim: xr.DataArray(labels, dims=dim, attrs={"long_name": f"[dimensions] {dim}"})})
    for var in grid.data_vars:
        if var in table():
            grid[var].attrs.update(cf_attrs(var))
    return grid


def load_scenario(path: str | Path) -> xr.Dataset:
    """Read a scenario file (TOML) into a validated scenario grid."""
    path = Path(path)
    raw = read_toml(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        grid = scenario_to_grid(raw, str(path), digest)
    except (TypeError, ValueError) as exc:  # a value of a shape no check above foresaw
        raise InputError(str(path), None, f"malformed scenario: {exc}") from None
    return validate(grid, str(path))
