"""ewaste: e-waste, materials, recycling and energy projections for AI hardware.

Data flows one way: scenario file -> validated grid (`xarray.Dataset`) -> engine (pure array
functions) -> results with units and provenance -> writers and summaries (docs/architecture.md).

    >>> import ewaste
    >>> grid = ewaste.load_grid("scenario.toml")      # or a grid saved as NetCDF, or a bundled name
    >>> results = ewaste.evaluate(grid)                # an xarray.Dataset

The public API (docs/api.md) is imported on first use, so `import ewaste` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .version import __version__

_API = {
    "load_grid": "ewaste.inputs.load",
    "save_grid": "ewaste.inputs.load",
    "evaluate": "ewaste.model.evaluate",
    "run": "ewaste.pipeline",
    "write_results": "ewaste.outputs.writers",
    "summarise": "ewaste.outputs.summary",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    """The public functions, imported from their modules when first asked for."""
    if name in _API:
        value = getattr(import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ewaste' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
