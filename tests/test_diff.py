"""`ewaste diff`: Shapley contributions against closed forms, their sum against the total difference (exact
and sampled), symmetric and irrelevant inputs, the bundled examples, results files, and bad input.

The analytic scenario: an inflow-driven fleet with a fixed 2-year life and the 'end' age convention, so
in 2030 the e-waste is the inflow of 2028, E = I * m / 1000 t/yr (I units/yr, m kg), and the recovered
material R = E * c * 0.5 (collection rate c, pre-processing yield 0.5, end-processing 1). Shapley values
of a product of independent inputs have closed forms (Shapley 1953): for f = x * y,
phi_x = (x1 - x0) (y0 + y1) / 2; for f = x * y * z, phi_x = (x1 - x0) [(y0 z0 + y1 z1) / 3 + (y0 z1 + y1 z0) / 6].
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import ewaste
from ewaste.analysis import shapley
from ewaste.analysis.diff import diff_grids
from ewaste.analysis.points import parse_point, select
from ewaste.errors import InputError
from ewaste.outputs.diff import compare, diff_text
from ewaste.outputs.waterfall import waterfall_chart

I0, I1 = 1000.0, 1500.0  # units/yr
M0, M1 = 100.0, 180.0  # kg per unit
C0, C1 = 0.2, 0.5  # collection rate
YIELD = 0.5
ANALYTIC = f"""
[scenario]
name = "analytic"
start_year = 2020
end_year = 2030
age_convention = "end"

[dimensions]
side = ["a", "b"]

[fleets.servers]
driver = "inflow"
inflow = {{ dim = "side", values = [{I0}, {I1}] }}
lifetime = {{ type = "fixed", mean = 2 }}
mass = {{ dim = "side", values = [{M0}, {M1}] }}
power = 10
composition = {{ steel = 1.0 }}

[recycling]
collection_rate = {{ dim = "side", values = [{C0}, {C1}] }}
preprocessing_yield = {{ steel = {YIELD} }}
endprocessing_yield = {{ steel = 1.0 }}
"""


def fleets_toml(masses_a: list[float], masses_b: list[float]) -> str:
    """Fleets alike but for their mass, each swept over `side`: e-waste adds up over fleets."""
    head = '[scenario]\nname = "fleets"\nage_convention = "end"\n\n[dimensions]\nside = ["a", "b"]\n'
    body = "".join(
        f'\n[fleets.f{i:02d}]\ndriver = "inflow"\ninflow = {I0}\nlifetime = {{ type = "fixed", mean = 2 }}\n'
        f'mass = {{ dim = "side", values = [{ma}, {mb}] }}\n'
        for i, (ma, mb) in enumerate(zip(masses_a, masses_b, strict=True))
    )
    return head + body


def two_points(path: Path) -> tuple[xr.Dataset, xr.Dataset]:
    grid = ewaste.load_grid(path)
    return select(grid, {"side": "a"}, str(path)), select(grid, {"side": "b"}, str(path))


@pytest.fixture(scope="module")
def analytic(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("diff") / "analytic.toml"
    path.write_text(ANALYTIC)
    return path


@pytest.fixture(scope="module")
def exact_diff(analytic: Path) -> xr.Dataset:
    return diff_grids(*two_points(analytic), method="exact")


def contribution(ds: xr.Dataset, figure: str, group: str) -> float:
    return float(ds["contribution"].sel(figure=figure, group=group))


def test_a_product_of_two_inputs_splits_as_the_closed_form(exact_diff: xr.Dataset):
    assert list(exact_diff["group"].values) == ["inflow", "mass", "collection_rate"]
    # e-waste in 2030: I * m / 1000; cumulative: the 9 years 2022-2030 of retirements
    for figure, years in (("ewaste_generated_target", 1), ("ewaste_generated_cumulative_target", 9)):
        assert contribution(exact_diff, figure, "inflow") == pytest.approx(
            years * (I1 - I0) * (M0 + M1) / 2e3, rel=1e-12
        )
        assert contribution(exact_diff, figure, "mass") == pytest.approx(years * (M1 - M0) * (I0 + I1) / 2e3, rel=1e-12)
        assert contribution(exact_diff, figure, "collection_rate") == 0.0
    assert float(exact_diff["a"].sel(figure="ewaste_generated_target")) == pytest.approx(I0 * M0 / 1e3, rel=1e-12)


def test_a_product_of_three_inputs_splits_as_the_closed_form(exact_diff: xr.Dataset):
    def phi(dx: float, y: tuple[float, float], z: tuple[float, float]) -> float:
        return dx * ((y[0] * z[0] + y[1] * z[1]) / 3 + (y[0] * z[1] + y[1] * z[0]) / 6) * YIELD / 1e3

    got = {g: contribution(exact_diff, "recovered_target", g) for g in ("inflow", "mass", "collection_rate")}
    assert got["inflow"] == pytest.approx(phi(I1 - I0, (M0, M1), (C0, C1)), rel=1e-12)
    assert got["mass"] == pytest.approx(phi(M1 - M0, (I0, I1), (C0, C1)), rel=1e-12)
    assert got["collection_rate"] == pytest.approx(phi(C1 - C0, (I0, I1), (M0, M1)), rel=1e-12)


def test_an_input_that_does_not_affect_a_figure_gets_exactly_zero(exact_diff: xr.Dataset):
    for figure in ("energy_target", "energy_cumulative_target", "emissions_target", "stock_units_target[servers]"):
        assert contribution(exact_diff, figure, "mass") == 0.0
        assert contribution(exact_diff, figure, "collection_rate") == 0.0
        assert contribution(exact_diff, figure, "inflow") == float(exact_diff["difference"].sel(figure=figure))
    assert float(exact_diff["difference"].sel(figure="energy_target")) > 0


def assert_adds_up(ds: xr.Dataset) -> None:
    """Efficiency: the contributions of each figure add up to B - A (to the rounding of float64)."""
    scale = np.maximum(np.abs(ds["a"]), np.abs(ds["b"])).values
    gap = np.abs(ds["contribution"].sum("group").values - ds["difference"].values)
    assert (gap <= 1e-12 * scale).all(), gap / np.maximum(scale, 1e-300)


@pytest.mark.parametrize(("method", "permutations", "seed"), [("exact", 1, 0), ("sampled", 1, 0), ("sampled", 7, 3)])
def test_contributions_add_up_to_the_difference(analytic: Path, method: str, permutations: int, seed: int):
    ds = diff_grids(*two_points(analytic), method=method, permutations=permutations, seed=seed)
    assert ds.attrs["method"] == method
    assert_adds_up(ds)


def test_sampled_beyond_ten_groups_adds_up_and_is_exact_for_an_additive_game(tmp_path: Path):
    masses_a = [100.0 + 10 * i for i in range(12)]
    masses_b = [m * (1.5 + 0.1 * i) for i, m in enumerate(masses_a)]
    path = tmp_path / "fleets.toml"
    path.write_text(fleets_toml(masses_a, masses_b))
    ds = diff_grids(*two_points(path), permutations=20, seed=1)
    assert ds.attrs["method"] == "sampled" and ds.sizes["group"] == 12
    assert_adds_up(ds)
    # fleets do not interact: every order gives each fleet its own change, I * (m_b - m_a) / 1000
    expected = [I0 * (mb - ma) / 1e3 for ma, mb in zip(masses_a, masses_b, strict=True)]
    got = ds["contribution"].sel(figure="ewaste_generated_target").values
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert (ds["standard_error"].sel(figure="ewaste_generated_target").values <= 1e-9).all()


def test_a_symmetric_case_gives_equal_shares(tmp_path: Path):
    path = tmp_path / "twins.toml"
    path.write_text(fleets_toml([120.0, 120.0], [200.0, 200.0]))
    for method in ("exact", "sampled"):
        ds = diff_grids(*two_points(path), method=method, permutations=3)
        shares = ds["contribution"].sel(figure="ewaste_generated_cumulative_target").values
        assert shares[0] == pytest.approx(shares[1], rel=1e-12)
        assert shares.sum() == pytest.approx(9 * 2 * I0 * 80 / 1e3, rel=1e-12)


def test_averaging_over_every_order_is_the_shapley_value():
    """The permutation estimator over all k! orders is the Shapley value itself (Castro et al. 2009)."""
    k = 4
    rng = np.random.default_rng(7)
    game = rng.normal(size=(2**k, 3))
    orders = np.array(list(itertools.permutations(range(k))))
    estimate, _ = shapley.sampled(game, shapley.all_coalitions(k), orders)
    np.testing.assert_allclose(estimate, shapley.exact(game, k), rtol=1e-12, atol=1e-14)
    # the weights of the coalitions without a player sum to 1: sum over s of C(k-1, s) w(s)
    assert sum(math.comb(k - 1, s) * w for s, w in enumerate(shapley.weights(k))) == pytest.approx(1.0, rel=1e-15)


def test_groups_merge_and_couple(analytic: Path, tmp_path: Path):
    ds = diff_grids(*two_points(analytic), groups={"volume": ["inflow", "mass"]})
    assert list(ds["group"].values) == ["volume", "collection_rate"]
    total = float(ds["difference"].sel(figure="ewaste_generated_target"))
    assert contribution(ds, "ewaste_generated_target", "volume") == pytest.approx(total, rel=1e-12)
    with pytest.raises(InputError, match="not an input that differs"):
        diff_grids(*two_points(analytic), groups={"x": ["pue"]})


def test_lifetime_types_that_differ_are_one_group(analytic: Path, tmp_path: Path):
    other = tmp_path / "normal.toml"
    other.write_text(ANALYTIC.replace('{ type = "fixed", mean = 2 }', '{ type = "normal", mean = 2, std = 0.5 }'))
    a = select(ewaste.load_grid(analytic), {"side": "a"}, "a")
    b = select(ewaste.load_grid(other), {"side": "a"}, "b")
    ds = diff_grids(a, b)
    assert list(ds["group"].values) == ["lifetime"]
    assert set(ds["inputs"].values[0].split(", ")) == {"lifetime_type[servers]", "lifetime_std[servers]"}
    assert (str(ds["group_a"].values[0]), str(ds["group_b"].values[0])) == (
        "lifetime_type fixed",
        "lifetime_type normal; lifetime_std 0.5 yr",
    )
    assert_adds_up(ds)


def test_wang2024_rules_each_fleet_gets_its_own_change():
    """Training and inference do not interact, so each fleet's replacement rule gets exactly that
    fleet's change, read here from a plain run of the two sweep points."""
    at = {"case": "aggressive", "users": "demo", "chip": "normal", "efficiency": "constant"}
    ds = compare("wang2024@rule=wang2024", "@rule=balanced", at=at)
    grid = ewaste.load_grid("wang2024").sel(case="aggressive", users="demo", chip="normal", efficiency="constant")
    plain = ewaste.evaluate(grid, summary=True, outputs=["ewaste_generated"])["ewaste_generated_target"]
    for fleet in ("training", "inference"):
        change = float(plain.sel(fleet=fleet, rule="balanced") - plain.sel(fleet=fleet, rule="wang2024"))
        assert contribution(ds, "ewaste_generated_target", f"replacement[{fleet}]") == pytest.approx(change, rel=1e-12)
    total = float(ds["difference"].sel(figure="ewaste_generated_target"))
    assert total == pytest.approx(
        float(plain.sum("fleet").sel(rule="balanced") - plain.sum("fleet").sel(rule="wang2024"))
    )
    assert_adds_up(ds)


def test_points_are_parsed_and_selected():
    p = parse_point("refresh-cycle@refresh_cycle=1")
    assert (p.source, dict(p.at)) == ("refresh-cycle", {"refresh_cycle": "1"})
    q = parse_point("@refresh_cycle=6", p)
    assert (q.source, dict(q.at)) == ("refresh-cycle", {"refresh_cycle": "6"})
    grid = ewaste.load_grid("default-sweep")
    point = select(
        grid,
        {"recycling_collection_rate": "0.6"},
        "d",
        {"growth": "high", "metal_content": "low", "refresh_cycle": "2"},
    )
    assert not set(point.dims) - {"fleet", "time", "material", "metal"}
    assert float(point["collection_rate"]) == 0.6
    for at, field in (({"nope": "1"}, "@nope"), ({"growth": "huge"}, "@growth"), ({"growth": "high"}, "refresh_cycle")):
        with pytest.raises(InputError) as err:
            select(grid, at, "d")
        assert err.value.field == field
    assert "also without a label: metal_content, recycling_collection_rate" in err.value.message


def test_points_that_are_not_comparable_are_refused(analytic: Path, tmp_path: Path):
    a = two_points(analytic)[0]
    later = tmp_path / "later.toml"
    later.write_text(ANALYTIC.replace("end_year = 2030", "end_year = 2031\ntarget_year = 2030"))
    other = tmp_path / "other.toml"
    other.write_text(ANALYTIC.replace("[fleets.servers]", "[fleets.racks]"))
    for path, field in ((later, "time"), (other, "fleet")):
        with pytest.raises(InputError) as err:
            diff_grids(a, two_points(path)[0], names=("A", str(path)))
        assert (err.value.source, err.value.field) == (str(path), field)
        assert "not comparable" in err.value.message


def test_results_files_recover_their_inputs_or_say_why(tmp_path: Path):
    mine = tmp_path / "mine.toml"
    mine.write_text(ANALYTIC)
    results = tmp_path / "r.nc"
    ewaste.run(mine, results)
    ds = compare(f"{results}@side=a", "@side=b")
    assert "contribution" in ds and ds.attrs["no_attribution"] == ""
    assert_adds_up(ds)
    mine.rename(tmp_path / "elsewhere.toml")  # the results no longer find the file they were run from
    ds = compare(f"{results}@side=a", "@side=b")
    assert "contribution" not in ds and "mine.toml" in ds.attrs["no_attribution"]
    assert float(ds["difference"].sel(figure="ewaste_generated_target")) == pytest.approx((I1 * M1 - I0 * M0) / 1e3)
    assert "No waterfall" in diff_text(ds)
    assert len(waterfall_chart(ds).axes[0].patches) == 3  # A, B - A (not attributed), B


def test_the_waterfall_has_a_bar_per_group(exact_diff: xr.Dataset):
    fig = waterfall_chart(exact_diff, "recovered_target")
    assert len(fig.axes[0].patches) == exact_diff.sizes["group"] + 2
    with pytest.raises(InputError, match="unknown figure"):
        waterfall_chart(exact_diff, "nope")


def ewaste_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ewaste.cli", *args], capture_output=True, text=True, cwd=cwd)


def ewaste_here(args: list[str], folder: Path, monkeypatch, capsys) -> tuple[int, str, str]:
    """`ewaste ARGS` in this process (faster than a subprocess), from `folder`: exit code, stdout, stderr."""
    from ewaste.cli import main

    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "argv", ["ewaste", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_command_prints_writes_and_draws(tmp_path: Path):
    out = ewaste_cli(
        "diff", "refresh-cycle@refresh_cycle=1", "@refresh_cycle=6", "-o", "d.json", "--chart", "w.svg", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert "lifetime_scale" in out.stdout and "e-waste generated in 2030" in out.stdout
    rows = json.loads((tmp_path / "d.json").read_text())["rows"]
    row = next(r for r in rows if r["figure"] == "ewaste_generated_target")
    assert row["contribution"] == pytest.approx(row["difference"], rel=1e-12)  # one group: all of it
    assert (tmp_path / "w.svg").read_text().lstrip().startswith("<?xml")
    again = ewaste_cli("diff", "refresh-cycle@refresh_cycle=1", "@refresh_cycle=6", "-o", "d.json", cwd=tmp_path)
    assert again.returncode == 2 and "exists; pass --overwrite" in again.stderr


def stale_results(folder: Path) -> Path:
    path = folder / "old.nc"
    xr.Dataset(
        {"ewaste_generated_target": ("fleet", [1.0])},
        {"fleet": ["x"]},
        attrs={"ewaste_version": "0.0.1", "target_year": 2030},
    ).to_netcdf(path)
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["refresh-cycle@refresh_cycle=9", "@refresh_cycle=6"], "refresh-cycle: @refresh_cycle: no label '9'"),
        (["refresh-cycle@cycle=1", "@refresh_cycle=6"], "refresh-cycle: @cycle: no such sweep dimension"),
        (["nosuch@x=1", "@x=2"], "nosuch: no such file or bundled scenario"),
        (["refresh-cycle@refresh_cycle=1", "wang2024@case=moderate"], "wang2024: chip: 5 labels"),
        (["refresh-cycle@refresh_cycle=1", "iea-2025-energy@dc_servers_lifetime_mean=4"], "not comparable"),
        (["old.nc", "old.nc"], "old.nc: results of ewaste 0.0.1"),
        (["refresh-cycle@refresh_cycle=1", "@refresh_cycle=6", "-o", "missing/d.csv"], "the folder does not exist"),
        (["refresh-cycle@refresh_cycle=1", "@refresh_cycle=6", "-o", "d.xlsx"], "unknown format '.xlsx'"),
        (
            ["refresh-cycle@refresh_cycle=1", "@refresh_cycle=6", "-o", "d.csv", "--figure", "x", "--chart", "w.svg"],
            "unknown figure 'x'",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    tmp_path: Path, args: list[str], message: str, monkeypatch, capsys
):
    stale_results(tmp_path)
    before = set(tmp_path.iterdir())
    code, _, err = ewaste_here(["diff", *args], tmp_path, monkeypatch, capsys)
    assert code == 2, err
    assert err.startswith("ewaste: error: ") and err.count("\n") == 1, err
    assert message in err
    assert set(tmp_path.iterdir()) == before


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_read_only_folder_is_refused(tmp_path: Path):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    out = ewaste_cli("diff", "refresh-cycle@refresh_cycle=1", "@refresh_cycle=6", "-o", "ro/d.csv", cwd=tmp_path)
    assert out.returncode == 2 and "ro/d.csv: the folder is not writable" in out.stderr
