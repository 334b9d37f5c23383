"""The `ewaste` command: runs, writes atomically, and rejects bad input in one line with exit 2."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ewaste.engine import host

ROOT = Path(__file__).resolve().parents[1]

GOOD = """
[scenario]
name = "cli"
start_year = 2020
end_year = 2025

[fleets.servers]
driver = "stock"
stock = { 2020 = 100, 2025 = 400 }
lifetime = { type = "fixed", mean = 3 }
mass = 100
power = 10

[recycling]
collection_rate = 0.5
"""


def ewaste(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ewaste.cli", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    return path


def test_run_default_prints_summary():
    out = ewaste("run")  # the bundled default: draws of its uncertain inputs
    assert out.returncode == 0, out.stderr
    assert "E-waste in 2030" in out.stdout and "1,000 draws" in out.stdout and "p5" in out.stdout
    sweep = ewaste("run", "default-sweep")  # the same inputs as a sweep
    assert sweep.returncode == 0 and "162 sweep points" in sweep.stdout and "Across the sweep" in sweep.stdout


def test_run_of_some_outputs_prints_the_rows_it_has(good: Path):
    full = ewaste("run", str(good))
    some = ewaste("run", str(good), "--outputs", "ewaste_generated,energy")
    assert some.returncode == 0, some.stderr
    assert "by material" not in some.stdout and "recovered" not in some.stdout and "in service" not in some.stdout

    def row(text: str, label: str) -> str:
        return next(line.split() for line in text.splitlines() if line.strip().startswith(label))[1]

    for label in ("generated", "e-waste generated", "electricity"):
        assert row(some.stdout, label) == row(full.stdout, label)


def test_run_writes_netcdf_and_csv_and_refuses_overwrite(good: Path, tmp_path: Path):
    nc, csv = tmp_path / "r.nc", tmp_path / "r.csv"
    assert ewaste("run", str(good), "--out", str(nc), "-q").returncode == 0
    assert ewaste("run", str(good), "--out", str(csv), "-q").returncode == 0
    with xr.open_dataset(nc) as res:
        # 100 units with a 3-year fixed life, stock-driven: 100 retire in 2023 (mass 100 kg each)
        assert float(res["ewaste_generated_annual"].sel(year=2023).sum()) == pytest.approx(10.0)
        assert res.attrs["scenario_file"] == "good.toml"
    assert csv.read_text().startswith("variable,fleet,")  # a table a spreadsheet opens as it is
    provenance = json.loads((tmp_path / "r.csv.json").read_text())
    assert provenance["title"] == "cli" and provenance["scenario_sha256"] and provenance["ewaste_version"]
    table = pd.read_csv(csv)
    row = table[(table["variable"] == "ewaste_generated") & (table["year"] == 2023)]
    assert float(row["annual"].sum()) == pytest.approx(10.0) and set(row["annual_units"]) == {"t/yr"}
    before = nc.read_bytes()
    out = ewaste("run", str(good), "--out", str(nc))
    assert out.returncode == 2 and "--overwrite" in out.stderr
    assert nc.read_bytes() == before
    assert ewaste("run", str(good), "--out", str(nc), "--overwrite", "-q").returncode == 0
    assert not list(tmp_path.glob(".*.part"))


def test_grid_roundtrip_edited_in_python(good: Path, tmp_path: Path):
    grid_nc = tmp_path / "grid.nc"
    out = ewaste("grid", str(good), "-o", str(grid_nc))
    assert out.returncode == 0, out.stderr
    with xr.open_dataset(grid_nc) as g:
        edited = g.load()
    edited["mass"] = edited["mass"] * 2  # edit in Python, save, run the same way
    edited.to_netcdf(tmp_path / "edited.nc")
    res_nc = tmp_path / "res.nc"
    assert ewaste("run", str(tmp_path / "edited.nc"), "--out", str(res_nc), "-q").returncode == 0
    with xr.open_dataset(res_nc) as res:
        assert float(res["ewaste_generated_annual"].sel(year=2023).sum()) == pytest.approx(20.0)


def test_validate_scenarios_info(good: Path):
    assert "valid" in ewaste("validate", str(good)).stdout
    listing = ewaste("scenarios").stdout
    names = [line.split()[0] for line in listing.splitlines()]
    assert names == sorted(names) and {"default", "cascade", "depreciation"} <= set(names) and "source" in listing
    info = ewaste("info")
    expected = "cpu" if host.status()[0] else "numpy"  # the compiled engine wherever a C++ compiler builds it
    assert info.returncode == 0 and "numpy (available" in info.stdout and f"auto selects: {expected}" in info.stdout


def _bad(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


BAD_CASES = {
    "syntax": (GOOD.replace("mass = 100", "mass = = 100"), r"TOML syntax error"),
    "unknown key": (GOOD.replace("mass = 100", "mas = 100"), r"fleets\.servers\.mas: unknown key; did you mean 'mass'"),
    "unknown section": (GOOD + "\n[recyling]\n", r"recyling: unknown section; did you mean 'recycling'"),
    "wrong units": (
        GOOD.replace("mass = 100", 'mass = { value = 100, units = "m" }'),
        r"fleets\.servers\.mass\.units: unit 'm' not accepted",
    ),
    "rate above 1": (
        GOOD.replace("collection_rate = 0.5", "collection_rate = 1.5"),
        r"recycling\.collection_rate: value 1\.5 above the maximum 1",
    ),
    "negative lifetime": (
        GOOD.replace("mean = 3", "mean = -3"),
        r"fleets\.servers\.lifetime\.mean: value -3 below the minimum",
    ),
    "nan": (GOOD.replace("mass = 100", "mass = nan"), r"fleets\.servers\.mass: value nan is not a finite number"),
    "mismatched dims": (
        GOOD.replace("mass = 100", 'mass = { dim = "x", values = [1, 2] }').replace(
            "power = 10", 'power = { dim = "x", values = [1, 2, 3] }'
        ),
        r"fleets\.servers\.power: 3 values along dimension 'x', but fleets\.servers\.mass gives 2",
    ),
    "missing driver data": (
        GOOD.replace("stock = { 2020 = 100, 2025 = 400 }", ""),
        r"fleets\.servers\.stock: required",
    ),
    "bad lifetime type": (GOOD.replace('type = "fixed"', 'type = "weibul"'), r"did you mean 'weibull'"),
    "shares above 1": (
        GOOD.replace("power = 10", "composition = { steel = 0.8, copper = 0.4 }"),
        r"composition: material shares sum to 1\.2",
    ),
    "history as a number": (
        GOOD.replace("power = 10", "inflow_history = 500"),
        r"fleets\.servers\.inflow_history: an inflow history is a series keyed by years",
    ),
    "unused dimension": (GOOD + '\n[dimensions]\ncase = ["a", "b"]\n', r"dimensions\.case: declared, but no parameter"),
    "dimension labels": (
        GOOD.replace("mass = 100", 'mass = { dim = "case", values = [1, 2, 3] }')
        + '\n[dimensions]\ncase = ["a", "b"]\n',
        r"fleets\.servers\.mass: 3 values for dimension 'case', which has 2 labels",
    ),
    "weibull too narrow": (
        GOOD.replace('type = "fixed", mean = 3', 'type = "weibull", mean = 3, std = 0.001'),
        r"fleets\.servers\.lifetime\.std: std/mean too small",
    ),
    "capacity units": (
        GOOD.replace('driver = "stock"', 'driver = "capacity"').replace(
            "stock = { 2020 = 100, 2025 = 400 }", 'demand = { value = 5, units = "EFLOP/s" }\ncapacity_per_unit = 1'
        ),
        r"fleets\.servers\.demand\.units: capacity is in the fleet's own unit",
    ),
    "capacity per unit of zero": (
        GOOD.replace('driver = "stock"', 'driver = "capacity"').replace(
            "stock = { 2020 = 100, 2025 = 400 }", "demand = 5\ncapacity_per_unit = 0"
        ),
        r"fleets\.servers\.capacity_per_unit: a capacity-driven fleet needs a capacity per unit > 0",
    ),
    "a transfer that is not a sale or a move at book value": (
        GOOD + '\n[fleets.second]\ndriver = "inflow"\ninflow = { from = "servers", share = 0.5, transfer = "gift" }\n'
        'lifetime = { type = "fixed", mean = 2 }\n',
        r"fleets\.second\.inflow\.transfer: expected one of 'sale', 'book', got 'gift'",
    ),
    "dimension named like a result": (
        GOOD.replace("mass = 100", 'mass = { values = [100, 200], dim = "ewaste_generated_target" }'),
        r"fleets\.servers\.mass\.dim: 'ewaste_generated_target' cannot name a dimension",
    ),
    "repeated labels": (
        GOOD.replace("mass = 100", 'mass = { dim = "case", values = [1, 2] }') + '\n[dimensions]\ncase = ["a", "a"]\n',
        r"dimensions\.case: labels repeat",
    ),
    "driver as a list": (GOOD.replace('driver = "stock"', 'driver = ["stock"]'), r"fleets\.servers\.driver: unknown"),
    "units as a list": (
        GOOD.replace("mass = 100", 'mass = { value = 100, units = ["kg"] }'),
        r"fleets\.servers\.mass\.units: units are text",
    ),
    "dim as a number": (
        GOOD.replace("mass = 100", "mass = { values = [1, 2], dim = 5 }"),
        r"fleets\.servers\.mass\.dim: a dimension name is text",
    ),
    "step as a list": (GOOD.replace("end_year = 2025", 'end_year = 2025\nstep = ["year"]'), r"scenario\.step: unknown"),
    "almost no first-step survival": (
        GOOD.replace('type = "fixed", mean = 3', 'type = "normal", mean = 0.3, std = 0.02'),
        r"fleets\.servers\.lifetime: only .* survives the step it enters service",
    ),
    "series keys at one point in time": (
        GOOD.replace("{ 2020 = 100, 2025 = 400 }", "{ 2020 = 100, 2024 = 300, 2024Q4 = 350 }"),
        r"fleets\.servers\.stock: two keys of the series fall on the same point in time",
    ),
    "weibull std too long": (
        GOOD.replace('type = "fixed", mean = 3', 'type = "weibull", mean = 100, std = 300'),
        r"fleets\.servers\.lifetime\.std: value 300 above the maximum 200 yr",
    ),
    "string for number": (GOOD.replace("mass = 100", 'mass = "heavy"'), r"fleets\.servers\.mass: expected a number"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_one_line_exit_2_nothing_written(case: str, tmp_path: Path):
    text, pattern = BAD_CASES[case]
    path = _bad(tmp_path, text)
    out_file = tmp_path / "out.nc"
    out = ewaste("run", str(path), "--out", str(out_file))
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert str(path) in lines[0]
    assert re.search(pattern, lines[0]), lines[0]
    assert not out_file.exists() and not list(tmp_path.glob(".*.part"))


def test_missing_and_unreadable_files(tmp_path: Path):
    out = ewaste("run", str(tmp_path / "nope.toml"))
    assert out.returncode == 2 and "nope.toml: file not found" in out.stderr
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    out = ewaste("validate", str(binary))
    assert out.returncode == 2 and "bin.toml" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_netcdf_that_is_not_a_grid(tmp_path: Path):
    other = tmp_path / "other.nc"
    xr.Dataset({"x": ("t", np.arange(3.0))}).to_netcdf(other)
    out = ewaste("run", str(other))
    assert out.returncode == 2 and "other.nc: start_year: not a scenario grid" in out.stderr
    junk = tmp_path / "junk.nc"
    junk.write_text("not netcdf")
    out = ewaste("run", str(junk))
    assert out.returncode == 2 and "junk.nc: not a readable NetCDF file" in out.stderr
    table = tmp_path / "q.csv"
    table.write_text("fleet,value\n")
    out = ewaste("summary", str(table))
    assert out.returncode == 2 and "q.csv: a table for spreadsheets; results are read back from .nc" in out.stderr


def test_netcdf_grid_with_wrong_units_and_dims(good: Path, tmp_path: Path):
    grid_nc = tmp_path / "grid.nc"
    assert ewaste("grid", str(good), "-o", str(grid_nc)).returncode == 0
    with xr.open_dataset(grid_nc) as g:
        grid = g.load()
    bad = grid.copy()
    bad["mass"].attrs["units"] = "furlong"
    bad.to_netcdf(tmp_path / "units.nc")
    out = ewaste("run", str(tmp_path / "units.nc"))
    assert out.returncode == 2 and "units.nc: fleets.*.mass: units 'furlong' not accepted" in out.stderr
    bad = grid.copy()
    bad["collection_rate"] = grid["mass"].copy(data=np.full(grid["mass"].shape, 0.5)).assign_attrs(units="1")
    bad.to_netcdf(tmp_path / "dims.nc")
    out = ewaste("run", str(tmp_path / "dims.nc"))
    assert out.returncode == 2 and "dimension 'fleet'" in out.stderr


def test_unit_conversion_in_netcdf_grid(good: Path, tmp_path: Path):
    """A grid saved with mass in t runs as if given in kg."""
    grid_nc = tmp_path / "grid.nc"
    assert ewaste("grid", str(good), "-o", str(grid_nc)).returncode == 0
    with xr.open_dataset(grid_nc) as g:
        grid = g.load()
    grid["mass"] = (grid["mass"] / 1000).assign_attrs(units="t", long_name="mass")
    grid.to_netcdf(tmp_path / "t.nc")
    out_nc = tmp_path / "res.nc"
    assert ewaste("run", str(tmp_path / "t.nc"), "-o", str(out_nc), "-q").returncode == 0
    with xr.open_dataset(out_nc) as res:
        assert float(res["ewaste_generated_annual"].sel(year=2023).sum()) == pytest.approx(10.0)


def test_readme_example_is_a_valid_scenario(tmp_path: Path):
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    path = tmp_path / "readme.toml"
    path.write_text("\n".join(line[3:] if line.startswith("   ") else line for line in block.splitlines()))
    out = ewaste("run", str(path))
    assert out.returncode == 0, out.stderr
    assert "6 sweep points" in out.stdout


def test_sweep_labels_are_in_canonical_units(tmp_path: Path):
    from ewaste import load_grid

    path = _bad(tmp_path, GOOD.replace("mass = 100", 'mass = { values = [287.6, 315], units = "lb" }'))
    grid = load_grid(path)
    labels = grid["servers_mass"].values
    np.testing.assert_allclose(labels, [287.6 * 0.45359237, 315 * 0.45359237])
    np.testing.assert_allclose(grid["mass"].sel(fleet="servers").values, labels)


def test_default_target_year_after_2030(tmp_path: Path):
    path = _bad(
        tmp_path,
        GOOD.replace("start_year = 2020", "start_year = 2031")
        .replace("end_year = 2025", "end_year = 2040")
        .replace("{ 2020 = 100, 2025 = 400 }", "{ 2031 = 100, 2040 = 400 }"),
    )
    out = ewaste("run", str(path))
    assert out.returncode == 0, out.stderr
    assert "E-waste in 2031" in out.stdout  # the default target: 2030, or the nearest modelled year


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        ({"start_year": "abc"}, "start_year: expected a year"),
        ({"target_year": 2040}, "target_year: must be a year between"),
        ({"step": "quarter"}, "time: time coordinate does not match"),
    ],
)
def test_netcdf_grid_with_broken_attributes(good: Path, tmp_path: Path, edit: dict, pattern: str):
    grid_nc = tmp_path / "grid.nc"
    assert ewaste("grid", str(good), "-o", str(grid_nc)).returncode == 0
    with xr.open_dataset(grid_nc) as g:
        grid = g.load()
    grid.attrs.update(edit)
    grid.to_netcdf(tmp_path / "broken.nc")
    out = ewaste("run", str(tmp_path / "broken.nc"))
    assert out.returncode == 2 and pattern in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_unwritable_output_and_wrong_grid_suffix(good: Path, tmp_path: Path):
    out = ewaste("run", str(good), "-o", "/proc/ewaste-results.nc")
    assert out.returncode == 2 and "cannot write here" in out.stderr
    out = ewaste("grid", str(good), "-o", str(tmp_path / "grid.csv"))
    assert out.returncode == 2 and "use a .nc file name" in out.stderr and not (tmp_path / "grid.csv").exists()


def test_output_files_follow_the_umask(good: Path, tmp_path: Path):
    nc = tmp_path / "r.nc"
    assert ewaste("run", str(good), "-o", str(nc), "-q").returncode == 0
    umask = os.umask(0)
    os.umask(umask)
    assert nc.stat().st_mode & 0o777 == 0o666 & ~umask


def test_evaluate_validates_an_edited_grid(good: Path):
    from ewaste import evaluate, load_grid
    from ewaste.errors import InputError

    grid = load_grid(good)
    grid["collection_rate"] = xr.DataArray(1.5, attrs={"units": "1"})
    with pytest.raises(InputError, match="collection_rate: value 1.5 above the maximum 1"):
        evaluate(grid)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (GOOD.replace('driver = "stock"\n', ""), r"fleets\.servers\.driver: required: one of"),
        (GOOD.replace("mass = 100", "mass = { value = 1, values = [1, 2] }"), r"fleets\.servers\.mass: give either"),
        (GOOD.replace("[fleets.servers]", '[fleets."my servers"]'), r"fleets\.my servers: a fleet name is"),
    ],
)
def test_more_malformed_scenarios(tmp_path: Path, text: str, pattern: str):
    out = ewaste("validate", str(_bad(tmp_path, text)))
    assert out.returncode == 2 and re.search(pattern, out.stderr), out.stderr


def test_quantiles_are_taken_in_increasing_order_once_each():
    from ewaste.cli.commands import _shares

    assert _shares(None, None, "0.9, 0.1,0.9") == [0.1, 0.9]
