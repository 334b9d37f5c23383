"""The report and the charts: units in service by cohort age against hand-worked cohorts, each chart's
plotted numbers against hand-worked ones, the page in a real headless Chromium (no console error, no
network request, every chart drawn, the print view), and bad input refused in one line with nothing
written."""

from __future__ import annotations

import copy
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose

import ewaste
from ewaste.inputs.scenario import scenario_to_grid
from ewaste.inputs.validate import validate
from ewaste.model.cohorts import stock_by_age
from ewaste.outputs.chartdata import gather, load_diff
from ewaste.outputs.chartkit import ChartData, figure, reference_point
from ewaste.outputs.charts import CHARTS
from ewaste.outputs.readers import load_results

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from headless_chromium import Chromium, find_chromium, pdf_pages, problems  # noqa: E402

YEARS = list(range(2020, 2026))
# Two inflow-driven fleets with fixed lifetimes under the 'end' convention: a cohort entering in year c
# is in service at the ends of years c .. c + L - 1 and retires, whole, in year c + L.
HAND = """
[scenario]
name = "hand"
start_year = 2020
end_year = 2025
target_year = 2025
age_convention = "end"

[fleets.a]
driver = "inflow"
inflow = 100
lifetime = { type = "fixed", mean = [2, 4] }
mass = 100
power = 1
composition = { steel = 0.5 }
embodied = 1000

[fleets.b]
driver = "inflow"
inflow = 40
lifetime = { type = "fixed", mean = 3 }
mass = MASS_B
power = 2

[recycling]
collection_rate = 0.5
preprocessing_yield = { steel = 0.9 }
endprocessing_yield = { steel = 1.0 }

[finance]
currency = "USD"
price_year = 2024

[fleets.a.finance]
price = 1000
accounting_life = 5
residual_retention = 0.5
"""
DRAWN = '{ dist = "triangular", min = 40, mode = 50, max = 60, units = "kg" }'
# every figure of `ewaste sensitivity` moved by some draw (b's mass: e-waste; b's power: energy)
TINY = (
    HAND.replace("MASS_B", DRAWN).replace("power = 2", 'power = { dist = "uniform", min = 1.5, max = 2.5 }')
    + "\n[uncertainty]\ndraws = 16\nseed = 1\n"
)


def grid_of(text: str, name: str = "hand.toml") -> xr.Dataset:
    import tomllib

    return validate(scenario_to_grid(tomllib.loads(text), name), name)


@pytest.fixture(scope="module")
def hand() -> ChartData:
    grid = grid_of(HAND.replace("MASS_B", "50"))
    results = ewaste.evaluate(grid, backend="numpy")
    return ChartData(results, stock_by_age(grid), at=reference_point(results), grid=grid)


def bars(ax) -> dict[str, list[float]]:
    """Label -> heights of each bar series drawn on an axes."""
    return {c.get_label(): [p.get_height() for p in c.patches] for c in ax.containers}


def same(got: dict[str, list[float]], want: dict[str, list[float]]) -> bool:
    """The same labels, and the same heights to rounding."""
    return got.keys() == want.keys() and all(np.allclose(got[k], want[k], rtol=1e-9, atol=1e-12) for k in want)


# --- units in service by cohort age ----------------------------------------------------------------


def one_fleet(fleet: dict, **scenario) -> xr.Dataset:
    raw = {
        "scenario": {"start_year": 2020, "end_year": 2025, "age_convention": "end", **scenario},
        "fleets": {"f": {"mass": 100, **fleet}},
    }
    return validate(scenario_to_grid(copy.deepcopy(raw), "t.toml"), "t.toml")


def test_inflow_driven_fixed_lifetime_by_hand():
    cohorts = stock_by_age(one_fleet({"driver": "inflow", "inflow": 100, "lifetime": {"type": "fixed", "mean": 3}}))
    got = cohorts.sel(fleet="f").values  # (time, age)
    want = np.zeros((6, 6))
    for m in range(6):
        for age in range(min(m, 2) + 1):  # ages 0, 1, 2 survive a fixed 3-year life
            want[m, age] = 100
    assert_allclose(got, want, atol=1e-9)
    assert cohorts.attrs["units"] == "unit"
    assert list(cohorts["age"].values) == [0, 1, 2, 3, 4, 5]


def test_stock_driven_fixed_lifetime_by_hand():
    """A constant 1,000 units with a 2-year life: the whole fleet is bought in 2020, 2022, 2024."""
    grid = one_fleet({"driver": "stock", "stock": 1000, "lifetime": {"type": "fixed", "mean": 2}})
    got = stock_by_age(grid).sel(fleet="f").values
    want = np.zeros((6, 6))
    for m in range(6):
        want[m, m % 2] = 1000
    assert_allclose(got, want, atol=1e-9)


def test_the_negative_inflow_correction_retires_old_cohorts_early():
    """1,000 in 2020, then 500: the 2020 cohort keeps half (ODYM's correction) and ages on."""
    fleet = {
        "driver": "stock",
        "stock": {"2020": 1000, "2021": 500, "2025": 500},
        "lifetime": {"type": "fixed", "mean": 10},
    }
    grid = one_fleet(fleet, negative_inflow="correct")
    got = stock_by_age(grid).sel(fleet="f").values
    want = np.zeros((6, 6))
    want[0, 0] = 1000
    for m in range(1, 6):
        want[m, m] = 500
    assert_allclose(got, want, atol=1e-9)


def test_a_capacity_driven_fleet_is_counted_in_units_of_each_cohort():
    """100 capacity of 1-per-unit servers in 2020, 200 more of 2-per-unit ones in 2021: 100 units each."""
    fleet = {
        "driver": "capacity",
        "demand": {"2020": 100, "2021": 300, "2025": 300},
        "capacity_per_unit": {"2020": 1, "2021": 2, "2025": 2},
        "lifetime": {"type": "fixed", "mean": 10},
    }
    got = stock_by_age(one_fleet(fleet)).sel(fleet="f").values
    assert_allclose(got[1, :2], [100, 100], atol=1e-9)
    assert_allclose(got[5, 4:], [100, 100], atol=1e-9)


@pytest.mark.parametrize("scenario", ["refresh-cycle", "default"])
def test_ages_sum_to_the_stock_of_the_results(scenario):
    grid = ewaste.load_grid(scenario)
    if "draw" in grid.dims:
        grid = grid.isel(draw=slice(0, 50))
    cohorts = stock_by_age(grid)
    stock = ewaste.evaluate(grid, backend="numpy", outputs=["stock_units"])["stock_units"]
    assert_allclose(cohorts.sum("age").transpose(*stock.dims).values, stock.values, rtol=1e-9)
    assert (cohorts.values >= -1e-9 * float(stock.max())).all()


# --- each chart's numbers, by hand ---------------------------------------------------------------------


def test_the_registry_names_every_chart_and_draws_only_what_the_data_holds(hand):
    assert list(CHARTS) == [
        "ewaste-by-fleet",
        "ewaste-by-material",
        "destinations",
        "cohort-age",
        "energy-emissions",
        "money",
        "embodied",
        "sweep",
        "fan",
        "tornado",
        "waterfall",
    ]
    assert "draw" in CHARTS["fan"].needs(hand)
    assert "--sensitivity" in CHARTS["tornado"].needs(hand)
    assert hand.at == {"a_lifetime_mean": 4.0}  # the middle label (the upper of two)


def test_ewaste_by_fleet_and_by_material(hand):
    ax = figure(CHARTS["ewaste-by-fleet"], hand).axes[0]
    assert same(bars(ax), {"a": [0, 0, 0, 0, 10, 10], "b": [0, 0, 0, 2, 2, 2]})  # t/yr, L = 4
    assert ax.get_ylabel().endswith("(t/yr)")
    ax = figure(CHARTS["ewaste-by-material"], hand).axes[0]
    assert same(bars(ax), {"other": [0, 0, 0, 2, 7, 7], "steel": [0, 0, 0, 0, 5, 5]})


def test_destinations_add_up_to_the_ewaste(hand):
    """Half collected; steel (half of a) recovered at 0.9 x 1.0, nothing else recovered."""
    got = bars(figure(CHARTS["destinations"], hand).axes[0])
    assert same(
        got,
        {
            "recovered: steel": [0, 0, 0, 0, 2.25, 2.25],
            "lost in processing": [0, 0, 0, 1, 3.75, 3.75],
            "not collected": [0, 0, 0, 1, 6, 6],
        },
    )


def test_cohort_age_per_fleet(hand):
    axes = figure(CHARTS["cohort-age"], hand).axes
    assert [ax.get_title() for ax in axes] == ["a", "b"]
    a, b = bars(axes[0]), bars(axes[1])
    assert a["0"] == pytest.approx([100] * 6) and a["3"] == pytest.approx([0, 0, 0, 100, 100, 100])
    assert "4" not in a or a["4"] == pytest.approx([0] * 6)
    assert b["2"] == pytest.approx([0, 0, 40, 40, 40, 40]) and sum(b.get("3", [0])) == 0


def test_energy_and_emissions(hand):
    """2025, L = 4 for a: the cohorts of 2021-2024 serve all year ('end': none in its first step),
    400 units x 1 kW; b: 2022-2024, 120 x 2 kW; x 8,760 h x PUE 1.56 (default), x 475 g/kWh."""
    energy, emissions = figure(CHARTS["energy-emissions"], hand).axes[:2]
    kwh = {"a": 400 * 1 * 8760 * 1.56, "b": 120 * 2 * 8760 * 1.56}
    assert {k: v[-1] for k, v in bars(energy).items()} == pytest.approx({k: v / 1e6 for k, v in kwh.items()})
    assert energy.get_ylabel().endswith("(GWh/yr)")
    assert {k: v[-1] for k, v in bars(emissions).items()} == pytest.approx({k: v * 0.475 / 1e6 for k, v in kwh.items()})
    assert emissions.get_ylabel().endswith("(ktCO2e/yr)")


def test_money_by_hand(hand):
    """Fleet a at L = 4 ('end' ages): 100 units a year at 1,000 USD, books over 5 years, resale 0.5^age."""
    left, right = figure(CHARTS["money"], hand).axes
    assert left.get_ylabel().endswith("(k USD)")
    assert same(bars(left), {"capex": [100] * 6})
    lines = {line.get_label(): list(line.get_ydata()) for line in left.lines}
    assert np.allclose(lines["depreciation, as reported"], [0, 20, 40, 60, 80, 80])
    economic = 100 * 1000 * (1 - 0.5**4) / 4 / 1000  # over the 4-year life, down to the resale value
    assert np.allclose(lines["depreciation, economic life"], [0, 1, 2, 3, 4, 4] * np.array(economic))
    stranded = 100 * (1000 * (1 - 4 / 5) - 1000 * 0.5**4) / 1000  # retired at 4 years, in 2024 and 2025
    assert same(bars(right), {"stranded value": [0, 0, 0, 0, stranded, stranded]})
    nbv = {line.get_label(): list(line.get_ydata()) for line in right.lines}["net book value, year end"]
    assert np.allclose(nbv, [100, 180, 240, 280, 280, 280])


def test_embodied_by_hand(hand):
    """100 units of fleet a a year at 1 tCO2e each, amortised over the 4-year life ('end': none the first year)."""
    ax = figure(CHARTS["embodied"], hand).axes[0]
    scale = {"MtCO2e/yr": 1e6, "ktCO2e/yr": 1e3, "tCO2e/yr": 1.0}[ax.get_ylabel().split("(")[1].rstrip(")")]
    purchase = {line.get_label(): np.array(line.get_ydata()) for line in ax.lines}["embodied, at purchase"]
    assert np.allclose(purchase * scale, [100] * 6)
    amortised = np.array(bars(ax)["embodied, amortised"]) * scale
    assert np.allclose(amortised, [0, 25, 50, 75, 100, 100])


def test_the_waterfall_of_a_diff_by_hand(hand, tmp_path):
    """Fleet a's life 2 vs 4 years ('end' ages, 100 units of 100 kg a year): by 2025 the 2-year life
    retires the cohorts 2020-2023 (40 t), the 4-year life those of 2020-2021 (20 t); fleet b is the
    same in both, so the lifetime's contribution is all of B - A = -20 t."""
    (tmp_path / "hand.toml").write_text(HAND.replace("MASS_B", "50"))
    done = ewaste_cli("diff", "hand.toml@a_lifetime_mean=2", "@a_lifetime_mean=4", "-o", "d.nc", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = ChartData(hand.results, at=hand.at, diff=load_diff(tmp_path / "d.nc"))
    ax = figure(CHARTS["waterfall"], data).axes[0]
    heights = [p.get_height() for p in ax.patches]
    scale = {"t": 1.0, "kt": 1e3}[ax.get_ylabel()]
    a, step, b = (h * scale for h in heights)
    assert step == pytest.approx(20.0) and a - b == pytest.approx(20.0)


def test_the_sweep_chart_shows_what_the_refresh_cycle_does(hand):
    """Cumulative 2020-2025: a retires 10 t/yr from 2022 (L = 2) or 2024 (L = 4); b 2 t/yr from 2023."""
    lines, totals = figure(CHARTS["sweep"], hand).axes[:2]
    assert [p.get_height() for p in totals.patches] == pytest.approx([40 + 6, 20 + 6])
    assert [t.get_text() for t in totals.get_xticklabels()] == ["2", "4"]
    assert "a_lifetime_mean" in totals.get_title()
    assert list(lines.lines[0].get_ydata()) == pytest.approx([0, 0, 10, 12, 12, 12])


def test_the_fan_shows_quantiles_over_the_draws(tmp_path):
    grid = grid_of(TINY, "tiny.toml")
    results = ewaste.evaluate(grid, backend="numpy")
    data = ChartData(results, at=reference_point(results))
    ax = figure(CHARTS["fan"], data).axes[0]
    per_draw = results["ewaste_generated_annual"].sum("fleet").sel(a_lifetime_mean=4.0).transpose("draw", "year").values
    p5, p50, p95 = np.quantile(per_draw, [0.05, 0.5, 0.95], axis=0)
    assert ax.lines[0].get_ydata() == pytest.approx(p50)
    band = ax.collections[0].get_paths()[0].vertices  # the p5-p95 polygon
    for year, lo, hi in zip(YEARS, p5, p95, strict=True):
        ys = band[np.isclose(band[:, 0], year), 1]
        assert ys.min() == pytest.approx(lo) and ys.max() == pytest.approx(hi)


# --- the page in a real browser ------------------------------------------------------------------------


def ewaste_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`ewaste ARGS` on the NumPy engine (a test session builds no compiled engine for these)."""
    argv = [sys.executable, "-m", "ewaste.cli", *args, "--backend", "numpy"]
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> tuple[Path, Path]:
    """A report with every chart: a sweep, draws, money, embodied emissions, a tornado (`ewaste
    sensitivity -o`) and a waterfall (`ewaste diff -o`), and its folder."""
    folder = tmp_path_factory.mktemp("report")
    (folder / "tiny.toml").write_text(TINY)
    done = ewaste_cli("sensitivity", "tiny.toml", "--method", "tornado", "-o", "s.nc", cwd=folder)
    assert done.returncode == 0, done.stderr
    done = ewaste_cli(
        "diff", "tiny.toml@a_lifetime_mean=2", "@a_lifetime_mean=4", "--at", "draw=0", "-o", "d.nc", cwd=folder
    )
    assert done.returncode == 0, done.stderr
    done = ewaste_cli("report", "tiny.toml", "--sensitivity", "s.nc", "--diff", "d.nc", "-o", "report.html", cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder / "report.html", folder


@pytest.fixture(scope="module")
def browser():
    executable = find_chromium()
    if executable is None:
        pytest.skip("Chromium is not installed (.ci/run installs the Debian package chromium where it is missing)")
    with Chromium(executable) as chromium:
        yield chromium


def non_blank(pixels: np.ndarray) -> bool:
    """Whether a region of a screenshot holds a drawing: some share of it away from white, in colours."""
    rgb = pixels[..., :3]
    ink = (np.abs(rgb - 1.0) > 0.1).any(axis=-1)
    colours = {tuple(c) for c in (rgb[ink] * 8).astype(int)}
    return ink.mean() > 0.02 and len(colours) >= 3


def test_the_page_loads_offline_with_every_chart_drawn(full_report, browser):
    from matplotlib import image

    page, _ = full_report
    html = page.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "a link that would fetch something"
    assert "<script" not in html and "@import" not in html and not re.search(r"url\((?!#)", html)
    browser.open(page)
    browser.settle(0.5)
    assert problems(browser.events, page.resolve().as_uri()) == {
        "console errors": [],
        "exceptions": [],
        "requests": [],
        "failed loads": [],
    }
    boxes = json.loads(
        browser.evaluate(
            "JSON.stringify([...document.querySelectorAll('figure.chart')].map(f => {"
            "const r = f.querySelector('svg').getBoundingClientRect();"
            "return {name: f.dataset.chart, x: r.x + scrollX, y: r.y + scrollY, w: r.width, h: r.height};}))"
        )
    )
    assert [b["name"] for b in boxes] == list(CHARTS)
    shot = image.imread(io.BytesIO(browser.screenshot()), format="png")
    assert shot.shape[1] == 1200
    for b in boxes:
        assert b["w"] > 400 and b["h"] > 150, b
        region = shot[int(b["y"]) : int(b["y"] + b["h"]), int(b["x"]) : int(b["x"] + b["w"])]
        assert region.shape[0] > 150 and non_blank(region), f"chart {b['name']} is blank"
    for section in ("question", "inputs", "charts", "method", "provenance"):
        assert browser.evaluate(f"!!document.getElementById('{section}')")
    text = browser.evaluate("document.body.innerText")
    assert "location-based" in text and "Embodied emissions" in text and "sha256" in text
    assert "fleets.b.mass" in text  # the uncertain input, as the scenario wrote it


def test_the_print_view(full_report, browser):
    page, _ = full_report
    browser.open(page)
    browser.call("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        assert browser.evaluate("getComputedStyle(document.querySelector('nav')).display") == "none"
        assert browser.evaluate("getComputedStyle(document.getElementById('charts')).breakBefore") == "page"
    finally:
        browser.call("Emulation.setEmulatedMedia", {"media": ""})
    pdf = browser.pdf()
    assert pdf.startswith(b"%PDF-")
    assert 3 <= pdf_pages(pdf) <= 40  # the inputs, the charts from a new page, the method


def test_the_checks_catch_what_they_look_for(browser, tmp_path):
    """A page that fetches and logs an error is caught; a white region is blank."""
    bad = tmp_path / "bad.html"
    bad.write_text('<img src="http://127.0.0.1:9/x.png"><script>console.error("boom")</script>')
    browser.open(bad)
    browser.settle(0.3)
    found = problems(browser.events, bad.resolve().as_uri())
    assert found["requests"] == ["http://127.0.0.1:9/x.png"] and found["console errors"]
    assert not non_blank(np.ones((200, 400, 3)))


# --- the commands ------------------------------------------------------------------------------------


def test_plot_writes_png_and_svg_and_a_saved_results_file_finds_its_scenario(full_report):
    from matplotlib import image

    _, folder = full_report
    done = ewaste_cli("run", "tiny.toml", "-q", "-o", "r.nc", cwd=folder)
    assert done.returncode == 0, done.stderr
    done = ewaste_cli("plot", "r.nc", "--chart", "cohort-age", "--at", "a_lifetime_mean=2", "-o", "age.png", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert non_blank(image.imread(folder / "age.png"))
    done = ewaste_cli("plot", "tiny.toml", "--chart", "tornado", "--sensitivity", "s.nc", "-o", "t.svg", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert (folder / "t.svg").read_text().lstrip().startswith("<?xml")
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(folder / "r.nc", elsewhere / "r.nc")
    data = gather(load_results(elsewhere / "r.nc"), str(elsewhere / "r.nc"))
    assert data.cohorts is None and "tiny.toml" in data.why_missing["cohorts"]
    assert "tiny.toml" in CHARTS["cohort-age"].needs(data)


def refused(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ewaste: error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]


# (arguments, words the one-line error must hold): each exits 2 and writes nothing
BAD = [  # a name of its own for each output: they run side by side, and a claimed name is refused
    (["plot", "tiny.toml", "--chart", "pie", "-o", "x1.png"], ["x1.png: --chart", "'pie'", "cohort-age, energy"]),
    (["plot", "refresh-cycle", "--chart", "fan", "-o", "x2.png"], ["refresh-cycle: chart fan", "draw"]),
    (["plot", "tiny.toml", "--chart", "tornado", "-o", "x3.png"], ["chart tornado", "--sensitivity"]),
    (["plot", "tiny.toml", "--chart", "fan", "-o", "x4.pdf"], ["x4.pdf", ".svg or .png"]),
    (["report", "tiny.toml", "-o", "missing/r.html"], ["missing/r.html", "folder does not exist"]),
    (["report", "tiny.toml", "-o", "r.txt"], ["r.txt", ".html"]),
    (["report", "tiny.toml", "--sensitivity", "grid.nc", "-o", "r1.html"], ["grid.nc", "a scenario grid"]),
    (["report", "tiny.toml", "--sensitivity", "r.nc", "-o", "r2.html"], ["r.nc", "results of ewaste run"]),
    (["report", "tiny.toml", "--at", "a_lifetime_mean=7", "-o", "r3.html"], ["--at", "a_lifetime_mean=7"]),
    (["report", "tiny.toml", "--at", "colour=red", "-o", "r4.html"], ["--at", "colour"]),
    (["report", "nope.toml", "-o", "r5.html"], ["nope.toml"]),
]


def test_bad_input_is_refused_in_one_line_and_nothing_is_written(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    (tmp_path / "tiny.toml").write_text(TINY)
    ewaste.save_grid(ewaste.load_grid(tmp_path / "tiny.toml"), tmp_path / "grid.nc")
    ewaste.evaluate(ewaste.load_grid("refresh-cycle"), backend="numpy").to_netcdf(tmp_path / "r.nc")
    before = set(os.listdir(tmp_path))
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda case: ewaste_cli(*case[0], cwd=tmp_path), BAD))
    for (args, words), outcome in zip(BAD, done, strict=True):
        assert outcome.returncode == 2, (args, outcome.stderr)
        refused(outcome, *words)
    assert set(os.listdir(tmp_path)) == before  # nothing written, no temporary or claim file left
    (tmp_path / "r.html").write_text("mine")
    refused(ewaste_cli("report", "tiny.toml", "-o", "r.html", cwd=tmp_path), "r.html", "--overwrite")
    assert (tmp_path / "r.html").read_text() == "mine"
    outcome = ewaste_cli("report", "tiny.toml", "-o", "r.html", "--overwrite", cwd=tmp_path)
    assert outcome.returncode == 0 and (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")


def test_a_read_only_folder_is_refused(tmp_path):
    """A folder that takes no new file: one without write permission, or, for root (who writes anywhere
    else), sysfs, where nobody can create a file."""
    if os.geteuid() == 0:
        folder = Path("/sys")
        if not folder.is_dir():
            pytest.skip("running as root, and no /sys to stand for a read-only folder")
    else:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o555)
    before = set(os.listdir(folder))
    out = folder / "ewaste-report.html"
    done = ewaste_cli("report", "refresh-cycle", "-o", str(out), cwd=tmp_path)
    refused(done, str(out), "cannot write here")
    assert set(os.listdir(folder)) == before


@pytest.mark.parametrize(("uid", "present"), [(1000, False), (0, False), (1000, True)])
def test_ci_installs_chromium_where_it_is_missing_then_runs_readmes_command(tmp_path, uid, present):
    """.ci/run's Chromium step, run with stand-ins for apt-get, sudo and id (what each was asked to do),
    and its last line README's test command."""
    script = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    test_command = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest -q"
    assert test_command in readme
    assert script.rstrip().splitlines()[-1] == test_command.replace("pip install -e", "pip install -q -e")
    step = script[script.index("if ! command -v chromium") : script.index("\nfi\n") + 4]
    stubs, log = tmp_path / "bin", tmp_path / "calls"
    stubs.mkdir()
    for name, body in {
        "apt-get": f'echo "apt-get $*" >> {log}',
        "sudo": f'echo "sudo" >> {log}; exec "$@"',
        "id": f"echo {uid}",
        **({"chromium": "exit 0"} if present else {}),
    }.items():
        (stubs / name).write_text(f"#!/bin/bash\n{body}\n")
        (stubs / name).chmod(0o755)
    (stubs / "env").symlink_to(shutil.which("env"))
    done = subprocess.run(["/bin/bash", "-c", f"set -euo pipefail\n{step}"], env={"PATH": str(stubs)}, text=True)
    assert done.returncode == 0
    calls = log.read_text().splitlines() if log.exists() else []
    if present:
        assert calls == []
    else:
        sudo = ["sudo"] if uid else []
        assert calls == [*sudo, "apt-get update -q", *sudo, "apt-get install -y -q chromium"]
