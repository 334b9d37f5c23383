"""Sweeps larger than memory or than one machine, on dask: planned, chunked, lazy, streamed to Zarr,
resumable.

The grid is chunked along its scenario dimensions only (time, cohort, fleet, material stay whole);
every chunk goes through the same `evaluate`. Dask schedules the chunks: its threaded scheduler by
default, a local cluster with `workers=N`, or an existing scheduler at an address.
"""

from .lazy import evaluate_lazy
from .plan import Plan, blocks, choose_chunks, default_memory_limit, fmt_bytes, grid_points, parse_bytes, plan
from .zarr import write_zarr

__all__ = [
    "Plan",
    "blocks",
    "choose_chunks",
    "default_memory_limit",
    "evaluate_lazy",
    "fmt_bytes",
    "grid_points",
    "parse_bytes",
    "plan",
    "write_zarr",
]
