"""The text fields of the disclosure tables: how the figures were compiled (estimated by a model), the mapping
of model quantities to the fields, the classification, the grid mix, the provenance and sources.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import xarray as xr

from .disclosure_data import GridMix, disposal_routes, fraction_code, hazardous, waste_codes
from .disclosure_flows import REUSE_VARIABLES, ReuseVariable

ROUNDING = (
    "Every mass is rounded once, to the kilogram, at the finest split "
    "(fleet x material x model stream x operation), by largest remainder so that the parts add up to the "
    "rounded total; every figure is a sum of those parts, so total = preparation for reuse + recycling + "
    "other recovery + disposal and hazardous + non-hazardous = total hold exactly."
)
ENERGY_ROUNDING = (
    "Every amount is rounded once, to the kWh, at the finest split (fleet x source), by largest remainder so "
    "that the parts add up to the rounded total: total = fossil + nuclear + renewable holds exactly."
)


def _value(value: object) -> str:
    return f"{value:g}" if isinstance(value, int | float) else json.dumps(value)


def defaults_text(results: xr.Dataset) -> str:
    """The defaults the run used (attribute `defaults_used`), each with its value, source and status."""
    used = json.loads(results.attrs.get("defaults_used", "{}") or "{}")
    parts = []
    for name, item in used.items():
        if "value" in item:
            units = "" if item.get("units") in (None, "1") else f" {item['units']}"
            parts.append(
                f"{name} {_value(item['value'])}{units} ({item.get('source', '?')}) [{item.get('status', '?')}]"
            )
        elif isinstance(item.get("where"), dict):
            for key, each in item["where"].items():
                parts.append(
                    f"{name}[{key}] {_value(each['value'])} ({each.get('source', '?')}) [{each.get('status', '?')}]"
                )
    return "; ".join(parts) if parts else "none"


def sources_text(results: xr.Dataset) -> str:
    """The scenario's sources and each parameter's source (attributes `sources`, `parameter_sources`)."""
    sources = json.loads(results.attrs.get("sources", "[]") or "[]")
    parameters = json.loads(results.attrs.get("parameter_sources", "{}") or "{}")
    text = f"Scenario sources: {'; '.join(sources) if sources else 'none given'}."
    if parameters:
        text += " Parameter sources: " + "; ".join(f"{path}: {where}" for path, where in parameters.items()) + "."
    return text


def provenance_text(results: xr.Dataset) -> str:
    """Estimated by a model; ewaste version; scenario (and grid) file with SHA-256; when it was evaluated."""
    attrs = results.attrs
    text = (
        f"Estimated with a model, not measured: ewaste {attrs.get('ewaste_version', '?')} (a cohort stock-flow "
        f"model of the IT equipment in service and retired). Scenario file {attrs.get('scenario_file', '?')}, "
        f"SHA-256 {attrs.get('scenario_sha256', '?')}"
    )
    if attrs.get("grid_file"):
        text += f"; grid file {attrs['grid_file']}, SHA-256 {attrs.get('grid_sha256', '?')}"
    history = attrs.get("history", "")
    return text + (f"; {history}." if history else ".")


def basis_text(year: int, dims: Sequence[str], draws: str | None) -> str:
    """What one table stands for: the year, the sweep point, the draw."""
    text = f"Reporting year {year}: the flows of that calendar year."
    if dims:
        text += (
            f" One table per sweep point, labelled by {', '.join(dims)} in its columns; "
            "a sweep is not an estimate of uncertainty."
        )
    if draws:
        text += f" {draws}"
    return text


def _classification(basis: str, materials: Sequence[str]) -> str:
    codes = waste_codes()
    if basis == "equipment":
        risky = [m for m in materials if hazardous(fraction_code(m).value)]
        with_, without = (
            codes["equipment"]["with_hazardous_components"],
            codes["equipment"]["without_hazardous_components"],
        )
        return (
            f"Hazardous or not, basis 'equipment' (whole retired units as handed over): a fleet's units are "
            f"{with_.value} (hazardous) where its e-waste holds {', '.join(risky) or 'no hazardous fraction'} "
            f"({with_.source}) [{with_.status}], else {without.value} [{without.status}]."
        )
    parts = [f"{m} {fraction_code(m).value} [{fraction_code(m).status}]" for m in materials]
    return (
        "Hazardous or not, basis 'fraction' (each material as the fraction it becomes at depollution, WEEE "
        f"Directive 2012/19/EU Annex VII): {'; '.join(parts)}; an asterisk marks a hazardous entry."
    )


def _reuse_text(reuse: Mapping[str, ReuseVariable | None]) -> str:
    parts = []
    for stream, operation in (("reused", "Preparation for reuse"), ("refurbished", "Other recovery")):
        found = reuse.get(stream)
        if found is None:
            names = ", ".join(REUSE_VARIABLES[stream])
            parts.append(f"{operation} = 0: the results carry no reuse variable ({names}).")
        elif found.inside:
            parts.append(f"{operation} = the result variable {found.name}, part of the e-waste balance.")
        else:
            parts.append(
                f"{operation} = 0: the result variable {found.name} lies outside the e-waste balance (units passed "
                "on to another use without being discarded, e.g. a cascade into another fleet, which become e-waste "
                f"when they leave the last fleet): not waste, reported apart as {stream}_not_waste_t, not in the "
                "totals."
            )
    return " ".join(parts)


def waste_note(
    results: xr.Dataset,
    basis: str,
    materials: Sequence[str],
    reuse: Mapping[str, ReuseVariable | None],
    table_basis: str,
) -> str:
    """How the waste figures of GRI 306-3/4/5 and ESRS E5-5 were compiled (306-3-b, 306-4-e, 306-5-e; E5 40)."""
    routes = disposal_routes()
    nc_shares, nc_source, nc_status = routes["not_collected"]
    pl_shares, pl_source, pl_status = routes["processing_losses"]
    shares = lambda s: ", ".join(f"{op} {v:.0%}" for op, v in s.items() if v)  # noqa: E731
    return " ".join(
        [
            provenance_text(results),
            table_basis,
            "Waste generated = the mass of the units retired in the year (e-waste), by material as the scenario's "
            "composition.",
            "Recycling = material recovered after pre- and end-processing of formally collected e-waste "
            "(recovered_by_material).",
            f"E-waste not collected formally never counts as recycled: it is directed to disposal, {shares(nc_shares)} "
            f"(fate unknown, also reported as fate_unknown_t; {nc_source}) [{nc_status}].",
            f"Collected e-waste not recovered (processing losses) is directed to disposal, {shares(pl_shares)} "
            f"({pl_source}) [{pl_status}].",
            _reuse_text(reuse),
            _classification(basis, materials),
            "All waste is handed to third parties off site: onsite amounts are 0 [ASSUMED].",
            "Circuit-board metals are contained in circuit_boards, not additional to it.",
            ROUNDING,
            f"Defaults used by the run: {defaults_text(results)}.",
            sources_text(results),
        ]
    )


def streams_note(results: xr.Dataset) -> str:
    """ESRS E5-5 38(a): the waste stream (e-waste of the fleets)."""
    fleets = ", ".join(str(f) for f in results["fleet"].values)
    return (
        f"Waste electrical and electronic equipment (e-waste): retired IT equipment of the fleets {fleets} "
        "(List of Waste chapter 16 02)."
    )


def energy_note(results: xr.Dataset, mix: GridMix, table_basis: str) -> str:
    """How the energy figures of ESRS E1-5 were compiled."""
    return " ".join(
        [
            provenance_text(results),
            table_basis,
            "Electricity used by the units in service on average over the year x power x utilisation x PUE "
            "(facility overhead included), in MWh; no fuels.",
            f"Split by source with the grid mix {mix.describe()}: location-based (the average generation where the "
            "electricity is drawn), not contractual instruments; all of it purchased electricity, so renewable fuels "
            "and self-generated renewable energy are 0.",
            "Paragraphs 38 (fossil sources in detail) and 40-43 (energy intensity) apply to high climate impact "
            "sectors only and are not reported.",
            ENERGY_ROUNDING,
            f"Defaults used by the run: {defaults_text(results)}.",
            sources_text(results),
        ]
    )
