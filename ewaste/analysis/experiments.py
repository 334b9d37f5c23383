"""A scenario file as a model of its uncertain parameters: uniform samples -> each parameter's draws
(its quantile function) -> a grid -> summary results, run in chunks through `ewaste.scale` when large.

What Monte Carlo and sensitivity analysis evaluate: the rows of a sample become the grid's `draw`
dimension, so every engine, chunking and worker count computes them alike.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputError
from ..inputs.catalogue import resolve
from ..inputs.distributions import Distribution
from ..inputs.scenario import distributions, scenario_to_grid
from ..inputs.tomlfile import read_toml
from ..inputs.validate import validate
from ..model.evaluate import evaluate
from ..scale import evaluate_lazy, plan
from ..scale.plan import default_memory_limit
from ..version import __version__

OUTPUTS = (
    "ewaste_generated_target",
    "ewaste_generated_cumulative_target",
    "energy_target",
    "emissions_target",
)
CHUNKED_ABOVE = 50_000  # rows: beyond this a block runs in chunks that fit the memory limit
BLOCK = 2**15  # rows built into one grid at a time: memory does not grow with the sample size


class ScenarioModel:
    """A scenario's results as a function of its uncertain parameters.

    `names` are the TOML paths of the parameters given as distributions; calling the model with a
    (rows, parameters) array of uniform samples returns the `outputs` (summary variables, summed over
    fleets) over `draw` and any sweep dimensions.
    """

    def __init__(
        self,
        scenario: str | Path,
        outputs: Sequence[str] = OUTPUTS,
        backend: str | None = None,
        memory_limit: int | None = None,
    ):
        self.path = resolve(str(scenario))
        if self.path.suffix.lower() != ".toml":
            raise InputError(str(scenario), None, "sensitivity analysis reads a scenario file (.toml), not a grid")
        self.raw = read_toml(self.path)
        self.source = str(self.path)
        self.dists: list[Distribution] = distributions(self.raw, self.source)
        if not self.dists:
            raise InputError(self.source, None, "no parameter carries a distribution ({ dist = ... }): nothing to vary")
        self.names = [d.path for d in self.dists]
        self.outputs = list(outputs)
        self.backend = backend
        self.memory_limit = memory_limit
        self.units: dict[str, str] = {}

    def grid(self, u: np.ndarray) -> xr.Dataset:
        """The grid whose draws are the quantiles `u` (rows, parameters) of each distribution."""
        return self._grid({d.path: d.ppf(u[:, j]) for j, d in enumerate(self.dists)})

    def _grid(self, draws: dict[str, np.ndarray]) -> xr.Dataset:
        return validate(scenario_to_grid(self.raw, self.source, draws=draws), self.source)

    def __call__(self, u: np.ndarray) -> xr.Dataset:
        """Outputs over (draw, sweep dimensions) for the rows of `u`: the parameters drawn at once,
        then evaluated BLOCK rows at a time, so that memory beyond the sample is bounded by a block."""
        u = np.asarray(u, dtype=float)
        drawn = {d.path: d.ppf(u[:, j]) for j, d in enumerate(self.dists)}
        starts = range(0, max(len(u), 1), BLOCK)
        parts = [self._block({p: v[s : s + BLOCK] for p, v in drawn.items()}) for s in starts]
        out = parts[0] if len(parts) == 1 else xr.concat(parts, "draw")
        return out.assign_coords(draw=np.arange(out.sizes["draw"]))

    def _block(self, draws: dict[str, np.ndarray]) -> xr.Dataset:
        res = self._evaluate(self._grid(draws))
        unknown = [o for o in self.outputs if o not in res]
        if unknown:
            hint = "sensitivity reads summary results, e.g. ewaste_generated_target, energy_cumulative_target"
            raise InputError(None, "--outputs", f"not a summary result: {', '.join(unknown)} ({hint})")
        out = xr.Dataset()
        draws = res.sizes.get("draw", len(next(iter(draws.values()))))
        for name in self.outputs:
            da = res[name]
            da = da.sum("fleet", skipna=False) if "fleet" in da.dims else da
            if "draw" not in da.dims:  # no drawn input moves this output: the same value in every draw
                da = da.expand_dims(draw=draws)
            out[name] = da.transpose("draw", ...)
        self.units = {o: res[o].attrs.get("units", "") for o in self.outputs}
        return out

    def _evaluate(self, grid: xr.Dataset) -> xr.Dataset:
        if grid.sizes["draw"] <= CHUNKED_ABOVE:
            return evaluate(grid, self.backend, summary=True)
        budget = self.memory_limit or default_memory_limit()
        chunks = plan(grid, budget, 1, True, self.backend).chunks
        return evaluate_lazy(grid, chunks, self.backend, summary=True).compute(scheduler="threads")


def sensitivity(
    scenario: str | Path,
    method: str = "sobol",
    samples: int | None = None,
    seed: int = 0,
    outputs: Sequence[str] = OUTPUTS,
    backend: str | None = None,
    memory_limit: int | None = None,
) -> xr.Dataset:
    """Global sensitivity of a scenario's `outputs` (summary variables, summed over fleets) to the
    parameters it gives as distributions: `method` "sobol" (S1, ST with bootstrap intervals; `samples`
    base samples, a power of 2, default 1024), "morris" (mu*, sigma; `samples` trajectories, default
    100) or "tornado" (each parameter at p5 and p95, the others at their medians).

    Returns a Dataset over (output, parameter[, sweep dimensions]) with the scenario's provenance.
    Raises InputError for a scenario without distributions, an unknown method or output, or a Sobol'
    sample size that is not a power of 2.
    """
    from . import sensitivity as sa  # noqa: PLC0415

    model = ScenarioModel(scenario, outputs, backend, memory_limit)
    if method == "sobol":
        n = samples or 1024
        if n < 2 or n & (n - 1):
            raise InputError(None, "--samples", f"Sobol' indices need a power of 2 base samples (e.g. 1024), got {n}")
        res = sa.sobol(model.names, model, n=n, seed=seed)
    elif method == "morris":
        res = sa.morris(model.names, model, trajectories=samples or 100, seed=seed)
    elif method == "tornado":
        res = sa.tornado(model.names, model)
    else:
        raise InputError(None, "--method", f"unknown method {method!r}; choose one of {', '.join(sa.METHODS)}")
    return _described(sa.with_rank(res), model)


def _described(res: xr.Dataset, model: ScenarioModel) -> xr.Dataset:
    """Sensitivity results with their provenance: the scenario file (name and sha256), ewaste's
    version, each output's units, and how many of the file's rank correlations were left out."""
    design = model.raw.get("uncertainty", {})
    correlations = design.get("correlations", []) if isinstance(design, dict) else []
    return res.assign_attrs(
        scenario_file=model.path.name,
        scenario_sha256=hashlib.sha256(model.path.read_bytes()).hexdigest(),
        ewaste_version=__version__,
        units=json.dumps({name: model.units.get(name, "") for name in model.outputs}),
        **({"correlations_not_applied": len(correlations)} if correlations else {}),
    )
