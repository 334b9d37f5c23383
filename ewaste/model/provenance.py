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

