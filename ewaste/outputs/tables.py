"""Results as tables for spreadsheets: one row per quantity, fleet, grid point, material or metal and
year, with the value in the year and the running total up to it.

Results hold `<name>_annual` and `<name>_cumulative` (by year), or, in summary mode, only
`<name>_target` and `<name>_cumulative_target`: those are the same quantities in the target year, so a
summary becomes the table's rows of the target year. Quantiles over draws (dimension `quantile`, with
`<name>_mean` beside) become a column `statistic` (`p5`, `p50`, `p95`, `mean`).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import xarray as xr

from ..errors import InputError

STATISTIC = "statistic"
ANNUAL, CUMULATIVE = "annual", "cumulative"
# the columns that are not grid coordinates, in the order they close a row
TAIL = ["capacity_unit", "material", "metal", STATISTIC, "year"]


def quantities(results: xr.Dataset) -> list[str]:
    """The names of the quantities that have annual or target-year values, in the results' order
    (`ewaste_generated` for `ewaste_generated_annual` or `ewaste_generated_target`)."""
    names: list[str] = []
    for name in map(str, results.data_vars):
        if name.endswith("_cumulative_target") or name.endswith("_mean"):
            continue
        for suffix in ("_annual", "_target"):
            base = name.removesuffix(suffix)
            if base != name and base not in names:
                names.append(base)
    return names


def target_year(results: xr.Dataset) -> int:
    return int(results.attrs["target_year"])


def years(results: xr.Dataset) -> list[int]:
    """The calendar years a table of `results` can hold: every year, or only the target year of a
    summary."""
    if any(str(n).endswith("_annual") for n in results.data_vars) and "year" in results.coords:
        return [int(y) for y in results["year"].values]
    return [target_year(results)]


def check_year(results: xr.Dataset, year: int | None, source: str | None) -> None:
    """Raises InputError (naming `source` and `--year`) if the results hold no values for `year`."""
    if year is not None:
        check_year_in(year, years(results), source)


def check_year_in(year: int, held: list[int], source: str | None) -> None:
    """Raises InputError (naming `source` and `--year`) if `year` is not one of the years `held`."""
    if year in held:
        return
    which = f"only the target year {held[0]}" if len(held) == 1 else f"the years {held[0]}-{held[-1]}"
    raise InputError(source, "--year", f"{year} is not in the results, which hold {which}")


def by_year(results: xr.Dataset, name: str, kind: str = ANNUAL, year: int | None = None) -> xr.DataArray | None:
    """Quantity `name` by year: its `_annual` (kind "annual") or `_cumulative` values, or the target
    year's from a summary; quantiles as a `statistic` dimension; only `year` if given. None if the
    results do not have it (the cumulative of a stock, a quantity not computed)."""
    if kind == ANNUAL:
        by, target = f"{name}_annual", f"{name}_target"
    else:
        by, target = f"{name}_cumulative", f"{name}_cumulative_target"
    if by in results.data_vars and "year" in results[by].dims:
        da = with_statistics(results, by)
    elif target in results.data_vars:
        da = with_statistics(results, target).expand_dims(year=[target_year(results)])
    else:
        return None
    return da if year is None else da.sel(year=[year])


def with_statistics(results: xr.Dataset, name: str) -> xr.DataArray:
    """Variable `name`, its `quantile` dimension (if any) relabelled `statistic` (p5, p50, ...) and
    its `<name>_mean` added as the statistic `mean`."""
    da = results[name]
    if "quantile" not in da.dims:
        return da
    labels = [statistic_label(q) for q in da["quantile"].values]
    out = da.assign_coords(quantile=labels).rename(quantile=STATISTIC)
    mean = results.data_vars.get(f"{name}_mean")
    if mean is not None:
        out = xr.concat([out, mean.expand_dims({STATISTIC: ["mean"]})], dim=STATISTIC, coords="minimal")
    return out.assign_attrs(da.attrs)


def statistic_label(q: float) -> str:
    """p5 for the quantile 0.05, p2.5 for 0.025."""
    return f"p{float(q) * 100:g}"


def long_table(results: xr.Dataset, year: int | None = None) -> pd.DataFrame:
    """Every quantity by year as one long table (`year`: only that year).

    Columns: `variable` (the quantity's name), `fleet`, one per grid dimension (empty where the
    quantity does not depend on it), `capacity_unit`, `material`, `metal`, `statistic` (where draws
    were reduced to quantiles), `year`, `annual` (the value in the year) and `annual_units`,
    `cumulative` (the total from the start year up to and including the year; flows only) and
    `cumulative_units`. Rows follow the results' variables, then their coordinates.
    """
    frames = []
    for name in quantities(results):
        annual = by_year(results, name, ANNUAL, year)
        if annual is None:
            continue
        columns = {ANNUAL: annual}
        cumulative = by_year(results, name, CUMULATIVE, year)
        if cumulative is not None:
            columns[CUMULATIVE] = cumulative
        df = xr.Dataset(columns).to_dataframe().reset_index()
        df.insert(0, "variable", name)
        df["annual_units"] = annual.attrs.get("units", "")
        if cumulative is not None:
            df["cumulative_units"] = cumulative.attrs.get("units", "")
        frames.append(df)
    if not frames:
        raise InputError(None, None, "the results hold no annual or target-year values to tabulate")
    table = pd.concat(frames, ignore_index=True, sort=False)
    values = [c for c in (ANNUAL, "annual_units", CUMULATIVE, "cumulative_units") if c in table]
    return table[["variable", *id_columns(table.columns, values)[1:], *values]]


def id_columns(columns: Iterable[str], values: Iterable[str]) -> list[str]:
    """The identifying columns of a table in their order: fleet, the grid dimensions (in the order
    met), then capacity unit, material, metal, statistic, year; `variable` first if present."""
    columns, values = list(columns), set(values)
    head = [c for c in ("variable", "fleet") if c in columns]
    tail = [c for c in TAIL if c in columns]
    grid = [c for c in columns if c not in values and c not in head and c not in tail]
    return head + grid + tail


def wide_table(columns: dict[str, xr.DataArray]) -> pd.DataFrame:
    """One column per entry of `columns` (label -> values), one row per coordinate combination of
    them all (values broadcast over the dimensions they lack), identifying columns first."""
    df = xr.Dataset(columns).to_dataframe().reset_index()
    return df[[*id_columns(df.columns, columns), *columns]]
