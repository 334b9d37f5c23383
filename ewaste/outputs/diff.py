"""`ewaste diff`: two grid points (of scenarios or of saved results) compared figure by figure, the
difference attributed to the inputs that differ, printed as rich tables.

A point of a scenario is evaluated with the other through one coalition grid
(`ewaste.analysis.diff`). A point of a results file carries figures but not the grid it was run from:
its inputs are recovered where a file with the SHA-256 the results record for their scenario (or
grid) file is found (of that name beside the results or in the working folder, or a bundled
scenario), and the recovered grid reproduces the results' figures; else the figures are compared without a waterfall,
and the dataset says why (attribute `no_attribution`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from rich import box
from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..analysis.diff import PERMUTATIONS, diff_grids, diff_results
from ..analysis.figures import OUTPUTS, figures
from ..analysis.points import Point, parse_point, select
from ..errors import InputError
from ..inputs.catalogue import bundled, resolve
from ..inputs.load import load_grid
from ..model.evaluate import evaluate
from .readers import is_results_file, load_results
from .units import choose, number

SHOWN = 8  # contributions listed under a figure; the rest are added up in one row
AGREE = 1e-9  # relative: a recovered grid reproduces the results' figures


@dataclass
class Side:
    """One point: its results (a saved file's, or None for a scenario), its grid point (None where the
    inputs are not known) and why not."""

    point: Point
    results: xr.Dataset | None
    grid: xr.Dataset | None
    why: str = ""


def compare(
    a: str,
    b: str,
    at: Mapping[str, str] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    method: str = "auto",
    permutations: int = PERMUTATIONS,
    seed: int = 0,
    backend: str | None = None,
) -> xr.Dataset:
    """The diff of points `a` and `b`, each written `SOURCE[@dim=label,...]` (`b` may be `@dim=label,...`
    for a point of `a`'s source); `at` labels the sweep dimensions both leave out.

    Returns the dataset of `ewaste.analysis.diff.diff_grids` (figures, difference, `contribution`), or
    of `diff_results` (no `contribution`; attribute `no_attribution` says why) where a results file's
    inputs cannot be recovered. Raises InputError for an unknown source, dimension or label, points
    that are not comparable, results of another version, and bad `groups` or `method`.
    """
    pa = parse_point(a)
    pb = parse_point(b, pa)
    loaded: dict[str, tuple] = {}
    sa, sb = (_side(p, at or {}, loaded) for p in (pa, pb))
    names = (str(pa), str(pb))
    options = {"groups": groups, "method": method, "permutations": permutations, "seed": seed, "backend": backend}
    if sa.grid is not None and sb.grid is not None:
        ds = diff_grids(sa.grid, sb.grid, names, **options)
        why = _disagree(ds, sa, sb)
        if not why:
            return ds
    else:
        why = sa.why or sb.why
    res = [s.results if s.results is not None else _evaluate(s.grid, backend) for s in (sa, sb)]
    return diff_results(res[0], res[1], names, why)


def _evaluate(grid: xr.Dataset, backend: str | None) -> xr.Dataset:
    return evaluate(grid, backend, summary=True, outputs=OUTPUTS)


def _side(point: Point, at: Mapping[str, str], loaded: dict[str, tuple]) -> Side:
    """The results and grid of one point; each source read (and its inputs recovered) once."""
    if point.source not in loaded:
        loaded[point.source] = _read(point.source)
    results, grid, why = loaded[point.source]
    if results is None:
        return Side(point, None, select(grid, point.at, point.source, at))
    chosen = select(results, point.at, point.source, at)
    if grid is not None:
        try:
            return Side(point, chosen, select(grid, point.at, point.source, at))
        except InputError as exc:
            why = f"{point.source}: its inputs were found, but not this point of them ({exc.message})"
    return Side(point, chosen, None, why)


def _read(source: str) -> tuple[xr.Dataset | None, xr.Dataset | None, str]:
    """A source's results (None for a scenario), its grid (None where not recovered) and why not."""
    path = Path(source)
    if is_results_file(path):
        results = load_results(path)
        return results, *_recover(results, path)
    return None, load_grid(resolve(source)), ""


def _recover(results: xr.Dataset, path: Path) -> tuple[xr.Dataset | None, str]:
    """The grid a results file was run from, where the file it names is found with the same hash."""
    name = results.attrs.get("grid_file") or results.attrs.get("scenario_file")
    digest = results.attrs.get("grid_sha256") or results.attrs.get("scenario_sha256")
    if "quantile" in results.dims:
        return None, f"{path}: quantiles over draws, not one grid point: no inputs to attribute the difference to"
    if not name or not digest:
        return None, f"{path}: the results do not name the file they were run from"
    places = [path.parent / Path(str(name)).name, Path(str(name)), *bundled().values()]  # the hash decides
    for place in places:
        if place.is_file() and hashlib.sha256(place.read_bytes()).hexdigest() == digest:
            return load_grid(place), ""
    return None, (
        f"{path}: results carry figures, not inputs, and {Path(str(name)).name} (SHA-256 {str(digest)[:12]}...) "
        "was not found beside them, here or among the bundled scenarios"
    )


def _disagree(ds: xr.Dataset, *sides: Side) -> str:
    """Why a recovered grid cannot stand for a results file: its figures differ from the file's."""
    for side, var in zip(sides, ("a", "b"), strict=True):
        if side.results is None:
            continue
        ids, _, _, values = figures(side.results)
        saved = [values[ids.index(str(f))] if str(f) in ids else np.nan for f in ds["figure"].values]
        if not np.allclose(ds[var].values, saved, rtol=AGREE, atol=0):
            return f"{side.point.source}: the inputs found do not reproduce its figures (another backend or precision?)"
    return ""


def _share(part: float, whole: float) -> str:
    return "" if whole == 0 or not np.isfinite(part / whole) else f"{number(100 * part / whole)} %"


def _figure_rows(ds: xr.Dataset, i: int) -> list[list[str]]:
    """A figure's row (label, A, B, B - A, change) and a row per contribution, largest first, in one unit."""
    a, b, d = (float(ds[v].values[i]) for v in ("a", "b", "difference"))
    parts = ds["contribution"].values[i] if "contribution" in ds else np.zeros(0)
    factor, unit = choose(str(ds["units"].values[i]), [a, b, d, *parts])
    rows = [
        [str(ds["label"].values[i]), unit, number(a / factor), number(b / factor), number(d / factor), _share(d, a)]
    ]
    order = np.argsort(-np.abs(parts), kind="stable")
    se = ds["standard_error"].values[i] if "standard_error" in ds else None
    for j in order[:SHOWN]:
        text = number(parts[j] / factor) + ("" if se is None else f" ± {number(se[j] / factor)}")
        rows.append([f"  {ds['group'].values[j]}", "", "", "", text, _share(parts[j], d)])
    if len(order) > SHOWN:
        rest = float(parts[order[SHOWN:]].sum())
        rows.append([f"  {len(order) - SHOWN} other groups", "", "", "", number(rest / factor), _share(rest, d)])
    return rows


def renderables(ds: xr.Dataset) -> Group:
    """The diff as rich renderables: the inputs that differ, then each figure with its contributions."""
    head = Text(f"A: {ds.attrs['a']}\nB: {ds.attrs['b']}\n")  # Text: no markup
    parts: list = [head]
    if "contribution" in ds:
        inputs = Table(title="Inputs that differ", box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
        for col in ("group", "A", "B"):
            inputs.add_column(col)
        for j in range(ds.sizes["group"]):
            inputs.add_row(*(escape(str(ds[c].values[j])) for c in ("group", "group_a", "group_b")))
        parts.append(inputs if ds.sizes["group"] else Text("The two points have the same inputs.\n"))
    table = Table(
        title="Figures, and B - A by input (Shapley)", box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False
    )
    for col, right in (("figure", False), ("unit", False), ("A", True), ("B", True), ("B - A", True), ("%", True)):
        table.add_column(col, justify="right" if right else "left")
    for i in range(ds.sizes["figure"]):
        for k, row in enumerate(_figure_rows(ds, i)):
            table.add_row(*map(escape, row), style=None if k else "bold")
    parts.append(table)
    parts.append(Text(_footer(ds)))
    return Group(*parts)


def _footer(ds: xr.Dataset) -> str:
    if "contribution" not in ds:
        return f"%: B - A as a share of A.\nNo waterfall: {ds.attrs.get('no_attribution', '')}\n"
    share = "%: on a figure's row B - A as a share of A; on an input's row its share of B - A.\n"
    if ds.attrs.get("method") == "sampled":
        return share + (
            f"Contributions estimated from {ds.attrs['permutations']} random orders of the inputs (seed "
            f"{ds.attrs['seed']}; ± one standard error), {ds.attrs['coalitions']} coalitions evaluated; "
            "they add up to B - A.\n"
        )
    return share + f"Exact Shapley values over {ds.attrs['coalitions']} coalitions; they add up to B - A.\n"


def diff_text(ds: xr.Dataset, width: int = 120) -> str:
    """The diff as plain text (no colours, for a file or a pipe)."""
    from io import StringIO  # noqa: PLC0415

    buffer = StringIO()
    Console(file=buffer, width=width, color_system=None, force_terminal=False).print(renderables(ds))
    return buffer.getvalue()


def print_diff(ds: xr.Dataset) -> None:
    """The diff on the terminal, with colours."""
    Console().print(renderables(ds))
