"""Names users see and write: the TOML path of each grid variable, and the rules for dimension names.

Every message about a parameter names it as a scenario file writes it (`fleets.servers.lifetime.mean`,
`recycling.preprocessing_yield.steel`), whether the grid came from a TOML file or a saved NetCDF grid.
"""

from __future__ import annotations

import re

from ..errors import InputError
from .variables import reserved_names, table

ENERGY = {"pue", "grid_intensity"}  # the other global parameters sit in [recycling]
MAX_SWEEP_DIMS = 29
"""Sweep dimensions a grid may have: results add fleet, time and material (or metal) to them, and NetCDF and
Zarr store arrays of 32 dimensions at most."""
MAX_POINTS = 10**15
"""Grid points a grid may have (the product of its sweep sizes): far beyond what any machine can run."""
DIM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,254}")
DIM_RULE = "a dimension name is 1-255 letters, digits, '_', '-' or '.', starting with a letter or '_'"


FINANCE_VARS = ("price", "accounting_life", "salvage", "residual_retention", "declining_factor", "lease_price")
"""Fleet variables given in a fleet's [fleets.NAME.finance] table."""


def toml_path(var: str, fleet: str | None = None, label: str | None = None) -> str:
    """The TOML path of grid variable `var` for `fleet` (fleet parameters) and `label` (an entry of a
    table keyed by material or metal): `lifetime_mean` -> `fleets.F.lifetime.mean`,
    `metal_preprocessing_yield` + `Au` -> `recycling.preprocessing_yield.Au`."""
    name = var.removeprefix("metal_")
    if name.startswith("lifetime_"):
        name = "lifetime." + name.removeprefix("lifetime_")
    if var in FINANCE_VARS:
        name = "finance." + name
    scope = table()[var].scope if var in table() else "fleet"
    if scope == "fleet":
        path = f"fleets.{fleet if fleet is not None else '*'}.{name}"
    else:
        path = f"{'energy' if var in ENERGY else 'recycling'}.{name}"
    return path if label is None else f"{path}.{label}"


def dim_name_problem(name: object) -> str | None:
    """Why `name` cannot name a sweep dimension (None if it can): names the grid or the results use,
    and names NetCDF or Zarr cannot store (slashes, spaces, control characters, '.', '..', ...)."""
    if not isinstance(name, str) or not name:
        return f"{name!r} cannot name a dimension: {DIM_RULE}"
    if name in reserved_names():
        return f"{name!r} cannot name a dimension: the grid or the results use it"
    if not DIM_NAME.fullmatch(name) or name.startswith("__"):
        why = "it may not start with '__'" if DIM_NAME.fullmatch(name) else DIM_RULE
        return f"{name!r} cannot name a dimension (NetCDF and Zarr store it): {why}"
    return None


def check_dim_name(name: object, source: str, field: str, hint: str = "") -> None:
    """Refuse a dimension name that the grid, the results, NetCDF or Zarr cannot take.

    Raises InputError naming `source` and `field`; `hint` is added to the message.
    """
    problem = dim_name_problem(name)
    if problem:
        raise InputError(source, field, problem + hint)


def check_sweep_sizes(sizes: dict[str, int], source: str, field: str) -> None:
    """Refuse more than MAX_SWEEP_DIMS sweep dimensions, or more than MAX_POINTS grid points.

    Raises InputError naming `source` and `field` (the parameter or dimension that went over).
    """
    if len(sizes) > MAX_SWEEP_DIMS:
        raise InputError(
            source, field, f"{len(sizes)} sweep dimensions, more than the {MAX_SWEEP_DIMS} a grid can have"
        )
    points = 1
    for n in sizes.values():
        points *= int(n)
    if points > MAX_POINTS:
        raise InputError(source, field, f"the sweeps give {points:.3g} grid points, more than {MAX_POINTS:.0e}")
