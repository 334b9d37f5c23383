"""ewaste: e-waste, materials, recycling and energy projections for AI hardware.

Data flows one way: scenario file -> validated grid (`xarray.Dataset`) -> engine (pure array
functions) -> results with units and provenance -> writers and summaries.

    >>> import ewaste
    >>> grid = ewaste.load_grid("scenario.toml")      # or a grid saved as NetCDF
    >>> results = ewaste.evaluate(grid)                # an xarray.Dataset
"""

__version__ = "0.1.0"

from .grid import load_grid, save_grid  # noqa: E402
from .model import evaluate  # noqa: E402

__all__ = ["__version__", "evaluate", "load_grid", "save_grid"]
