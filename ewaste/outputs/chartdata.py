"""What the report and `ewaste plot` draw from, gathered: the results, the units in service by cohort age
(from the scenario, found beside a results file by its name and SHA-256), a tornado file, and the grid
point at which single trajectories are shown."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputError
from ..inputs.catalogue import bundled
from ..inputs.load import load_grid
from ..model.cohorts import stock_by_age
from .chartkit import ChartData, reference_point
from .readers import is_results_file

SENSITIVITY_VARS = ("base", "low", "high", "swing")
STOCK_RTOL = 1e-6  # the cohorts of the scenario found must give the results' stock to this


def gather(
    results: xr.Dataset,
    source: str,
    *,
    sensitivity: str | Path | None = None,
    at: Mapping[str, str] | None = None,
    diff: str | Path | None = None,
) -> ChartData:
    """ChartData for `results` of `source` (a scenario name or file, a grid, or a saved results file).

    The units in service by cohort age need the scenario: `source` itself, or for a results file the
    scenario (or grid) it names, beside it, in the working folder or bundled, whose SHA-256 matches
    the one the results record; where none is found the age chart is left out, and `why_missing` says
    why. `sensitivity`: a file written by `ewaste sensitivity -o` (.nc). `at`: sweep labels (as text)
    of the point single trajectories are shown at. `diff`: a file written by `ewaste diff -o` (.nc).

    Raises InputError for a sensitivity file that is missing, not one, or of another scenario, and
    for an `at` naming a dimension or label the results lack (field --at).
    """
    try:
        point = reference_point(results, at)
    except ValueError as exc:
        raise InputError(source, "--at", str(exc)) from None
    data = ChartData(results, at=point)
    if sensitivity is not None:
        data.sensitivity = load_sensitivity(sensitivity, results)
    if diff is not None:
        data.diff = load_diff(diff)
    scenario, why = scenario_of(results, source)
    if scenario is None:
        data.why_missing["cohorts"] = why
    else:
        data.grid = load_grid(scenario)
        data.cohorts, why = _cohorts(data.grid, results, scenario)
        if data.cohorts is None:
            data.why_missing["cohorts"] = why
    return data


def scenario_of(results: xr.Dataset, source: str) -> tuple[Path | str | None, str]:
    """The scenario to count cohorts from: `source` unless it is a results file, else the file the
    results name (grid_file, else scenario_file) whose bytes have the SHA-256 they record; (None, why)
    where none is found."""
    if not is_results_file(source):
        return source, ""
    attrs = results.attrs
    name, digest = (
        (attrs.get("grid_file"), attrs.get("grid_sha256"))
        if attrs.get("grid_file")
        else (attrs.get("scenario_file"), attrs.get("scenario_sha256"))
    )
    if not name or not digest:
        return None, "needs the scenario to count units by cohort age; these results name none"
    folders = [Path(str(source)).resolve().parent, Path.cwd()]
    candidates = [folder / Path(name).name for folder in folders]
    candidates += [p for stem, p in bundled().items() if f"{stem}.toml" == name]
    for path in candidates:
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == digest:
            return path, ""
    return None, (
        f"needs the scenario to count units by cohort age (a results file holds no cohorts): {name} "
        f"(sha256 {digest[:12]}…) is neither beside the results nor bundled; give the scenario instead"
    )


def _cohorts(grid: xr.Dataset, results: xr.Dataset, scenario: Path | str) -> tuple[xr.DataArray | None, str]:
    """Units in service by age at the results' grid points, checked against their stock; (None, why)
    where the grid does not reproduce them."""
    cohorts = stock_by_age(grid)
    for dim in cohorts.dims:
        if dim in ("time", "age") or dim not in results.dims:
            continue
        wanted = results[dim].values
        if not np.isin(wanted, cohorts[dim].values).all():
            return None, f"the scenario {scenario} does not hold the results' {dim} labels"
        cohorts = cohorts.sel({dim: wanted})
    if "stock_units" in results:
        stock = results["stock_units"].load()
        total = cohorts.sum("age").transpose(*stock.dims)
        scale = float(np.abs(stock).max()) or 1.0
        if total.shape != stock.shape or float(np.abs(total - stock).max()) > STOCK_RTOL * scale:
            return None, f"the scenario {scenario} does not reproduce these results' units in service"
    return cohorts, ""


def load_sensitivity(path: str | Path, results: xr.Dataset | None = None) -> xr.Dataset:
    """Sensitivity results written by `ewaste sensitivity -o FILE.nc` (variables base, low, high, swing
    over output and parameter for a tornado), loaded.

    Raises InputError for a missing file, one that is not NetCDF, a scenario grid or results instead, or
    sensitivity results of another scenario than `results` (field scenario_file).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), None, "file not found")
    if path.suffix.lower() != ".nc":
        raise InputError(
            str(path), None, "give the .nc file that ewaste sensitivity -o wrote (it keeps the indices' dimensions)"
        )
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            sens = ds.load()
    except Exception as exc:  # noqa: BLE001 - netCDF4 raises many kinds for a file that is not theirs
        raise InputError(str(path), None, f"not a readable NetCDF file ({exc.__class__.__name__})") from None
    if "ewaste_grid_version" in sens.attrs:
        raise InputError(str(path), None, "a scenario grid, not sensitivity results (ewaste sensitivity -o FILE.nc)")
    if "method" not in sens.attrs or not {"output", "parameter"} <= set(sens.dims):
        kind = "results of ewaste run" if "ewaste_version" in sens.attrs else "not sensitivity results of ewaste"
        raise InputError(str(path), None, f"{kind}; expected what ewaste sensitivity -o FILE.nc writes")
    ours = None if results is None else results.attrs.get("scenario_file")
    theirs = sens.attrs.get("scenario_file")
    if ours and theirs and ours != theirs:
        raise InputError(str(path), "scenario_file", f"sensitivity of {theirs}, but the results are of {ours}")
    return sens


def load_diff(path: str | Path) -> xr.Dataset:
    """What `ewaste diff A B -o FILE.nc` wrote (variables a, b, difference and, attributed, contribution
    over figure x group). Raises InputError for a file that is missing or not one."""
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), None, "file not found")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            diff = ds.load()
    except (OSError, ValueError):
        raise InputError(str(path), None, "not a NetCDF file: give the .nc that ewaste diff -o wrote") from None
    if not {"a", "b", "difference"} <= set(diff.data_vars) or "figure" not in diff.dims:
        raise InputError(str(path), None, "not a diff of ewaste (ewaste diff A B -o FILE.nc)")
    return diff
