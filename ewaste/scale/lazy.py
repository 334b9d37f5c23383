"""Lazy, chunked evaluation on dask: each block of the grid goes through the same `evaluate`."""

from __future__ import annotations

from collections.abc import Sequence

import xarray as xr

from ..errors import InputError
from ..inputs.validate import scenario_sizes, validate
from ..model.evaluate import evaluate


def need_dask() -> None:
    try:
        import dask.array  # noqa: F401, PLC0415
        import zarr  # noqa: F401, PLC0415
    except ImportError:
        raise InputError(
            None, "dask", "this run is cut into chunks and needs dask: pip install -e '.[dask]' from the checkout"
        ) from None


def evaluate_lazy(
    grid: xr.Dataset,
    chunks: dict[str, int],
    backend: str | None = None,
    summary: bool = False,
    outputs: Sequence[str] | None = None,
) -> xr.Dataset:
    """Results as a lazy, dask-backed Dataset: nothing is computed until asked.

    The grid is validated once; each block of the chunked grid then goes through `evaluate`
    (xarray.map_blocks) without validating again; the output keeps the chunking of the scenario
    dimensions and the array type the engine returns. Raises InputError as `evaluate` does.
    """
    need_dask()
    grid = validate(grid, str(grid.attrs.get("grid_file") or grid.attrs.get("scenario_file") or "grid"))
    sizes = scenario_sizes(grid)
    chunked = grid.chunk({d: chunks.get(d, n) for d, n in sizes.items()})
    options = {"backend": backend, "summary": summary, "outputs": outputs}
    template = result_template(grid, sizes, chunks, **options)
    return xr.map_blocks(_evaluate_block, chunked, kwargs=options, template=template)


def _evaluate_block(block: xr.Dataset, backend: str | None, summary: bool, outputs: Sequence[str] | None) -> xr.Dataset:
    return evaluate(block, backend, summary=summary, outputs=outputs, validated=True)


def result_template(
    grid: xr.Dataset,
    sizes: dict[str, int],
    chunks: dict[str, int],
    backend: str | None,
    summary: bool,
    outputs: Sequence[str] | None = None,
) -> xr.Dataset:
    """The shape of the results, from one grid point evaluated, widened lazily to the whole grid.

    Variables with no scenario dimension are the same at every grid point: they keep the values
    of that point (and are written with the store's metadata); the others are lazy placeholders.
    """
    import dask.array  # noqa: PLC0415

    first = evaluate(grid.isel({d: slice(0, 1) for d in sizes}), backend, summary=summary, outputs=outputs)
    out = xr.Dataset(attrs=first.attrs)
    for name, da in first.data_vars.items():
        if not set(da.dims) & set(sizes):
            out[name] = da
            continue
        shape = [grid.sizes[d] if d in sizes else da.sizes[d] for d in da.dims]
        parts = [chunks.get(d, grid.sizes[d]) if d in sizes else -1 for d in da.dims]
        out[name] = (da.dims, dask.array.zeros(shape, chunks=parts, dtype=da.dtype), da.attrs)
    coords = {c: first[c] for c in first.coords if not set(first[c].dims) & set(sizes)}
    coords.update({d: grid[d] for d in sizes if d in out.dims})
    return out.assign_coords(coords)
