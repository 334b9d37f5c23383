"""The version of ewaste (results and grids record it)."""

__version__ = "0.1.0"
