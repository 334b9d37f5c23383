"""One point of a grid or of results, written `SOURCE@dim=label,dim=label`: parsed, and selected.

`ewaste diff` compares two such points. A source is a scenario (bundled name, .toml or grid .nc) or a
results file; the labels pick one value of each sweep dimension. A dimension with one label needs
none; a dimension with several must be given one, in the point itself or for both points at once
(`--at`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputError

CORE_DIMS = frozenset({"fleet", "time", "year", "material", "metal", "lag", "history"})
"""Dimensions of a grid or of results that are not sweeps (every other one needs a label)."""


@dataclass(frozen=True)
class Point:
    """A grid point as the user wrote it: `source` (scenario name or file, or results file) and the
    label of each sweep dimension given (`at`, dimension -> label as text)."""

    source: str
    at: Mapping[str, str] = field(default_factory=dict)
    text: str = ""

    def __str__(self) -> str:
        return self.text or self.source + ("@" + ",".join(f"{d}={v}" for d, v in self.at.items()) if self.at else "")


def parse_labels(text: str, where: str, field_name: str) -> dict[str, str]:
    """`dim=label,dim=label` as a dict. Raises InputError (naming `where` and `field_name`) for an
    entry without '=' or a dimension given twice."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        dim, eq, label = (s.strip() for s in part.partition("="))
        if not eq or not dim or not label:
            raise InputError(where, field_name, f"{part!r}: write a label as dim=label (e.g. refresh_cycle=6)")
        if dim in out:
            raise InputError(where, field_name, f"dimension {dim!r} given twice")
        out[dim] = label
    return out


def parse_point(text: str, base: Point | None = None) -> Point:
    """A point written `SOURCE`, `SOURCE@dim=label,...`, or `@dim=label,...` (the source of `base`).

    A file whose name holds '@' is taken whole when it exists. Raises InputError for a point without a
    source (and no `base`) or a label not written dim=label.
    """
    if Path(text).exists() or "@" not in text:
        return Point(text, {}, text)
    source, _, labels = text.partition("@")
    if not source:
        if base is None:
            raise InputError(text, None, "a point needs a scenario or results file before '@'")
        source = base.source
    return Point(source, parse_labels(labels, source, "@" + labels), text)


def sweep_dims(ds: xr.Dataset) -> dict[str, int]:
    """The sweep dimensions of a grid or of results, with their sizes."""
    return {str(d): n for d, n in ds.sizes.items() if d not in CORE_DIMS}


def labels(ds: xr.Dataset, dim: str) -> list[str]:
    """The labels of sweep dimension `dim` as a user writes them (floats with %g; positions where the
    dimension has no coordinate)."""
    if dim not in ds.coords:
        return [str(i) for i in range(ds.sizes[dim])]
    return [f"{v:g}" if isinstance(v, float | np.floating) else str(v) for v in ds[dim].values]


def _position(ds: xr.Dataset, dim: str, label: str, source: str) -> int:
    """Where `label` sits along `dim`: the text as written, or the same number."""
    known = labels(ds, dim)
    if label in known:
        return known.index(label)
    try:
        value = float(label)
        return next(i for i, k in enumerate(known) if _number(k) == value)
    except (ValueError, StopIteration):
        shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
        raise InputError(source, f"@{dim}", f"no label {label!r}; the labels are {shown}") from None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def select(ds: xr.Dataset, at: Mapping[str, str], source: str, shared: Mapping[str, str] | None = None) -> xr.Dataset:
    """The point of `ds` (a grid or results) at the labels `at`, then `shared` for the dimensions
    `at` leaves out; dimensions of one label are taken as they are. The sweep dimensions are dropped.

    Raises InputError (naming `source`) for an unknown dimension (in `at`; one of `shared` that `ds`
    lacks is ignored, as the other point may have it) or label, and for a sweep dimension of several
    labels left without one.
    """
    dims = sweep_dims(ds)
    for dim in at:
        if dim not in dims:
            known = ", ".join(dims) or "none"
            raise InputError(source, f"@{dim}", f"no such sweep dimension; its sweep dimensions: {known}")
    chosen = {**{d: v for d, v in (shared or {}).items() if d in dims}, **at}
    index = {dim: _position(ds, dim, label, source) for dim, label in chosen.items()}
    missing = [d for d, n in dims.items() if d not in index and n > 1]
    if missing:
        dim, first = missing[0], labels(ds, missing[0])
        shown = ", ".join(first[:6]) + (", ..." if len(first) > 6 else "")
        more = f"; also without a label: {', '.join(missing[1:])}" if missing[1:] else ""
        raise InputError(
            source,
            dim,
            f"{len(first)} labels ({shown}): choose one, as {source}@{dim}={first[0]} or --at {dim}={first[0]}{more}",
        )
    index.update({d: 0 for d in dims if d not in index})
    return ds.isel(index, drop=True)
