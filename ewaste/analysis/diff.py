"""Why two grid points differ: each headline figure in A and B, and the difference attributed to the
inputs that differ by a Shapley decomposition, all coalitions evaluated as one grid.

The inputs of the two points are compared variable by variable, exactly (tolerance 0); each variable
that differs, for each fleet where it differs, is a group (`mass[servers]`; a variable without a fleet,
or of a one-fleet grid, by its name alone). A fleet whose `lifetime_type` differs has its lifetime
variables in one group `lifetime[F]`, and one whose `driver` differs its driver variables in
`driver[F]`: mixing one side's type with the other's parameters is no lifetime at all. Users may
merge groups further (`groups`).

Coalition S takes the groups in S from B and the others from A; coalition codes (`ewaste.analysis.shapley`)
label a `coalition` sweep dimension of a single grid, so the engine runs once, vectorised. Exact:
all 2^k coalitions (Shapley 1953). Sampled: the coalitions that `permutations` random orders pass
through (Castro et al. 2009); each order's marginal contributions telescope, so the estimates add up
to B - A as the exact values do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..errors import InputError
from ..inputs.validate import uses
from ..model.evaluate import evaluate
from ..version import __version__
from . import shapley
from .figures import OUTPUTS, figures
from .points import sweep_dims

EXACT_UP_TO = 10
"""Groups up to which `method="auto"` evaluates all 2^k coalitions; beyond, permutations are sampled."""
EXACT_MAX = 16
"""Groups up to which `method="exact"` is allowed (65,536 coalitions)."""
PERMUTATIONS = 256
NOT_INPUTS = ("description", "capacity_unit")  # labels: they change no figure
WHOLE_GRID = ("age_convention", "negative_inflow")  # settings of the grid, not of a point
SAME = (("start_year", "time"), ("end_year", "time"), ("step", "time"), ("target_year", "target_year"))
COUPLED = {
    "lifetime_type": ("lifetime", ("lifetime_",)),
    "driver": ("driver", ("stock", "inflow", "demand", "capacity_per_unit")),
}
"""A switch variable and the variables it decides the meaning of: if the switch differs, one group."""


@dataclass(frozen=True)
class Group:
    """Inputs that move together from A to B: `members` are (grid variable, fleet or None)."""

    name: str
    members: tuple[tuple[str, str | None], ...]
    a: str = ""
    b: str = ""


def check_comparable(a: xr.Dataset, b: xr.Dataset, source_b: str, grids: bool = True) -> xr.Dataset:
    """`b` with its fleets, materials and metals in the order of `a`.

    Raises InputError (naming `source_b` and the field) where the two grids (or results, `grids`
    False: materials and metals compared where both have them) do not have the same fleets, time axis,
    target year, materials, metals, lags or history steps.
    """
    for key, field in SAME:
        if str(a.attrs.get(key)) != str(b.attrs.get(key)):
            raise InputError(
                source_b, field, f"{key} {b.attrs.get(key)} where A has {a.attrs.get(key)}: not comparable"
            )
    for dim in ("fleet", "material", "metal", "lag", "history"):
        ka = [str(x) for x in a[dim].values] if dim in a.dims else None
        kb = [str(x) for x in b[dim].values] if dim in b.dims else None
        both = ka is not None and kb is not None
        if dim in ("lag", "history"):  # a lifetime table or a history that one grid lacks is 0 there
            bad = both and ka != kb
        else:
            bad = (both or grids or dim == "fleet") and sorted(ka or []) != sorted(kb or [])
        if bad:
            raise InputError(
                source_b,
                dim,
                f"{', '.join(kb or []) or 'none'} where A has {', '.join(ka or []) or 'none'}: not comparable",
            )
        if both and dim not in ("lag", "history"):
            b = b.sel({dim: a[dim].values})
    return b


def _pair(a: xr.Dataset, b: xr.Dataset, var: str) -> tuple[xr.DataArray, xr.DataArray]:
    """Variable `var` of both points over the same dimensions; one that a point lacks is 0 there (a
    grid holds 0 in what no fleet reads)."""
    da = a[var] if var in a else xr.zeros_like(b[var])
    db = b[var] if var in b else xr.zeros_like(a[var])
    da, db = xr.broadcast(da, db)
    return da, db.transpose(*da.dims)


def _describe(da: xr.DataArray) -> str:
    """A value for people: the number with its units, a text, or the range of a series."""
    units = da.attrs.get("units", "")
    units = "" if units in ("1", "") else f" {units}"
    values = np.unique(np.asarray(da.values).ravel())
    if values.dtype.kind not in "biuf":
        return "/".join(map(str, values))
    if values.size == 1:
        return f"{values[0]:.4g}{units}"
    over = ", ".join(str(d) for d in da.dims if da.sizes[d] > 1)
    return f"{values.min():.4g} to {values.max():.4g}{units} over {over}"


def differing(a: xr.Dataset, b: xr.Dataset) -> list[Group]:
    """The inputs that differ between grid points `a` and `b` (aligned by `check_comparable`), exactly
    compared: one group per variable and fleet; the coupled variables (lifetime, driver) of a fleet in
    one group where their switch differs. Their values are described by `described`."""
    fleets = [str(f) for f in a["fleet"].values]
    found: list[tuple[str, str | None]] = []
    for var in [*a.data_vars, *(v for v in b.data_vars if v not in a)]:
        if var in NOT_INPUTS:
            continue
        da, db = _pair(a, b, str(var))
        if "fleet" in da.dims:
            found += [(str(var), f) for i, f in enumerate(fleets) if not _same(da.isel(fleet=i), db.isel(fleet=i))]
        elif not _same(da, db):
            found.append((str(var), None))
    return _couple(found, len(fleets) > 1)


def _same(da: xr.DataArray, db: xr.DataArray) -> bool:
    return bool(np.array_equal(np.asarray(da.values), np.asarray(db.values)))


def _couple(found: list[tuple[str, str | None]], many_fleets: bool) -> list[Group]:
    """One group per (variable, fleet), except the variables of a switch that differs."""
    groups: list[Group] = []
    taken: set[tuple[str, str | None]] = set()
    for switch, (name, prefixes) in COUPLED.items():
        for fleet in [f for v, f in found if v == switch]:
            members = tuple(m for m in found if m[1] == fleet and (m[0] == switch or m[0].startswith(prefixes)))
            groups.append(Group(_name(name, fleet, many_fleets), members))
            taken |= set(members)
    groups += [Group(_name(v, f, many_fleets), ((v, f),)) for v, f in found if (v, f) not in taken]
    order = {m: i for i, m in enumerate(found)}
    return sorted(groups, key=lambda g: min(order[m] for m in g.members))


def _name(var: str, fleet: str | None, many_fleets: bool) -> str:
    return f"{var}[{fleet}]" if fleet is not None and many_fleets else var


def described(group: Group, a: xr.Dataset, b: xr.Dataset) -> Group:
    """The group with its values in grid points `a` and `b` described for people."""
    sides = []
    for side, point in enumerate((a, b)):
        parts = []
        for var, fleet in group.members:
            if len(group.members) > 1 and fleet is not None and not _reads(point, fleet, var):
                continue  # the other side's parameter, 0 on this side
            da = _pair(a, b, var)[side]
            text = _describe(da if fleet is None else da.sel(fleet=fleet))
            parts.append(text if len(group.members) == 1 else f"{var} {text}")
        sides.append("; ".join(parts))
    return Group(group.name, group.members, sides[0], sides[1])


def _reads(point: xr.Dataset, fleet: str, var: str) -> bool:
    """Whether `fleet` of grid point `point` reads variable `var` (by its driver and lifetime type)."""
    driver, kind = (str(point[v].sel(fleet=fleet).values) for v in ("driver", "lifetime_type"))
    return var in COUPLED or uses(driver, kind, var)


def regroup(groups: list[Group], merges: Mapping[str, Sequence[str]] | None) -> list[Group]:
    """`groups` with those named in each entry of `merges` (new name -> group names, or variable names
    standing for all their groups) merged into one, in the place of the first.

    Raises InputError (field --group) for a name that matches no group that differs, a group claimed
    twice, or a new name that names another group.
    """
    if not merges:
        return groups
    claimed: dict[str, str] = {}
    for new, names in merges.items():
        for token in names:
            hits = [g.name for g in groups if g.name == token or any(v == token for v, _ in g.members)]
            if not hits:
                known = ", ".join(g.name for g in groups) or "none"
                raise InputError(None, "--group", f"{token!r} is not an input that differs; those that differ: {known}")
            for hit in hits:
                if claimed.setdefault(hit, new) != new:
                    raise InputError(None, "--group", f"{hit!r} is in two groups: {claimed[hit]!r} and {new!r}")
    for new in merges:
        if any(g.name == new and g.name not in claimed for g in groups):
            raise InputError(None, "--group", f"{new!r} already names a group of inputs")
    out: list[Group] = []
    place: dict[str, int] = {}
    for g in groups:
        new = claimed.get(g.name)
        if new is None:
            out.append(g)
        elif new not in place:
            place[new] = len(out)
            out.append(Group(new, g.members))
        else:
            out[place[new]] = Group(new, out[place[new]].members + g.members)
    return out


def coalition_grid(a: xr.Dataset, b: xr.Dataset, groups: Sequence[Group], codes: np.ndarray) -> xr.Dataset:
    """Grid point `a` with a `coalition` dimension (coordinate: the codes): at coalition S, the members
    of each group in S take their values in `b`. Shape: every variable a group touches gains the
    dimension `coalition` (len(codes)); the others are `a`'s. A fleet's `driver` and `lifetime_type`
    must be the same in all `codes` (they cannot vary along a sweep); raises ValueError if not."""
    bits = shapley.members(codes, len(groups))
    coalition = {"coalition": np.asarray(codes, dtype=np.int64)}
    fleets = [str(f) for f in a["fleet"].values]
    grid = a.copy()
    for var in dict.fromkeys(v for g in groups for v, _ in g.members):
        da, db = _pair(a, b, var)
        if "fleet" in da.dims:
            mask = np.zeros((len(codes), len(fleets)), dtype=bool)
            for j, g in enumerate(groups):
                for v, f in g.members:
                    if v == var:
                        mask[:, fleets.index(str(f))] |= bits[:, j]
            where = xr.DataArray(mask, dims=("coalition", "fleet"), coords={**coalition, "fleet": a["fleet"]})
        else:
            js = [j for j, g in enumerate(groups) if any(v == var for v, _ in g.members)]
            where = xr.DataArray(bits[:, js].any(axis=1), dims="coalition", coords=coalition)
        grid[var] = xr.where(where, db, da).assign_attrs(da.attrs)
        if var in COUPLED:  # a switch cannot vary along a sweep: the caller keeps it constant
            if not (grid[var] == grid[var].isel(coalition=0)).all():
                raise ValueError(f"{var} varies across the coalitions asked for")
            grid[var] = grid[var].isel(coalition=0, drop=True)
    return grid


def diff_grids(
    a: xr.Dataset,
    b: xr.Dataset,
    names: tuple[str, str] = ("A", "B"),
    groups: Mapping[str, Sequence[str]] | None = None,
    method: str = "auto",
    permutations: int = PERMUTATIONS,
    seed: int = 0,
    backend: str | None = None,
) -> xr.Dataset:
    """Headline figures of grid points `a` and `b` (validated grids without sweep dimensions), their
    difference, and its Shapley decomposition over the groups of inputs that differ.

    names: how A and B were written (attributes `a`, `b`; errors name B's). groups: merges of groups
    (`regroup`). method: "exact" (all 2^k coalitions, k <= 16), "sampled" (`permutations` random orders
    from `seed`) or "auto" (exact up to 10 groups). Returns the dataset of `diff_dataset`, with
    `contribution` (figure, group) in the figure's units: contributions sum to `difference` to
    rounding (1e-12 relative), exactly in exact arithmetic.
    Raises InputError for grids that are not comparable or still have sweep dimensions, a bad
    `groups` or `method`, and what `ewaste.evaluate` raises.
    """
    for point, name in ((a, names[0]), (b, names[1])):
        if sweep_dims(point):
            raise InputError(name, None, f"not a grid point: sweep dimensions {', '.join(sweep_dims(point))} left")
    b = check_comparable(a, b, names[1])
    if any(str(a.attrs.get(k)) != str(b.attrs.get(k)) for k in WHOLE_GRID):
        why = "; ".join(
            f"{k} {a.attrs.get(k)} vs {b.attrs.get(k)}" for k in WHOLE_GRID if a.attrs.get(k) != b.attrs.get(k)
        )
        res = [evaluate(g, backend, summary=True, outputs=OUTPUTS) for g in (a, b)]
        return diff_results(res[0], res[1], names, f"{why}: settings of the whole grid, which no grid point can mix")
    found = [described(g, a, b) for g in regroup(differing(a, b), groups)]
    k = len(found)
    method = _method(method, k)
    orders = shapley.permutations(k, permutations, seed) if method == "sampled" else None
    codes = shapley.all_coalitions(k) if orders is None else np.unique(shapley.prefixes(orders))
    ids, labels, units, values, runs = _evaluate(a, b, found, codes, backend)
    if orders is None:
        contribution, error = shapley.exact(values, k), None
    else:
        contribution, error = shapley.sampled(values, codes, orders)
    attrs = {"method": method, "coalitions": len(codes), "engine_runs": runs}
    if orders is not None:
        attrs.update(permutations=permutations, seed=seed)
    ds = diff_dataset(names, a.attrs, ids, labels, units, values[0], values[-1], attrs)
    return with_contributions(ds, found, contribution, error)


def _evaluate(a: xr.Dataset, b: xr.Dataset, groups: list[Group], codes: np.ndarray, backend: str | None) -> tuple:
    """The figures of every coalition in `codes`: (ids, labels, units, values (coalitions, figures),
    engine runs). A fleet's driver and lifetime type cannot vary along a sweep, so the coalitions
    are evaluated in one grid per combination of the groups that switch them (one grid if none)."""
    switches = sum(1 << j for j, g in enumerate(groups) if any(v in COUPLED for v, _ in g.members))
    values = None
    patterns = np.unique(codes & switches)
    for pattern in patterns:
        rows = np.flatnonzero((codes & switches) == pattern)
        res = evaluate(coalition_grid(a, b, groups, codes[rows]), backend, summary=True, outputs=OUTPUTS)
        ids, labels, units, part = figures(res, "coalition" if "coalition" in res.dims else None)
        if values is None:
            values = np.empty((len(codes), len(ids)))
        values[rows] = np.broadcast_to(part, (len(rows), len(ids)))  # a figure no group moves: one value
    return ids, labels, units, values, len(patterns)


def _method(method: str, k: int) -> str:
    if method not in ("auto", "exact", "sampled"):
        raise InputError(None, "--method", f"unknown method {method!r}; choose auto, exact or sampled")
    if k > shapley.MAX_PLAYERS:
        raise InputError(None, "--group", f"{k} groups of inputs differ, more than {shapley.MAX_PLAYERS}: merge some")
    if method == "exact" and k > EXACT_MAX:
        raise InputError(None, "--method", f"{k} groups: 2^{k} coalitions is too many; use sampled, or merge groups")
    if method == "auto":
        return "exact" if k <= EXACT_UP_TO else "sampled"
    return method


def diff_results(res_a: xr.Dataset, res_b: xr.Dataset, names: tuple[str, str], reason: str) -> xr.Dataset:
    """Figures of results points `res_a` and `res_b` (no sweep dimensions left) and their difference,
    without attribution: `reason` says why (attribute `no_attribution`).
    Raises InputError where the results are not comparable (as `check_comparable`)."""
    res_b = check_comparable(res_a, res_b, names[1], grids=False)
    ids_a, labels, units, va = figures(res_a)
    ids_b, _, _, vb = figures(res_b)
    keep = [i for i, f in enumerate(ids_a) if f in ids_b]
    vb = np.array([vb[ids_b.index(ids_a[i])] for i in keep])
    pick = [ids_a[i] for i in keep]
    ds = diff_dataset(names, res_a.attrs, pick, [labels[i] for i in keep], [units[i] for i in keep], va[keep], vb, {})
    return ds.assign_attrs(method="none", no_attribution=reason)


def diff_dataset(
    names: tuple[str, str],
    provenance: Mapping,
    ids: Sequence[str],
    labels: Sequence[str],
    units: Sequence[str],
    a: np.ndarray,
    b: np.ndarray,
    attrs: Mapping,
) -> xr.Dataset:
    """The figures of A and B over dimension `figure` (coordinates `label`, `units`): variables `a`, `b`
    and `difference` (b - a), each in the figure's units."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keys = ("title", "start_year", "target_year", "age_convention", "scenario_file", "scenario_sha256")
    return xr.Dataset(
        {
            "a": ("figure", a, {"long_name": f"A: {names[0]}"}),
            "b": ("figure", b, {"long_name": f"B: {names[1]}"}),
            "difference": ("figure", b - a, {"long_name": "B - A"}),
        },
        coords={"figure": list(ids), "label": ("figure", list(labels)), "units": ("figure", list(units))},
        attrs={
            "a": names[0],
            "b": names[1],
            **{k: provenance[k] for k in keys if k in provenance},
            "ewaste_version": __version__,
            "no_attribution": "",
            **attrs,
        },
    )


def with_contributions(
    ds: xr.Dataset, groups: Sequence[Group], contribution: np.ndarray, error: np.ndarray | None
) -> xr.Dataset:
    """`ds` with `contribution` (figure, group) from an array (group, figure), the groups' values in
    A and B as coordinates, and `standard_error` where sampled."""
    ds = ds.assign_coords(
        group=[g.name for g in groups],
        group_a=("group", [g.a for g in groups]),
        group_b=("group", [g.b for g in groups]),
        inputs=("group", [", ".join(v if f is None else f"{v}[{f}]" for v, f in g.members) for g in groups]),
    )
    ds["contribution"] = (("figure", "group"), np.asarray(contribution).T.reshape(ds.sizes["figure"], len(groups)))
    ds["contribution"].attrs["long_name"] = "Shapley contribution to B - A"
    if error is not None:
        ds["standard_error"] = (("figure", "group"), np.asarray(error).T.reshape(ds.sizes["figure"], len(groups)))
        ds["standard_error"].attrs["long_name"] = "standard error of the sampled contribution"
    attribution = "exact Shapley values (Shapley 1953) over all coalitions of the inputs that differ"
    if ds.attrs.get("method") == "sampled":
        attribution = "Shapley values estimated from random permutations (Castro et al. 2009)"
    return ds.assign_attrs(attribution=attribution)
