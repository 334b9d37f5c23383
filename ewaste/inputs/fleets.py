"""The [fleets.NAME] tables of a scenario file: driver, lifetime, archetype, composition, metals."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..engine.lifetime import LIFETIME_TYPES, weibull_from_mean_std
from ..engine.stockflow import REPLACEMENT_RULES
from .catalogue import archetypes
from .finance import fleet_finance
from .links import TAKEN, is_link, parse_link
from .parameters import Context, check_keys, choice, named_table, number, parse_parameter, stack, suggest
from .validate import DRIVER_VAR
from .variables import table

FLEET_KEYS = {
    "description",
    "driver",
    "capacity_unit",
    "inflow",
    "stock",
    "demand",
    "capacity_per_unit",
    "inflow_history",
    "lifetime",
    "mass",
    "power",
    "utilisation",
    "composition",
    "pcb_metal_content",
    "replacement",
    "archetype",
    "gpus_per_unit",
    "embodied",
    "finance",
}
LIFETIME_KEYS = {"type", "mean", "std", "shape", "scale", "weights"}
OTHER = "other"


def _composition(raw: Any, ctx: Context, field: str) -> xr.DataArray:
    comp = named_table(raw, table()["composition"], ctx, field)
    total = comp.sum("material")
    names = list(comp["material"].values)
    if OTHER in names:
        if abs(float(total.max()) - 1) > 1e-6 or abs(float(total.min()) - 1) > 1e-6:
            raise ctx.fail(field, f"shares including {OTHER!r} must sum to 1 (they sum to {float(total.max()):.6g})")
        return comp
    if float(total.max()) > 1 + 1e-9:
        raise ctx.fail(field, f"material shares sum to {float(total.max()):.6g}, more than 1")
    rest = (1.0 - total).clip(min=0.0).expand_dims(material=[OTHER])
    return xr.concat([comp, rest], dim="material", coords="minimal")


def _lifetime(raw: Any, ctx: Context, field: str) -> tuple[str, dict[str, xr.DataArray]]:
    if not isinstance(raw, dict):
        raise ctx.fail(field, 'expected a table, e.g. { type = "weibull", shape = 2, scale = 4 }')
    check_keys(raw, LIFETIME_KEYS, ctx.source, field)
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in LIFETIME_TYPES:
        raise ctx.fail(f"{field}.type", f"unknown lifetime type {kind!r}" + suggest(str(kind), set(LIFETIME_TYPES)))
    given = set(raw) - {"type"}
    needed = set(LIFETIME_TYPES[kind])
    if kind == "weibull" and given == {"mean", "std"}:
        mean = parse_parameter(raw["mean"], table()["lifetime_mean"], ctx, f"{field}.mean")
        std = parse_parameter(raw["std"], table()["lifetime_std"], ctx, f"{field}.std")
        mean, std = xr.broadcast(mean, std)
        if float(mean.min()) <= 0 or float(std.min()) <= 0:
            raise ctx.fail(field, "Weibull mean and std must be above zero")
        for p, da in (("mean", mean), ("std", std)):
            if float(da.max()) > table()[f"lifetime_{p}"].max:
                raise ctx.fail(
                    f"{field}.{p}", f"value {float(da.max()):.6g} above the maximum {table()[f'lifetime_{p}'].max:g} yr"
                )
        shape, scale = weibull_from_mean_std(mean.values, std.values)
        limits = table()["lifetime_shape"]
        if shape.max() > limits.max * (1 - 1e-6):
            raise ctx.fail(f"{field}.std", "std/mean too small for a Weibull lifetime (below about 0.013)")
        if shape.min() < limits.min * (1 + 1e-6):
            raise ctx.fail(f"{field}.std", "std/mean too large for a Weibull lifetime")
        if scale.min() < table()["lifetime_scale"].min:
            raise ctx.fail(
                field, f"mean and std give a Weibull scale of {scale.min():.3g} yr, below the minimum 1e-06 yr"
            )
        return kind, {"shape": mean.copy(data=shape), "scale": mean.copy(data=scale)}
    if given != needed:
        missing, extra = needed - given, given - needed
        what = f"missing {', '.join(sorted(missing))}" if missing else f"{', '.join(sorted(extra))} not used"
        raise ctx.fail(
            field,
            f"a {kind} lifetime takes {', '.join(sorted(needed))}"
            + (" (or mean and std)" if kind == "weibull" else "")
            + f": {what}",
        )
    if kind == "tabulated":
        return kind, {"weights": _weights(raw["weights"], ctx, f"{field}.weights")}
    return kind, {p: parse_parameter(raw[p], table()[f"lifetime_{p}"], ctx, f"{field}.{p}") for p in needed}


def _weights(raw: Any, ctx: Context, field: str) -> xr.DataArray:
    """Tabulated retirement shares by lag; a list of lists (or {dim = ..., values = [...]}) sweeps."""
    if isinstance(raw, list) and raw and all(isinstance(v, int | float) for v in raw):
        w = np.array([number(v, ctx, f"{field}[{i}]") for i, v in enumerate(raw)])
        return xr.DataArray(w, dims="lag", coords={"lag": np.arange(len(w))})
    spec = raw if isinstance(raw, dict) else {"values": raw}
    check_keys(spec, {"values", "dim"}, ctx.source, field)
    values = spec.get("values")
    if not isinstance(values, list) or not values or not all(isinstance(v, list) for v in values):
        raise ctx.fail(field, "expected a list of retirement shares, one per lag step (or a list of such lists)")
    parts = [_weights(v, ctx, f"{field}[{i}]") for i, v in enumerate(values)]
    return stack(parts, spec.get("dim"), ctx, field)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def fleet(name: str, raw: Any, ctx: Context) -> tuple[dict[str, xr.DataArray], dict[str, str]]:
    field = f"fleets.{name}"
    if not isinstance(raw, dict):
        raise ctx.fail(field, "expected a table")
    check_keys(raw, FLEET_KEYS, ctx.source, field)
    raw = _with_archetype(raw, ctx, field)
    driver = raw.get("driver")
    if driver is None:
        raise ctx.fail(f"{field}.driver", f"required: one of {', '.join(DRIVER_VAR)}")
    if not isinstance(driver, str) or driver not in DRIVER_VAR:
        raise ctx.fail(f"{field}.driver", f"unknown driver {driver!r}" + suggest(str(driver), set(DRIVER_VAR)))
    required = {"inflow": ["inflow"], "stock": ["stock"], "capacity": ["demand", "capacity_per_unit"]}[driver]
    link = (
        parse_link(raw["inflow"], ctx, f"{field}.inflow") if driver == "inflow" and is_link(raw.get("inflow")) else None
    )
    cascade = link is not None and link[1] == "cascade"
    if cascade:
        for key in (*TAKEN, "embodied", "archetype"):
            if key in raw:
                raise ctx.fail(
                    f"{field}.{key}", f"a cascade's units arrive with the {key} they had in fleet {link[0]!r}"
                )
    for key in [*required, "lifetime", *([] if cascade else ["mass"])]:
        if key not in raw:
            raise ctx.fail(f"{field}.{key}", f"required for {_article(driver)} {driver}-driven fleet")
    for key in {"inflow", "stock", "demand"} - set(required):
        if key in raw:
            raise ctx.fail(f"{field}.{key}", f"not used by {_article(driver)} {driver}-driven fleet")
    out: dict[str, xr.DataArray] = {}
    optional = ["inflow_history", "mass", "power", "utilisation", "gpus_per_unit", "embodied", "capacity_per_unit"]
    for key in dict.fromkeys([*required, *optional]):
        if key == "inflow" and link is not None:  # the source's retirements give it when the model runs
            out["inflow"], out["link_share"] = xr.DataArray(0.0), link[2]
        elif key in raw:
            out[key] = parse_parameter(raw[key], table()[key], ctx, f"{field}.{key}")
    kind, params = _lifetime(raw["lifetime"], ctx, f"{field}.lifetime")
    out.update({f"lifetime_{p}": v for p, v in params.items()})
    if isinstance(raw.get("composition"), str):
        raw = {**raw, "composition": _catalogue_composition(raw["composition"], ctx, f"{field}.composition")}
    if "composition" in raw:
        out["composition"] = _composition(raw["composition"], ctx, f"{field}.composition")
    if "pcb_metal_content" in raw:
        if "composition" not in raw or "circuit_boards" not in raw["composition"]:
            raise ctx.fail(f"{field}.pcb_metal_content", "needs a 'circuit_boards' share in the composition")
        out["pcb_metal_content"] = named_table(
            raw["pcb_metal_content"], table()["pcb_metal_content"], ctx, f"{field}.pcb_metal_content"
        )
    for key in ("description", "capacity_unit"):
        if not isinstance(raw.get(key, ""), str):
            raise ctx.fail(f"{field}.{key}", f"expected text, got {raw[key]!r}")
    strings, counts_capacity = {}, "capacity_per_unit" in raw
    if "finance" in raw:
        price = archetypes()["archetype"].get(raw.get("archetype"), {}).get("price")
        how = ("at their net book value" if link[3] == "book" else "at their resale value") if cascade else ""
        money, method, used = fleet_finance(raw["finance"], ctx, f"{field}.finance", ctx.finance, price, how)
        out.update(money)
        strings["depreciation"] = method
        for key, entry in used.items():
            ctx.defaults.setdefault(key, entry)["where"].append(name)
    if link is not None:
        strings |= {
            "inflow_from": xr.DataArray(link[0]),
            "inflow_link": xr.DataArray(link[1]),
            "inflow_transfer": xr.DataArray(link[3]),
        }
    strings |= {
        "driver": xr.DataArray(driver),
        "lifetime_type": xr.DataArray(kind),
        "description": xr.DataArray(str(raw.get("description", ""))),
        "capacity_unit": xr.DataArray(str(raw.get("capacity_unit", "capacity" if counts_capacity else "unit"))),
        "replacement": choice(raw.get("replacement", "balanced"), REPLACEMENT_RULES, ctx, f"{field}.replacement"),
    }
    return out, strings


def _with_archetype(raw: dict, ctx: Context, field: str) -> dict:
    """The fleet's table with the archetype's mass, power and composition where it gives none."""
    name = raw.get("archetype")
    if name is None:
        return raw
    catalogue = archetypes()
    if not isinstance(name, str) or name not in catalogue["archetype"]:
        raise ctx.fail(
            f"{field}.archetype", f"unknown archetype {name!r}" + suggest(str(name), set(catalogue["archetype"]))
        )
    arch = catalogue["archetype"][name]
    filled = dict(raw)
    taken = {
        "mass": arch["mass"],
        "power": arch["power"],
        "gpus_per_unit": arch["gpus"],
        **({"embodied": arch["embodied"]} if "embodied" in arch else {}),
        "composition": catalogue["composition_data_centre"],
        "pcb_metal_content": catalogue["pcb_metals_data_centre"],
    }
    for key, entry in taken.items():
        if key in raw or (key == "pcb_metal_content" and isinstance(raw.get("composition"), dict)):
            continue
        filled[key] = entry["value"]
        ctx.sources[f"{field}.{key}"] = f"archetype {name}: {entry['source']} [{entry['status']}]"
    return filled


def _catalogue_composition(name: str, ctx: Context, field: str) -> dict:
    """A composition named from the catalogue (archetypes.toml): "data_centre" or "genai_server"."""
    names = {k.removeprefix("composition_") for k in archetypes() if k.startswith("composition_")}
    if name not in names:
        raise ctx.fail(field, f"unknown composition {name!r}" + suggest(name, names))
    entry = archetypes()[f"composition_{name}"]
    ctx.sources.setdefault(field, f"{entry['source']} [{entry['status']}]")
    return entry["value"]
