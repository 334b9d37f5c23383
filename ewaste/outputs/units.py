"""Numbers for people: one unit per row, chosen from the row's own values, three significant figures,
thousands separators, never an exponent."""

from __future__ import annotations

import math
from collections.abc import Iterable

# canonical unit -> (factor, shown unit), largest first; values are divided by the factor
SCALES: dict[str, list[tuple[float, str]]] = {
    "t": [(1e6, "Mt"), (1e3, "kt"), (1.0, "t"), (1e-3, "kg"), (1e-6, "g")],
    "TWh": [(1.0, "TWh"), (1e-3, "GWh"), (1e-6, "MWh"), (1e-9, "kWh")],
    "MtCO2e": [(1.0, "MtCO2e"), (1e-3, "ktCO2e"), (1e-6, "tCO2e"), (1e-9, "kgCO2e")],
    "unit": [(1e6, "M units"), (1e3, "k units"), (1.0, "units")],
    "GPU": [(1e6, "M GPUs"), (1e3, "k GPUs"), (1.0, "GPUs")],
    "GPU yr": [(1e6, "M GPU-years"), (1e3, "k GPU-years"), (1.0, "GPU-years")],
}


def _money(code: str) -> list[tuple[float, str]]:
    return [(1e9, f"bn {code}"), (1e6, f"M {code}"), (1e3, f"k {code}"), (1.0, code)]


def choose(units: str, values: Iterable[float]) -> tuple[float, str]:
    """The factor and unit under which the largest of `values` reads between 1 and 1,000 where the
    scale allows (`units` may end in a rate such as "/yr", kept as it is)."""
    base, slash, per = units.partition("/")
    scales = SCALES.get(base) or (_money(base) if len(base) == 3 and base.isalpha() and base.isupper() else None)
    if scales is None:
        return 1.0, units
    top = max((abs(v) for v in values if math.isfinite(v)), default=0.0)
    factor, name = scales[-1]
    for f, n in scales:
        if top >= f:
            factor, name = f, n
            break
    if top == 0.0:
        factor, name = next((f, n) for f, n in scales if f == 1.0)
    return factor, name + (slash + per if slash else "")


def number(value: float) -> str:
    """Three significant figures, thousands separators, no exponent: 1,060 / 21.9 / 0.00132."""
    if not math.isfinite(value):
        return "n/a"
    if value == 0.0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    rounded = round(value, digits)
    if rounded != 0 and math.floor(math.log10(abs(rounded))) > math.floor(math.log10(abs(value))):
        digits = max(0, digits - 1)  # 9.996 -> 10.0, not 10.00
    return f"{value:,.{digits}f}"


def row(units: str, values: list[float]) -> tuple[list[str], str]:
    """The values of one row as text in the unit chosen for the row, and that unit."""
    factor, name = choose(units, values)
    return [number(v / factor) for v in values], name
