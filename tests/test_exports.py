"""Exports an analyst files: CSV (with its sidecar), Excel and IAMC files written by `ewaste run` and
read back with pandas, openpyxl and pyam.

Expected values are worked by hand from HAND: inflow-driven fleets with fixed lifetimes, so that every
unit put in service retires exactly `mean` years later and e-waste per year = units x mass; electricity
= units in service x kW x 8,760 h x PUE 1.56 (the default); or they are the NetCDF file's own values,
read with xarray.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import xarray as xr

import ewaste
from ewaste.errors import InputError
from ewaste.outputs import writers, xlsx
from ewaste.version import __version__

HAND = """
[scenario]
name = "hand"
start_year = 2020
end_year = 2030

[fleets.servers]
driver = "inflow"
inflow = 100                       # units a year, each retired 3 years later
lifetime = { type = "fixed", mean = 3 }
mass = 200
power = 10
composition = { steel = 0.5, copper = 0.3, circuit_boards = 0.2 }
pcb_metal_content = { Au = 100 }

[fleets.switches]
driver = "inflow"
inflow = 50                        # retired 2 years later
lifetime = { type = "fixed", mean = 2 }
mass = 10
power = 1
composition = { steel = 0.6, copper = 0.4 }

[recycling]
collection_rate = [0.5, 0.25]
preprocessing_yield = { steel = 0.9 }
endprocessing_yield = { steel = 1.0 }
"""
RATES = (0.5, 0.25)
GENERATED = {"servers": 100 * 0.200, "switches": 50 * 0.010}  # t/yr once the first cohort retires
FIRST = {"servers": 2023, "switches": 2022}  # the first year of retirements
IN_SERVICE = {"servers": 300, "switches": 100}  # units, once the first cohort retires
KW = {"servers": 10, "switches": 1}
PUE, GRID = 1.56, 475.0  # defaults: Uptime Institute 2024; IEA via CodeCarbon (g/kWh)


def twh(units: float, kw: float) -> float:
    """TWh in a year: units x kW x 8,760 h x PUE, kWh -> TWh."""
    return units * kw * 8760 * PUE / 1e9


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ewaste.cli", *args], capture_output=True, text=True, cwd=cwd)


RUNS = {  # file -> options of `ewaste run hand.toml -q`
    "r.nc": [],
    "r.csv": [],
    "y.csv": ["--year", "2030"],
    "s.csv": ["--summary"],
    "c.csv": ["--comments"],
    "r.xlsx": [],
    "iamc.csv": ["--format", "iamc"],
    "iamc.xlsx": ["--format", "iamc"],
}


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    """A folder with hand.toml and the files RUNS names, each written by `ewaste run`."""
    folder = tmp_path_factory.mktemp("exports")
    (folder / "hand.toml").write_text(HAND)
    for name, options in RUNS.items():
        done = cli("run", "hand.toml", "-q", "-o", name, *options, cwd=folder)
        assert done.returncode == 0, f"{name}: {done.stderr}"
    return folder


@pytest.fixture(scope="module")
def nc(out: Path) -> xr.Dataset:
    with xr.open_dataset(out / "r.nc") as ds:
        return ds.load()


def pyam_module():
    """pyam, which the test extra installs (the package itself never imports it)."""
    try:
        import pyam  # noqa: PLC0415
    except Exception as exc:  # noqa: BLE001 - pyam 3.3 imports ixmp4, which breaks on SQLAlchemy 2.1
        pytest.fail(f"pyam does not import ({exc.__class__.__name__}: {exc}): the test extra needs SQLAlchemy<2.1")
    return pyam


# -- CSV -----------------------------------------------------------------------------------------


def test_csv_opens_as_it_is_with_hand_worked_values(out: Path):
    text = (out / "r.csv").read_text()
    assert text.startswith("variable,fleet,recycling_collection_rate,capacity_unit,material,metal,year,annual,")
    table = pd.read_csv(out / "r.csv")  # no comment lines to skip
    assert list(table.columns) == [
        "variable", "fleet", "recycling_collection_rate", "capacity_unit", "material", "metal", "year",
        "annual", "annual_units", "cumulative", "cumulative_units",
    ]  # fmt: skip
    generated = table[table["variable"] == "ewaste_generated"]
    for fleet, tonnes in GENERATED.items():
        rows = generated[generated["fleet"] == fleet].set_index("year")
        expected = [tonnes if year >= FIRST[fleet] else 0.0 for year in range(2020, 2031)]
        assert rows["annual"].tolist() == pytest.approx(expected, abs=1e-12)
        assert rows.loc[2030, "cumulative"] == pytest.approx(tonnes * (2031 - FIRST[fleet]))
        assert set(rows["annual_units"]) == {"t/yr"} and set(rows["cumulative_units"]) == {"t"}
        assert rows["recycling_collection_rate"].isna().all()  # e-waste does not depend on the rate
    steel = table[(table["variable"] == "recovered_by_material") & (table["material"] == "steel")]
    got = steel[(steel["fleet"] == "servers") & (steel["year"] == 2030)].set_index("recycling_collection_rate")
    for rate in RATES:  # 20 t x 50 % steel x collection x 0.9 pre-processing x 1.0 end-processing
        assert got.loc[rate, "annual"] == pytest.approx(20 * 0.5 * rate * 0.9)
    stock = table[(table["variable"] == "stock_units") & (table["year"] == 2030)].set_index("fleet")
    assert stock["annual"].to_dict() == IN_SERVICE and stock["cumulative"].isna().all()


def test_csv_has_no_representation_noise(out: Path):
    numbers = re.findall(r"(?<![\w.])-?\d+\.\d+(?:e[-+]?\d+)?", (out / "r.csv").read_text())
    digits = [len(re.sub(r"e.*|[-.]", "", n).lstrip("0")) for n in numbers]
    assert numbers and max(digits) <= 12
    # in service: 50, 150, 250 (cohorts enter mid-year), then 300 for 8 years = 2,850 unit-years
    row = f"\nenergy,servers,,unit,,,2030,{twh(300, 10):.12g},TWh/yr,{twh(2850, 10):.12g},TWh\n"
    assert row in (out / "r.csv").read_text()


def test_csv_values_are_the_netcdf_values(out: Path, nc: xr.Dataset):
    """Each quantity's rows are its annual and cumulative arrays, element for element."""
    table = pd.read_csv(out / "r.csv")
    for name, rows in table.groupby("variable"):
        annual = nc[f"{name}_annual"]
        assert len(rows) == annual.size
        assert rows["annual"].sum() == pytest.approx(float(annual.sum()), rel=1e-11)
        if f"{name}_cumulative" in nc:
            assert rows["cumulative"].sum() == pytest.approx(float(nc[f"{name}_cumulative"].sum()), rel=1e-11)


def test_csv_sidecar_holds_the_provenance(out: Path, nc: xr.Dataset):
    side = json.loads((out / "r.csv.json").read_text())
    assert side["title"] == "hand" and side["scenario_file"] == "hand.toml"
    assert side["scenario_sha256"] == hashlib.sha256((out / "hand.toml").read_bytes()).hexdigest()
    assert side["ewaste_version"] == __version__ and side["target_year"] == nc.attrs["target_year"]
    assert side["defaults_used"] == json.loads(nc.attrs["defaults_used"])  # JSON, not JSON in a string
    assert side["defaults_used"]["pue"]["value"] == PUE
    assert set(side) == set(nc.attrs)


def test_csv_of_one_year(out: Path):
    full, one = pd.read_csv(out / "r.csv"), pd.read_csv(out / "y.csv")
    assert set(one["year"]) == {2030}
    pd.testing.assert_frame_equal(one, full[full["year"] == 2030].reset_index(drop=True))


def test_csv_of_a_summary_is_the_target_year(out: Path, nc: xr.Dataset):
    table = pd.read_csv(out / "s.csv")
    assert set(table["year"]) == {2030}
    rows = table[table["variable"] == "ewaste_generated"].set_index("fleet")
    for fleet, tonnes in GENERATED.items():
        assert rows.loc[fleet, "annual"] == pytest.approx(tonnes)
        assert rows.loc[fleet, "cumulative"] == pytest.approx(
            float(nc["ewaste_generated_cumulative_target"].sel(fleet=fleet))
        )


def test_csv_with_comments(out: Path):
    text = (out / "c.csv").read_text()
    assert text.startswith("# title: hand\n") and "\n# scenario_sha256: " in text
    assert not (out / "c.csv.json").exists()
    pd.testing.assert_frame_equal(pd.read_csv(out / "c.csv", comment="#"), pd.read_csv(out / "r.csv"))


def test_csv_of_draws_reduced_to_quantiles(tmp_path: Path):
    """`--summary -o x.csv` of a scenario with draws (it failed with an internal error)."""
    for name in ("d.csv", "d.nc"):
        done = cli("run", "default", "--summary", "-q", "-o", name, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    with xr.open_dataset(tmp_path / "d.nc") as ds:
        target = ds["ewaste_generated_target"].load()
        mean = float(ds["ewaste_generated_target_mean"].sum())
    table = pd.read_csv(tmp_path / "d.csv")
    rows = table[table["variable"] == "ewaste_generated"].set_index("statistic")
    assert rows.index.tolist() == ["p5", "p50", "p95", "mean"] and set(rows["year"]) == {2030}
    for q, label in ((0.05, "p5"), (0.5, "p50"), (0.95, "p95")):
        assert rows.loc[label, "annual"] == pytest.approx(float(target.sel(quantile=q).sum()), rel=1e-11)
    assert rows.loc["mean", "annual"] == pytest.approx(mean, rel=1e-11)
    assert json.loads((tmp_path / "d.csv.json").read_text())["draws_reduced_to"].startswith("quantiles 0.05")


# -- Excel ---------------------------------------------------------------------------------------


def sheet_rows(ws) -> list[dict]:  # noqa: ANN001 - an openpyxl worksheet
    header = [c.value for c in ws[1]]
    return [dict(zip(header, row, strict=True)) for row in ws.iter_rows(min_row=2)]


def test_xlsx_sheets_with_units_and_numbers(out: Path):
    wb = openpyxl.load_workbook(out / "r.xlsx")
    assert wb.sheetnames == [
        "Annual", "Annual by material", "Annual by metal", "Target year", "Destinations",
        "Energy and emissions", "Inputs", "Defaults used", "Provenance",
    ]  # fmt: skip
    annual = sheet_rows(wb["Annual"])
    row = next(
        r
        for r in annual
        if r["fleet"].value == "servers" and r["year"].value == 2030 and r["recycling_collection_rate"].value == 0.5
    )
    for header, expected in (
        ("ewaste_generated (t/yr)", 20.0),
        ("ewaste_generated, cumulative (t)", 160.0),
        ("collected (t/yr)", 10.0),
        ("stock_units (unit)", 300.0),
        ("energy (TWh/yr)", twh(300, 10)),
        ("emissions (MtCO2e/yr)", twh(300, 10) * GRID * 1e-3),  # TWh x g/kWh = 1e9 kWh x g = 1e-3 Mt
    ):
        cell = row[header]
        assert cell.data_type == "n" and cell.value == pytest.approx(expected, rel=1e-12), header
    destinations = sheet_rows(wb["Destinations"])
    row = next(
        r
        for r in destinations
        if r["fleet"].value == "servers" and r["year"].value == 2030 and r["recycling_collection_rate"].value == 0.25
    )
    assert row["recovered steel (t/yr)"].value == pytest.approx(20 * 0.5 * 0.25 * 0.9)
    assert row["not_collected (t/yr)"].value == pytest.approx(15.0)
    balance = row["recovered (t/yr)"].value + row["processing_losses (t/yr)"].value + row["not_collected (t/yr)"].value
    assert balance == pytest.approx(row["ewaste_generated (t/yr)"].value)
    metals = sheet_rows(wb["Annual by metal"])
    gold = next(
        r
        for r in metals
        if r["fleet"].value == "servers" and r["year"].value == 2030 and r["recycling_collection_rate"].value == 0.5
    )
    assert gold["metal"].value == "Au" and gold["metal_in_ewaste (t/yr)"].value == pytest.approx(20 * 0.2 * 100e-6)
    target = sheet_rows(wb["Target year"])
    switches = next(r for r in target if r["fleet"].value == "switches" and r["recycling_collection_rate"].value == 0.5)
    assert switches["ewaste_generated, in 2030 (t/yr)"].value == pytest.approx(0.5)
    assert switches["ewaste_generated, 2020-2030 (t)"].value == pytest.approx(0.5 * 9)


def test_xlsx_inputs_defaults_and_provenance(out: Path, nc: xr.Dataset):
    wb = openpyxl.load_workbook(out / "r.xlsx")
    inputs = {r["parameter"].value: r for r in sheet_rows(wb["Inputs"])}
    mass = inputs["fleets.servers.mass"]
    assert mass["value"].data_type == "n" and mass["value"].value == 200 and mass["units"].value == "kg/unit"
    rate = inputs["recycling.collection_rate"]
    assert (rate["min"].value, rate["max"].value, rate["varies over"].value) == (0.25, 0.5, "recycling_collection_rate")
    assert inputs["fleets.servers.utilisation"]["default"].value == "yes"
    assert inputs["fleets.servers.utilisation"]["source"].value.startswith("full load")
    assert inputs["fleets.servers.inflow"]["value"].value == 100 and "fleets.servers.stock" not in inputs
    defaults = {(r["parameter"].value, r["where"].value): r for r in sheet_rows(wb["Defaults used"])}
    assert defaults[("pue", "all")]["value"].value == PUE and "Uptime" in defaults[("pue", "all")]["source"].value
    provenance = {r["attribute"].value: r["value"].value for r in sheet_rows(wb["Provenance"])}
    assert provenance["scenario_sha256"] == hashlib.sha256((out / "hand.toml").read_bytes()).hexdigest()
    assert json.loads(provenance["defaults_used"]) == json.loads(nc.attrs["defaults_used"])


def test_xlsx_over_the_row_limit_is_refused_whole(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(xlsx, "MAX_ROWS", 10)
    results = ewaste.evaluate(ewaste.load_grid(str(_hand(tmp_path))))
    with pytest.raises(InputError) as err:
        ewaste.write_results(results, tmp_path / "big.xlsx")
    assert str(err.value).startswith(f"{tmp_path / 'big.xlsx'}: --out: sheet 'Annual' would have ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hand.toml"]


# -- IAMC ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["iamc.csv", "iamc.xlsx"])
def test_iamc_round_trip_through_pyam(name: str, out: Path):
    pyam = pyam_module()
    df = pyam.IamDataFrame(out / name)
    if name.endswith(".csv"):
        written = pd.read_csv(out / name)
    else:
        written = pd.read_excel(out / name, sheet_name="data")
        assert df.meta["recycling_collection_rate"].sort_values().tolist() == [0.25, 0.5]
    assert list(written.columns) == ["model", "scenario", "region", "variable", "unit", "year", "value"]
    back = df.data.sort_values(["scenario", "variable", "year"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back, written.sort_values(["scenario", "variable", "year"]).reset_index(drop=True))
    assert df.model == [f"ewaste {__version__}"] and df.region == ["World"]
    assert df.scenario == ["hand (recycling_collection_rate=0.25)", "hand (recycling_collection_rate=0.5)"]

    def value(variable: str, rate: float = 0.5, year: int = 2030) -> float:
        got = df.filter(variable=variable, scenario=f"hand (recycling_collection_rate={rate:g})", year=year)
        [v] = got.data["value"].tolist()
        return v

    assert value("Waste|Electronic|Generated") == pytest.approx(20.5)
    assert value("Waste|Electronic|Generated", year=2022) == pytest.approx(0.5)  # switches only
    assert value("Waste|Electronic|servers|Generated") == pytest.approx(20.0)
    assert value("Waste|Electronic|Collected", rate=0.25) == pytest.approx(20.5 * 0.25)
    assert value("Waste|Electronic|Recovered|Steel") == pytest.approx((20 * 0.5 + 0.5 * 0.6) * 0.5 * 0.9)
    assert value("Waste|Electronic|Generated|Circuit Boards|Gold") == pytest.approx(20 * 0.2 * 100e-6)
    energy = twh(300, 10) + twh(100, 1)
    assert value("Final Energy|Electricity|AI Hardware") == pytest.approx(energy)
    assert value("Emissions|CO2|Use Phase") == pytest.approx(energy * GRID * 1e-3)
    assert value("AI Hardware|servers|In Service") == 300 and "AI Hardware|In Service" not in df.variable
    units = dict(zip(df.data["variable"], df.data["unit"], strict=True))
    assert (
        units["Emissions|CO2|Use Phase"] == "Mt CO2e/yr" and units["Final Energy|Electricity|AI Hardware"] == "TWh/yr"
    )
    # the hierarchy adds up: materials to the total, fleets to the total
    assert df.check_aggregate("Waste|Electronic|Generated") is None
    assert df.check_aggregate("Final Energy|Electricity|AI Hardware") is None
    fleets = ["Waste|Electronic|servers|Disposed", "Waste|Electronic|switches|Disposed"]
    assert df.check_aggregate("Waste|Electronic|Disposed", components=fleets) is None


def test_iamc_of_draws_names_each_statistic(tmp_path: Path):
    pyam = pyam_module()
    for name, options in (("d.nc", []), ("d.csv", ["--format", "iamc"])):
        done = cli("run", "default", "--summary", "-q", "-o", name, *options, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    with xr.open_dataset(tmp_path / "d.nc") as ds:
        energy = ds["energy_target"].sum("fleet").load()
        mean = float(ds["energy_target_mean"].sum())
    df = pyam.IamDataFrame(tmp_path / "d.csv")
    assert df.scenario == ["default"] and df.year == [2030]
    for q in (0.05, 0.5, 0.95):
        [v] = df.filter(variable=f"Final Energy|Electricity|AI Hardware|{q * 100:.1f}th Percentile").data["value"]
        assert v == pytest.approx(float(energy.sel(quantile=q)), rel=1e-11)
    [v] = df.filter(variable="Final Energy|Electricity|AI Hardware|Mean").data["value"]
    assert v == pytest.approx(mean, rel=1e-11)


def test_the_package_does_not_import_pyam():
    code = "import sys, ewaste.outputs.iamc, ewaste.outputs.writers; print('pyam' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


# -- bad input: one line, exit 2, nothing written -------------------------------------------------


def _hand(folder: Path) -> Path:
    path = folder / "hand.toml"
    path.write_text(HAND)
    return path


BAD = {
    "year outside": (
        ["-o", "x.csv", "--year", "2040"],
        "x.csv: --year: 2040 is not in the results, which hold the years 2020-2030",
    ),
    "year of a summary": (
        ["-o", "x.xlsx", "--summary", "--year", "2025"],
        "x.xlsx: --year: 2025 is not in the results, which hold only the target year 2030",
    ),
    "unknown suffix": (
        ["-o", "x.txt"],
        "x.txt: --out: unknown output format '.txt'; use one of .nc, .csv, .xlsx, .zarr",
    ),
    "unknown format": (["-o", "x.csv", "--format", "ipcc"], "x.csv: --format: unknown format 'ipcc'; use auto or iamc"),
    "iamc as netcdf": (["-o", "x.nc", "--format", "iamc"], "x.nc: --format: an IAMC table is written as .csv or .xlsx"),
    "year of a netcdf": (
        ["-o", "x.nc", "--year", "2030"],
        "x.nc: --year: a NetCDF or Zarr file holds every year; --year is for .csv and .xlsx",
    ),
    "comments in xlsx": (
        ["-o", "x.xlsx", "--comments"],
        "x.xlsx: --comments: '#' lines go only into a CSV in ewaste's layout",
    ),
    "missing folder": (["-o", "missing/x.csv"], "missing/x.csv: the folder does not exist"),
    "year without a file": (["--year", "2030"], "--year: applies to a table written with --out (.csv or .xlsx)"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_output_options(case: str, tmp_path: Path):
    _hand(tmp_path)
    args, message = BAD[case]
    done = cli("run", "hand.toml", *args, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [f"ewaste: error: {message}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hand.toml"]


def test_an_existing_sidecar_is_not_overwritten(tmp_path: Path):
    _hand(tmp_path)
    (tmp_path / "x.csv.json").write_text("mine")
    done = cli("run", "hand.toml", "-o", "x.csv", cwd=tmp_path)
    assert (
        done.returncode == 2
        and done.stderr.strip() == "ewaste: error: x.csv.json: exists; pass --overwrite to replace it"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hand.toml", "x.csv.json"]
    assert (tmp_path / "x.csv.json").read_text() == "mine"
    assert cli("run", "hand.toml", "-q", "-o", "x.csv", "--overwrite", cwd=tmp_path).returncode == 0
    assert json.loads((tmp_path / "x.csv.json").read_text())["title"] == "hand"


def test_a_failed_sidecar_leaves_neither_file(monkeypatch, tmp_path: Path):
    """The CSV and its sidecar are renamed into place together, or not at all."""
    results = ewaste.evaluate(ewaste.load_grid(str(_hand(tmp_path))))

    def full(results, tmp):  # noqa: ANN001
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writers, "_write_sidecar", full)
    with pytest.raises(InputError, match=r"x\.csv\.json: no space left on device"):
        ewaste.write_results(results, tmp_path / "x.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hand.toml"]


def test_read_only_folder(tmp_path: Path):
    """A folder that takes no files: a read-only file system (root passes permission bits)."""
    _hand(tmp_path)
    folder = tmp_path / "ro"
    folder.mkdir()
    run = [sys.executable, "-m", "ewaste.cli", "run", str(tmp_path / "hand.toml"), "-o", str(folder / "x.xlsx")]
    if os.geteuid() != 0:
        folder.chmod(0o555)
        done = subprocess.run(run, capture_output=True, text=True)
        folder.chmod(0o755)
    else:
        unshare = shutil.which("unshare")
        namespace = [unshare, "--user", "--map-root-user", "--mount"] if unshare else []
        probe = [*namespace, "mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(folder)]
        if not unshare or subprocess.run(probe, capture_output=True).returncode != 0:
            pytest.skip("no read-only folder here: running as root without a mount namespace")
        script = f"mount -t tmpfs -o ro tmpfs {folder} && exec " + " ".join(run)
        done = subprocess.run([*namespace, "sh", "-c", script], capture_output=True, text=True)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"ewaste: error: {folder / 'x.xlsx'}: cannot write here (")
    assert list(folder.iterdir()) == []
