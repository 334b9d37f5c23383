"""Provenance of results: CF conventions, version, engine, scenario file and hash, defaults used."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import xarray as xr

from ..engine.arrays import Backend
from ..engine.backend import describe
from ..version import __version__


def provenance(grid: xr.Dataset, defaults: dict, be: Backend) -> dict[str, Any]:
    keep = (
        "title",
        "description",
        "sources",
        "start_year",
        "end_year",
        "step",
        "target_year",
        "age_convention",
        "negative_inflow",
        "scenario_file",
        "scenario_sha256",
        "grid_file",
        "grid_sha256",
        "parameter_sources",
        "uncertainty",
        "finance",
    )
    attrs = {k: grid.attrs[k] for k in keep if k in grid.attrs}
    attrs.update(
        {
            "Conventions": "CF-1.10",
            "ewaste_version": __version__,
            "backend": be.name,
            "engine": describe(be),
            "precision": be.precision,
            "defaults_used": json.dumps(defaults),
            "driver": json.dumps(
                dict(zip(map(str, grid["fleet"].values), map(str, grid["driver"].values), strict=True))
            ),
            "lifetime_type": json.dumps(
                dict(zip(map(str, grid["fleet"].values), map(str, grid["lifetime_type"].values), strict=True))
            ),
            "history": f"{datetime.now(UTC).isoformat(timespec='seconds')} evaluated by ewaste {__version__} "
            f"from {grid.attrs.get('scenario_file', 'an in-memory grid')}",
        }
    )
    return attrs


def drawn_inputs(grid: xr.Dataset) -> dict[str, xr.DataArray]:
    """The grid's drawn parameters as result variables (`drawn_<variable>`, canonical units): with the
    scenario file and its seed, what lets any single draw be re-run (`grid.isel(draw=k)`) and inspected."""
    out = {}
    for name, da in grid.data_vars.items():
        if "draw" in da.dims:
            attrs = {**da.attrs, "long_name": f"drawn input: {da.attrs.get('long_name', name)}"}
            out[f"drawn_{name}"] = da.assign_attrs(attrs)
    return out
