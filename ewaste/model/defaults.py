"""Defaults for what a grid leaves out, recorded with their source and where they applied (the
results' `defaults_used`): the grid's own record, merged with the variables it leaves out altogether."""

from __future__ import annotations

import xarray as xr

from ..inputs.defaults import fill_absent, recorded


def fill_defaults(grid: xr.Dataset) -> tuple[xr.Dataset, dict[str, dict]]:
    """Give every variable a grid leaves out altogether its default; return the grid and which
    defaults were used where.

    A validated grid holds no NaN: a grid built from a scenario file already holds its defaults and
    records them in its attribute `defaults_used`, which is kept where the grid still holds those
    values (a value edited since is no longer a default). Variables absent altogether (a grid built
    or edited in Python) take the sourced defaults (variables table, recycling yields) and are
    recorded too. Entries: {"value", "units", "source", "status", "where": "all" | [fleets]}, or for
    yields {"units", "where": {material or metal: {"value", "source", "status"}}}.
    """
    used = recorded(grid)
    grid = fill_absent(grid, used)
    return grid, used
