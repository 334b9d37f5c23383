"""The fields of the disclosure tables: GRI 306-3/4/5, ESRS E5-5 and ESRS E1-5, each with its stable field ID,
the paragraph it answers, its unit, and how it is summed from the ledger.

Field IDs follow the project's disclosure reference (snake_case, unit suffix `_t`, `_kg`, `_mwh`,
`_pct`; `[name]` for one field per material or metal). Every mass field is a sum of the same
integer-kilogram parts (`Ledger`), so totals equal the sums of their parts exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .disclosure_data import DISPOSAL, SOURCES
from .disclosure_flows import DIVERTED, OPERATIONS, STREAMS

STANDARDS = ("gri-306", "esrs-e5", "esrs-e1")
TITLES = {
    "gri-306": "GRI 306: Waste 2020, disclosures 306-3, 306-4, 306-5",
    "esrs-e5": "ESRS E5-5 Resource outflows: waste",
    "esrs-e1": "ESRS E1-5 Energy consumption and mix",
}
RECOVERY_NAMES = {"prep_reuse": "preparation for reuse", "recycling": "recycling", "other_recovery": "other recovery"}
DISPOSAL_NAMES = {
    "incin_er": "incineration (with energy recovery)",
    "incin_no_er": "incineration (without energy recovery)",
    "landfill": "landfilling",
    "other": "other disposal operations",
}
ROMAN = ("i", "ii", "iii", "iv")


@dataclass(frozen=True)
class Field:
    """One line of a disclosure table: stable ID, the paragraph of the standard, what it is, its unit."""

    id: str
    reference: str
    description: str
    unit: str


@dataclass
class Ledger:
    """The integer parts every field sums, one row per sweep point (P points).

    kg: e-waste in whole kilograms, shape (P, fleet, material, stream, operation), axes as `materials`,
    STREAMS, OPERATIONS; hazardous: (P, fleet, material) bool; metals_g: metal -> grams per point
    (contained in circuit boards); not_waste_kg: reuse variables outside the e-waste balance, kg per point;
    energy_kwh: electricity in whole kWh, shape (P, fleet, source of SOURCES).
    """

    materials: Sequence[str]
    kg: np.ndarray | None = None
    hazardous: np.ndarray | None = None
    metals_g: dict[str, np.ndarray] | None = None
    energy_kwh: np.ndarray | None = None
    not_waste_kg: dict[tuple[str, str], np.ndarray] | None = None  # (stream, result variable) -> kg per point

    def mass(
        self,
        operations: Sequence[str] = OPERATIONS,
        hazard: bool | None = None,
        material: str | None = None,
        streams: Sequence[str] = STREAMS,
    ) -> np.ndarray:
        """Kilograms per point (int64, shape (P,)) of the parts in `operations` and `streams`, of one
        `material` (all for None), hazardous only (True), non-hazardous only (False) or both (None)."""
        kg = self.kg[..., [STREAMS.index(s) for s in streams], :][..., [OPERATIONS.index(o) for o in operations]]
        kg = kg.sum(axis=(3, 4))  # (P, fleet, material)
        if hazard is not None:
            kg = np.where(self.hazardous == hazard, kg, 0)
        if material is not None:
            kg = kg[:, :, list(self.materials).index(material)]
            return kg.sum(axis=1)
        return kg.sum(axis=(1, 2))

    def energy(self, sources: Sequence[str] = SOURCES) -> np.ndarray:
        """Whole kWh per point (int64, shape (P,)) from the given sources."""
        return self.energy_kwh[..., [SOURCES.index(s) for s in sources]].sum(axis=(1, 2))


Row = tuple[Field, np.ndarray | str]
Notes = dict[str, str]


def tonnes(kg: np.ndarray) -> np.ndarray:
    """Whole kilograms as tonnes (1 t = 1,000 kg, GRI 306 compilation requirement 2.1): three exact decimals."""
    return kg / 1000


def percent(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """100 x part / whole, rounded to 2 decimals; NaN where the whole is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(whole > 0, np.round(100 * part / np.where(whole > 0, whole, 1), 2), np.nan)


def _by_composition(ledger: Ledger, field: str, reference: str, what: str, operations: Sequence[str]) -> list[Row]:
    return [
        (
            Field(f"{field}[{m}]", reference, f"{what}, by composition: {m}", "t"),
            tonnes(ledger.mass(operations, material=m)),
        )
        for m in ledger.materials
    ]


def _metals(ledger: Ledger, reference: str, field: str = "waste_board_metals_kg") -> list[Row]:
    return [
        (
            Field(
                f"{field}[{metal}]", reference, f"{metal} contained in circuit boards (part of circuit_boards)", "kg"
            ),
            g / 1000,
        )
        for metal, g in (ledger.metals_g or {}).items()
    ]


def _recovery(ledger: Ledger, clause: str, hazard: bool, onsite: bool = False) -> list[Row]:
    """Diverted from disposal by recovery operation, hazardous or not (306-4-b/c), or onsite/offsite (306-4-d)."""
    kind = "haz" if hazard else "nonhaz"
    label = "hazardous" if hazard else "non-hazardous"
    rows = []
    for n, op in enumerate(DIVERTED):
        kg = ledger.mass([op], hazard)
        if not onsite:
            ref = f"GRI 306-4-{clause}-{ROMAN[n]}"
            rows.append(
                (
                    Field(f"diverted_{kind}_{op}_t", ref, f"{label} waste diverted: {RECOVERY_NAMES[op]}", "t"),
                    tonnes(kg),
                )
            )
            continue
        for where, value in (("onsite", kg * 0), ("offsite", kg)):
            desc = f"{label} waste diverted: {RECOVERY_NAMES[op]}, {where}"
            rows.append((Field(f"diverted_{kind}_{op}_{where}_t", "GRI 306-4-d", desc, "t"), tonnes(value)))
    return rows


def _disposal(ledger: Ledger, clause: str, hazard: bool, onsite: bool = False) -> list[Row]:
    """Directed to disposal by disposal operation, hazardous or not (306-5-b/c), or onsite/offsite (306-5-d)."""
    kind = "haz" if hazard else "nonhaz"
    label = "hazardous" if hazard else "non-hazardous"
    rows = []
    for n, op in enumerate(DISPOSAL):
        kg = ledger.mass([op], hazard)
        if not onsite:
            ref = f"GRI 306-5-{clause}-{ROMAN[n]}"
            rows.append(
                (
                    Field(
                        f"disposal_{kind}_{op}_t", ref, f"{label} waste directed to disposal: {DISPOSAL_NAMES[op]}", "t"
                    ),
                    tonnes(kg),
                )
            )
            continue
        for where, value in (("onsite", kg * 0), ("offsite", kg)):
            desc = f"{label} waste directed to disposal: {DISPOSAL_NAMES[op]}, {where}"
            rows.append((Field(f"disposal_{kind}_{op}_{where}_t", "GRI 306-5-d", desc, "t"), tonnes(value)))
    return rows


def _not_waste(ledger: Ledger, reference: str) -> list[Row]:
    """Retired units passed on without being discarded (a reuse variable outside the e-waste balance)."""
    rows = []
    for (stream, variable), kg in (ledger.not_waste_kg or {}).items():
        desc = f"retired units passed on, not discarded (result variable {variable}): not waste, not in the totals"
        rows.append((Field(f"{stream}_not_waste_t", reference, desc, "t"), tonnes(kg)))
    return rows


def _fate_unknown(ledger: Ledger, reference: str) -> Row:
    desc = "e-waste not collected formally, fate unknown (within other disposal operations)"
    return Field("fate_unknown_t", reference, desc, "t"), tonnes(ledger.mass(["other"], streams=["not_collected"]))


def gri_306(ledger: Ledger, notes: Notes) -> list[Row]:
    """GRI 306: Waste 2020, disclosures 306-3 (generated), 306-4 (diverted from disposal), 306-5 (directed
    to disposal), and the compilation note of 306-3-b / 306-4-e / 306-5-e."""
    rows: list[Row] = [
        (Field("waste_generated_t", "GRI 306-3-a", "total weight of waste generated", "t"), tonnes(ledger.mass()))
    ]
    rows += _by_composition(ledger, "waste_generated_by_composition_t", "GRI 306-3-a", "waste generated", OPERATIONS)
    for hazard, kind, label in ((True, "haz", "hazardous"), (False, "nonhaz", "non-hazardous")):
        desc = f"waste generated, by composition: {label}"
        rows.append((Field(f"waste_generated_{kind}_t", "GRI 306-3-a", desc, "t"), tonnes(ledger.mass(hazard=hazard))))
    rows += _metals(ledger, "GRI 306-3-a")
    rows += _not_waste(ledger, "GRI 306-3 (ewaste: not waste)")
    rows.append(
        (
            Field("diverted_t", "GRI 306-4-a", "total weight of waste diverted from disposal", "t"),
            tonnes(ledger.mass(DIVERTED)),
        )
    )
    rows += _by_composition(
        ledger, "diverted_by_composition_t", "GRI 306-4-a", "waste diverted from disposal", DIVERTED
    )
    rows += _recovery(ledger, "b", True) + _recovery(ledger, "c", False)
    rows += _recovery(ledger, "d", True, onsite=True) + _recovery(ledger, "d", False, onsite=True)
    rows.append(
        (
            Field("disposal_t", "GRI 306-5-a", "total weight of waste directed to disposal", "t"),
            tonnes(ledger.mass(DISPOSAL)),
        )
    )
    rows += _by_composition(ledger, "disposal_by_composition_t", "GRI 306-5-a", "waste directed to disposal", DISPOSAL)
    rows += _disposal(ledger, "b", True) + _disposal(ledger, "c", False)
    rows += _disposal(ledger, "d", True, onsite=True) + _disposal(ledger, "d", False, onsite=True)
    rows.append(_fate_unknown(ledger, "GRI 306-5-b-iv (ewaste)"))
    rows.append(
        (
            Field("waste_context_note", "GRI 306-3-b, 306-4-e, 306-5-e", "how the data were compiled", "text"),
            notes["waste"],
        )
    )
    return rows


def esrs_e5(ledger: Ledger, notes: Notes) -> list[Row]:
    """ESRS E5-5 Resource outflows, waste (paras 37-40; Delegated Regulation (EU) 2023/2772)."""
    total = ledger.mass()
    rows: list[Row] = [
        (Field("waste_total_t", "ESRS E5-5 37(a)", "total amount of waste generated", "t"), tonnes(total))
    ]
    for hazard, kind, label in ((True, "haz", "hazardous"), (False, "nonhaz", "non-hazardous")):
        for n, op in enumerate(DIVERTED):
            ref = f"ESRS E5-5 37(b)({ROMAN[n]})"
            desc = f"{label} waste diverted from disposal: {RECOVERY_NAMES[op]}"
            rows.append((Field(f"diverted_{kind}_{op}_t", ref, desc, "t"), tonnes(ledger.mass([op], hazard))))
    for hazard, kind, label in ((True, "haz", "hazardous"), (False, "nonhaz", "non-hazardous")):
        for n, (op, ops) in enumerate(
            (("incineration", DISPOSAL[:2]), ("landfill", ["landfill"]), ("other", ["other"]))
        ):
            desc = f"{label} waste directed to disposal: {op if op != 'other' else 'other disposal operations'}"
            rows.append(
                (
                    Field(f"disposal_{kind}_{op}_t", f"ESRS E5-5 37(c)({ROMAN[n]})", desc, "t"),
                    tonnes(ledger.mass(ops, hazard)),
                )
            )
    rows.append(
        (
            Field("disposal_total_t", "ESRS E5-5 37(c)", "total waste directed to disposal", "t"),
            tonnes(ledger.mass(DISPOSAL)),
        )
    )
    non_recycled = ledger.mass([op for op in OPERATIONS if op != "recycling"])
    rows.append(
        (Field("non_recycled_t", "ESRS E5-5 37(d)", "total amount of non-recycled waste", "t"), tonnes(non_recycled))
    )
    rows.append(
        (
            Field("non_recycled_pct", "ESRS E5-5 37(d)", "percentage of non-recycled waste", "%"),
            percent(non_recycled, total),
        )
    )
    rows.append(
        (
            Field("waste_streams_note", "ESRS E5-5 38(a)", "waste streams relevant to the sector", "text"),
            notes["streams"],
        )
    )
    rows += [
        (
            Field(f"waste_materials_t[{m}]", "ESRS E5-5 38(b)", f"materials present in the waste: {m}", "t"),
            tonnes(ledger.mass(material=m)),
        )
        for m in ledger.materials
    ]
    rows += _metals(ledger, "ESRS E5-5 38(b)")
    rows += _not_waste(ledger, "ESRS E5-5 37 (ewaste: not waste)")
    rows.append(
        (
            Field("hazardous_waste_t", "ESRS E5-5 39", "total amount of hazardous waste", "t"),
            tonnes(ledger.mass(hazard=True)),
        )
    )
    rows.append(
        (Field("radioactive_waste_t", "ESRS E5-5 39", "total amount of radioactive waste", "t"), tonnes(total * 0))
    )
    rows.append(_fate_unknown(ledger, "ESRS E5-5 37(c)(iii) (ewaste)"))
    rows.append(
        (Field("waste_methodology_note", "ESRS E5-5 40", "methodologies and key assumptions", "text"), notes["waste"])
    )
    return rows


def esrs_e1(ledger: Ledger, notes: Notes) -> list[Row]:
    """ESRS E1-5 Energy consumption and mix (paras 37(a)-(c), AR 34 shares)."""
    total = ledger.energy()
    mwh = lambda kwh: kwh / 1000  # noqa: E731 - whole kWh as MWh, three exact decimals
    rows: list[Row] = [
        (
            Field("energy_total_mwh", "ESRS E1-5 37", "total energy consumption related to own operations", "MWh"),
            mwh(total),
        )
    ]
    for n, source in enumerate(SOURCES):
        desc = f"total energy consumption from {source} sources"
        rows.append(
            (Field(f"energy_{source}_mwh", f"ESRS E1-5 37({'abc'[n]})", desc, "MWh"), mwh(ledger.energy([source])))
        )
    renewable = ledger.energy(["renewable"])
    for n, (key, desc, value) in enumerate(
        (
            ("renewable_fuel_mwh", "fuel consumption from renewable sources", renewable * 0),
            ("renewable_purchased_mwh", "purchased or acquired electricity from renewable sources", renewable),
            ("renewable_selfgen_nonfuel_mwh", "self-generated non-fuel renewable energy", renewable * 0),
        )
    ):
        rows.append((Field(key, f"ESRS E1-5 37(c)({ROMAN[n]})", desc, "MWh"), mwh(value)))
    for source in SOURCES:
        desc = f"share of {source} sources in total energy consumption"
        rows.append(
            (Field(f"energy_share_{source}_pct", "ESRS E1 AR 34", desc, "%"), percent(ledger.energy([source]), total))
        )
    rows.append(
        (
            Field("energy_methodology_note", "ESRS E1-5 (ewaste)", "methodologies and key assumptions", "text"),
            notes["energy"],
        )
    )
    return rows


TABLES: dict[str, Callable[[Ledger, Notes], list[Row]]] = {"gri-306": gri_306, "esrs-e5": esrs_e5, "esrs-e1": esrs_e1}
