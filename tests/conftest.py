"""Shared helpers for the ewaste test suite.

Expected values in the tests are computed independently of ewaste (by hand, in closed form with
`math`/`scipy`, or with flodym); these helpers only run ewaste itself.
"""

from __future__ import annotations

import copy
import os
import tempfile

import numpy as np
import pytest

import ewaste
from ewaste.engine import host
from ewaste.engine.arrays import NUMPY
from ewaste.engine.stockflow import CohortFlows, SurvivalRows, solve
from ewaste.inputs.scenario import scenario_to_grid
from ewaste.inputs.validate import validate

# The compiled CPU engine is built into a fresh cache for each test session (subprocesses inherit it).
os.environ.setdefault("EWASTE_CACHE_DIR", tempfile.mkdtemp(prefix="ewaste-test-cache-"))


@pytest.fixture(scope="session", autouse=True)
def compiled_engine_built():
    """Build the compiled CPU engine once, before any test: a command-line test then prints only its
    own lines, whichever test runs first."""
    host.status()


ENGINES = {"numpy": solve, "cpu": host.solve}
_engine = {"solve": solve}


@pytest.fixture(params=sorted(ENGINES))
def each_engine(request):
    """Run a test once on the NumPy engine and once on the compiled CPU engine (run_engine uses it)."""
    if request.param == "cpu" and not host.status()[0]:
        pytest.skip(f"compiled CPU engine unavailable: {host.status()[1]}")
    _engine["solve"] = ENGINES[request.param]
    yield request.param
    _engine["solve"] = solve


def run_engine(
    kind: str,
    params: dict,
    driver,
    *,
    stock_driven: bool = False,
    convention: str = "end",
    dt: float = 1.0,
    n_history: int = 0,
    negative_inflow: str = "correct",
    attributes=None,
) -> CohortFlows:
    """Run the cohort engine (NumPy, or that of `each_engine`). `driver` is (N,) or (N, S); params made 2-D.

    `attributes` (K, N, S) are optional per-cohort attributes per driver unit (mass, power, ...).
    """
    driver = np.asarray(driver, dtype=float)
    if driver.ndim == 1:
        driver = driver[:, None]
    n = driver.shape[0]
    p = {}
    for key, val in params.items():
        arr = np.asarray(val, dtype=float)
        if kind != "tabulated":
            arr = np.atleast_2d(arr) if arr.ndim < 2 else arr
        p[key] = arr
    if attributes is not None:
        attributes = np.asarray(attributes, dtype=float)
    rows = SurvivalRows(kind, p, n, dt, convention, NUMPY)
    return _engine["solve"](driver, stock_driven, rows, attributes, n_history, negative_inflow)


def evaluate_dict(raw: dict, name: str = "test.toml"):
    """Scenario dict (as parsed from TOML) -> validated grid -> results (NumPy backend)."""
    grid = validate(scenario_to_grid(copy.deepcopy(raw), name), name)
    return ewaste.evaluate(grid, backend="numpy")
