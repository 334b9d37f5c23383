"""Disclosure tables (GRI 306, ESRS E5-5, ESRS E1-5): values against a hand computation, the identities
total = reuse + recycling + other recovery + disposal and hazardous + non-hazardous = total exactly in
every table, the files written, and bad input refused with one line and nothing written.

Expected values are computed here from the scenario's inputs (docs/model.md's formulas), not read
from ewaste's output.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import ewaste
from ewaste.cli import main
from ewaste.outputs.disclosure import apportion, disclosure_table
from ewaste.outputs.disclosure_data import (
    DISPOSAL,
    SOURCES,
    default_grid_mix,
    disposal_routes,
    hazardous,
    parse_grid_mix,
    waste_codes,
)
from ewaste.pipeline import results_of

# A fleet that retires exactly 1,000 units of 100 kg a year from 2022 on (inflow 1,000/yr, fixed life 2 yr).
SMALL = """
[scenario]
name = "small"
start_year = 2020
end_year = 2030

[dimensions]
rate = ["none", "half", "most"]

[fleets.servers]
driver = "inflow"
inflow = 1000
lifetime = { type = "fixed", mean = 2 }
mass = 100
power = 1
utilisation = 1.0
composition = { steel = 0.5, circuit_boards = 0.1 }
pcb_metal_content = { Au = 155, Cu = 155000 }

[recycling]
collection_rate = { dim = "rate", values = [0.0, 0.5, 0.8] }

[energy]
pue = 1.5
"""
RATES = {"none": 0.0, "half": 0.5, "most": 0.8}
UNITS, MASS_T = 1000, 0.1  # retired per year, t per unit
SHARES = {"steel": 0.5, "circuit_boards": 0.1, "other": 0.4}
# default yields (ewaste/data/recycling.toml, docs/sources.md): steel 0.9 x 1.0; Au 0.256 x 0.95; Cu 0.6 x 0.95
YIELD = {"steel": 0.9 * 1.0, "Au": 0.256 * 0.95, "Cu": 0.6 * 0.95}
CONTENT = {"Au": 155, "Cu": 155000}  # g per t of board
KG = 0.0015  # t: a field is a sum of a few parts, each rounded to the kilogram


def hand(rate: float) -> dict[str, float]:
    """The year's figures for collection rate `rate`, by docs/model.md's formulas (t)."""
    generated = UNITS * MASS_T
    material = {m: generated * s for m, s in SHARES.items()}
    metals = {y: material["circuit_boards"] * c * 1e-6 for y, c in CONTENT.items()}
    recovered = {
        "steel": material["steel"] * rate * YIELD["steel"],
        "circuit_boards": sum(metals[y] * rate * YIELD[y] for y in metals),  # the board's rest yields 0
        "other": 0.0,
    }
    not_collected = {m: v * (1 - rate) for m, v in material.items()}
    losses = {m: material[m] * rate - recovered[m] for m in material}
    shares = disposal_routes()["processing_losses"][0]
    out = {
        "generated": generated,
        "recycling": sum(recovered.values()),
        "not_collected": sum(not_collected.values()),
        "losses": sum(losses.values()),
        "boards_recycling": recovered["circuit_boards"],
        "boards_disposed": material["circuit_boards"] - recovered["circuit_boards"],
        "boards_not_collected": not_collected["circuit_boards"],
        "boards_losses": losses["circuit_boards"],
    }
    out.update({f"material_{m}": v for m, v in material.items()})
    out.update({f"metal_{y}_kg": v * 1000 for y, v in metals.items()})
    out.update({f"losses_{op}": out["losses"] * shares[op] for op in DISPOSAL})
    return out


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, xr.Dataset]:
    path = tmp_path_factory.mktemp("small") / "small.toml"
    path.write_text(SMALL, encoding="utf-8")
    return path, ewaste.evaluate(ewaste.load_grid(str(path)))


def fields(table: pd.DataFrame) -> dict[str, object]:
    assert table["field_id"].is_unique, "one table (one sweep point) expected"
    return dict(zip(table["field_id"], table["value"], strict=True))


@pytest.mark.parametrize("label", ["half", "most"])
def test_gri_306_equals_the_hand_computation(small, label: str):
    want = hand(RATES[label])
    got = fields(disclosure_table(small[1], "gri-306", 2025, point={"rate": label}))
    assert got["waste_generated_t"] == pytest.approx(want["generated"], abs=KG)
    for m in SHARES:
        assert got[f"waste_generated_by_composition_t[{m}]"] == pytest.approx(want[f"material_{m}"], abs=KG)
    assert got["diverted_t"] == pytest.approx(want["recycling"], abs=KG)
    assert got["diverted_haz_recycling_t"] == pytest.approx(want["recycling"], abs=KG)  # whole units: 16 02 13*
    assert got["diverted_by_composition_t[circuit_boards]"] == pytest.approx(want["boards_recycling"], abs=KG)
    assert got["disposal_t"] == pytest.approx(want["not_collected"] + want["losses"], abs=KG)
    assert got["disposal_haz_other_t"] == pytest.approx(want["not_collected"] + want["losses_other"], abs=KG)
    for op in ("incin_er", "incin_no_er", "landfill"):
        assert got[f"disposal_haz_{op}_t"] == pytest.approx(want[f"losses_{op}"], abs=KG)
    assert got["fate_unknown_t"] == pytest.approx(want["not_collected"], abs=KG)
    assert got["waste_generated_haz_t"] == pytest.approx(want["generated"], abs=KG)
    assert got["waste_generated_nonhaz_t"] == 0
    assert got["diverted_haz_prep_reuse_t"] == got["diverted_haz_other_recovery_t"] == 0
    assert got["waste_board_metals_kg[Au]"] == pytest.approx(want["metal_Au_kg"], abs=1e-3)
    assert got["waste_board_metals_kg[Cu]"] == pytest.approx(want["metal_Cu_kg"], abs=1e-3)
    assert "estimated with a model" in got["waste_context_note"].lower()


def test_fraction_basis_classifies_each_material(small):
    want = hand(0.5)
    got = fields(disclosure_table(small[1], "gri-306", 2025, point={"rate": "half"}, basis="fraction"))
    assert hazardous(waste_codes()["fraction"]["circuit_boards"].value)
    assert not hazardous(waste_codes()["fraction"]["steel"].value)
    assert got["waste_generated_haz_t"] == pytest.approx(want["material_circuit_boards"], abs=KG)
    assert got["diverted_haz_recycling_t"] == pytest.approx(want["boards_recycling"], abs=KG)
    assert got["diverted_nonhaz_recycling_t"] == pytest.approx(want["recycling"] - want["boards_recycling"], abs=KG)
    boards_other = (
        want["boards_not_collected"] + want["boards_losses"] * disposal_routes()["processing_losses"][0]["other"]
    )
    assert got["disposal_haz_other_t"] == pytest.approx(boards_other, abs=KG)
    assert got["disposal_haz_landfill_t"] == pytest.approx(want["boards_losses"] * 0.5, abs=KG)


def test_esrs_e5_equals_the_hand_computation(small):
    want = hand(0.8)
    got = fields(disclosure_table(small[1], "esrs-e5", 2025, point={"rate": "most"}))
    assert got["waste_total_t"] == pytest.approx(want["generated"], abs=KG)
    assert got["non_recycled_t"] == pytest.approx(want["generated"] - want["recycling"], abs=KG)
    assert got["non_recycled_pct"] == pytest.approx(100 * (1 - want["recycling"] / want["generated"]), abs=0.006)
    incineration = want["losses_incin_er"] + want["losses_incin_no_er"]
    assert got["disposal_haz_incineration_t"] == pytest.approx(incineration, abs=KG)
    assert got["hazardous_waste_t"] == pytest.approx(want["generated"], abs=KG)
    assert got["radioactive_waste_t"] == 0
    assert got["waste_materials_t[steel]"] == pytest.approx(want["material_steel"], abs=KG)


def test_e_waste_not_collected_never_counts_as_recycled(small):
    got = fields(disclosure_table(small[1], "esrs-e5", 2025, point={"rate": "none"}))
    assert got["diverted_haz_recycling_t"] == got["diverted_nonhaz_recycling_t"] == 0
    assert got["non_recycled_pct"] == 100
    assert got["fate_unknown_t"] == got["disposal_haz_other_t"] == pytest.approx(100, abs=KG)


def test_esrs_e1_splits_the_energy_by_the_grid_mix(small):
    # steady state: 1,000 units/yr x 2 yr in service on average x 1 kW x 1.5 (PUE) x 8,760 h (docs/model.md)
    mwh = UNITS * 2 * 1.0 * 1.5 * 8760 / 1000
    mix = parse_grid_mix("fossil=0.5,nuclear=0.2,renewable=0.3")
    got = fields(disclosure_table(small[1], "esrs-e1", 2025, point={"rate": "half"}, grid_mix=mix))
    assert got["energy_total_mwh"] == pytest.approx(mwh, abs=1e-3)
    for source, share in mix.shares.items():
        assert got[f"energy_{source}_mwh"] == pytest.approx(mwh * share, abs=1e-3)
        assert got[f"energy_share_{source}_pct"] == pytest.approx(100 * share, abs=0.006)
    assert got["renewable_purchased_mwh"] == got["energy_renewable_mwh"]
    assert "location-based" in got["energy_methodology_note"]


def test_the_default_grid_mix_is_sourced_and_sums_to_one():
    mix = default_grid_mix()
    assert sum(mix.shares.values()) == pytest.approx(1, abs=1e-9)
    assert all(mix.entries[s].source and mix.entries[s].status in {"V", "V2", "D", "R", "ASSUMED"} for s in SOURCES)


def test_every_package_entry_has_a_source_and_status():
    codes = waste_codes()
    for entry in [*codes["equipment"].values(), *codes["fraction"].values()]:
        assert entry.value in codes["codes"], f"{entry.value} is not in [codes]"
        assert entry.source and entry.status in {"V", "V2", "D", "R", "ASSUMED"}
    for code, item in codes["codes"].items():
        assert item["description"] and item["source"] and item["status"], code
    for shares, source, status in disposal_routes().values():
        assert sum(shares.values()) == pytest.approx(1) and source and status


# ---- the identities, exactly, in every table --------------------------------------------------------
def exact(table: pd.DataFrame) -> dict[str, Decimal]:
    """Field -> value as an exact decimal (the shortest decimal of the float, as the CSV writes it)."""
    return {
        f: Decimal(repr(v))
        for f, v, u in zip(table.field_id, table.value, table.unit, strict=True)
        if u in ("t", "MWh")
    }


def check_identities(standard: str, v: dict[str, Decimal]) -> None:
    """Every identity of a table, exact in decimals: totals are the sums of their parts."""
    s = lambda names: sum((v[n] for n in names), Decimal(0))  # noqa: E731
    both = ("haz", "nonhaz")
    recovery = ("prep_reuse", "recycling", "other_recovery")
    if standard == "esrs-e1":
        assert v["energy_total_mwh"] == s(f"energy_{x}_mwh" for x in SOURCES)
        parts = ("renewable_fuel_mwh", "renewable_purchased_mwh", "renewable_selfgen_nonfuel_mwh")
        assert v["energy_renewable_mwh"] == s(parts)
        return
    total = v["waste_generated_t" if standard == "gri-306" else "waste_total_t"]
    diverted = s(f"diverted_{h}_{op}_t" for h in both for op in recovery)
    reused = s(f"diverted_{h}_prep_reuse_t" for h in both)
    recycled = s(f"diverted_{h}_recycling_t" for h in both)
    other_recovery = s(f"diverted_{h}_other_recovery_t" for h in both)
    materials = [f for f in v if f.startswith(("waste_generated_by_composition_t[", "waste_materials_t["))]
    assert total == s(materials)
    if standard == "gri-306":
        disposed = s(f"disposal_{h}_{op}_t" for h in both for op in DISPOSAL)
        assert v["disposal_t"] == disposed and v["diverted_t"] == diverted
        assert total == v["waste_generated_haz_t"] + v["waste_generated_nonhaz_t"]
        for h in both:
            for op in (*recovery, *DISPOSAL):
                kind = "diverted" if op in recovery else "disposal"
                assert v[f"{kind}_{h}_{op}_t"] == v[f"{kind}_{h}_{op}_onsite_t"] + v[f"{kind}_{h}_{op}_offsite_t"]
        for kind, whole in (("diverted", diverted), ("disposal", disposed)):
            assert whole == s(f for f in v if f.startswith(f"{kind}_by_composition_t["))
    else:
        disposed = s(f"disposal_{h}_{op}_t" for h in both for op in ("incineration", "landfill", "other"))
        assert v["disposal_total_t"] == disposed
        assert v["non_recycled_t"] == total - recycled
        haz = s(f"diverted_haz_{op}_t" for op in recovery) + s(
            f"disposal_haz_{op}_t" for op in ("incineration", "landfill", "other")
        )
        assert v["hazardous_waste_t"] == haz
    assert total == reused + recycled + other_recovery + disposed  # EFRAG Q&A 400: the identity of E5-5


LABELLED = ("standard", "year", "field_id", "reference", "description", "unit", "value")


def tables_by_point(table: pd.DataFrame):
    """(labels of the point as a dict, its table) for each sweep point of a long table."""
    labels = [c for c in table.columns if c not in LABELLED]
    if not labels:
        return [({}, table)]
    return [
        (dict(zip(labels, k if isinstance(k, tuple) else (k,), strict=True)), one)
        for k, one in table.groupby(labels, sort=False)
    ]


@pytest.mark.parametrize("standard", ["gri-306", "esrs-e5", "esrs-e1"])
@pytest.mark.parametrize("basis", ["equipment", "fraction"])
def test_identities_hold_exactly_in_every_year_and_sweep_point(standard: str, basis: str):
    cases = (
        ("refresh-cycle", range(2020, 2031)),
        ("default-sweep", (2024, 2030)),
        ("cascade", (2030,)),
        ("wang2024", (2027,)),
    )
    for name, years in cases:
        results = results_of(name)
        for year in years:
            table = disclosure_table(results, standard, year, basis=basis)
            generated = results["ewaste_generated_annual"].sum("fleet").sel(year=year)
            points = tables_by_point(table)
            for label, one in points:
                check_identities(standard, exact(one))
                if standard != "esrs-e1":  # the total is the model's e-waste generated, to the kilogram
                    field = "waste_generated_t" if standard == "gri-306" else "waste_total_t"
                    model = generated.sel({d: v for d, v in label.items() if d in generated.dims})
                    assert fields(one)[field] == pytest.approx(float(model), abs=5e-4)
            dims = [d for d in table.columns if d not in LABELLED]
            assert len(points) == int(np.prod([results.sizes[d] for d in dims]))


def test_draws_report_the_median_draw_whose_figures_add_up():
    results = results_of("default")
    table = disclosure_table(results, "esrs-e5", 2030)
    got = fields(table.drop(columns="draw"))
    check_identities("esrs-e5", exact(table))
    totals = np.sort(results["ewaste_generated_annual"].sum("fleet").sel(year=2030).values)
    median = totals[int(np.ceil(len(totals) / 2)) - 1]  # nearest rank, the lower middle of 1,000
    assert got["waste_total_t"] == pytest.approx(median, abs=5e-4)
    draw = int(table["draw"].iloc[0])
    drawn = float(results["ewaste_generated_annual"].sum("fleet").sel(year=2030, draw=draw))
    assert drawn == median
    asked = disclosure_table(results, "esrs-e1", 2030, draw=7)
    assert set(asked["draw"]) == {7}
    check_identities("esrs-e1", exact(asked))


def with_reuse(results: xr.Dataset, tonnes: float, inside: bool) -> xr.Dataset:
    """Results with a variable `reused` of `tonnes` a year per fleet, part of the e-waste balance (e-waste
    generated = recovered + disposed + reused) or outside it (units passed on, not discarded)."""
    results = results.copy()
    reused = xr.full_like(results["ewaste_generated_annual"], tonnes).assign_attrs(units="t/yr")
    results["reused_annual"] = reused
    if inside:
        results["ewaste_generated_annual"] = results["ewaste_generated_annual"] + reused
    return results


def test_a_reuse_variable_in_the_e_waste_balance_is_preparation_for_reuse(small):
    table = disclosure_table(with_reuse(small[1], 5.0, inside=True), "esrs-e5", 2025, point={"rate": "half"})
    got = fields(table)
    assert got["diverted_haz_prep_reuse_t"] == pytest.approx(5.0, abs=KG)
    assert got["waste_total_t"] == pytest.approx(105.0, abs=KG)
    assert "reused_not_waste_t" not in got
    assert "result variable reused, part of the e-waste balance" in got["waste_methodology_note"]
    check_identities("esrs-e5", exact(table))


def test_units_passed_on_without_being_discarded_are_not_waste(small):
    """A cascade's `reused` (docs/outputs.md: not e-waste) would count a server twice: now, and when it
    leaves the last fleet. It is reported apart, outside the totals."""
    table = disclosure_table(with_reuse(small[1], 5.0, inside=False), "gri-306", 2025, point={"rate": "half"})
    got = fields(table)
    assert got["diverted_haz_prep_reuse_t"] == 0
    assert got["waste_generated_t"] == pytest.approx(100.0, abs=KG)
    assert got["reused_not_waste_t"] == pytest.approx(5.0, abs=KG)
    assert "outside the e-waste balance" in got["waste_context_note"]
    check_identities("gri-306", exact(table))


def test_summary_results_report_the_target_year_only(small):
    summary = ewaste.evaluate(ewaste.load_grid(str(small[0])), summary=True)
    numbers = lambda table: {f: v for f, v in fields(table).items() if not f.endswith("_note")}  # noqa: E731
    full = numbers(disclosure_table(small[1], "gri-306", 2030, point={"rate": "half"}))
    assert numbers(disclosure_table(summary, "gri-306", 2030, point={"rate": "half"})) == full
    with pytest.raises(ewaste.errors.InputError, match="target year 2030 only"):
        disclosure_table(summary, "gri-306", 2025)


def test_quantile_results_are_refused(small):
    with pytest.raises(ewaste.errors.InputError, match="quantiles"):
        disclosure_table(small[1].expand_dims(quantile=[0.5]), "gri-306", 2025)


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 40)), elements=st.floats(0, 1e9)))
def test_apportion_keeps_each_part_within_one_and_the_total_exact(values):
    rounded = apportion(values)
    assert (np.abs(rounded - values) < 1).all()
    assert (rounded.sum(axis=1) == np.round(values.sum(axis=1))).all()


# ---- the command --------------------------------------------------------------------------------------
def ewaste_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ewaste.cli", *args], capture_output=True, text=True, cwd=cwd)


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """The command in this process (faster than a subprocess): exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["ewaste", *args])
    # main() logs to the standard error it finds; keep it off pytest's captured streams, which close
    monkeypatch.setattr(logging.getLogger("ewaste"), "handlers", [logging.NullHandler()])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_command_writes_csv_xlsx_and_json(tmp_path: Path):
    for name in ("t.csv", "t.xlsx", "t.json"):
        done = ewaste_cli(
            "disclose", "refresh-cycle", "--standard", "esrs-e5", "--year", "2029", "-o", name, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
    table = pd.read_csv(tmp_path / "t.csv", dtype={"value": str})
    for _, one in tables_by_point(table):
        check_identities(
            "esrs-e5", {f: Decimal(x) for f, x, u in zip(one.field_id, one.value, one.unit, strict=True) if u == "t"}
        )
    sheet = openpyxl.load_workbook(tmp_path / "t.xlsx").active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == tuple(table.columns)
    assert all(isinstance(r[-1], int | float) for r in rows[1:] if r[-2] != "text")
    document = json.loads((tmp_path / "t.json").read_text())
    assert document["standard"] == "esrs-e5" and len(document["points"]) == 6
    assert {f["field_id"] for f in document["points"][0]["fields"]} == set(table.field_id)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary or claim file left"


def test_the_command_prints_one_point_and_refuses_too_many(monkeypatch, capsys):
    code, out, _ = run_main(
        monkeypatch,
        capsys,
        "disclose",
        "default-sweep",
        "--standard",
        "gri-306",
        "--point",
        "growth=central",
        "--point",
        "refresh_cycle=4",
        "--point",
        "recycling_collection_rate=0.6",
        "--point",
        "metal_content=high",
    )
    assert code == 0 and "waste_generated_t" in out and "GRI 306-4-b-ii" in out
    code, out, err = run_main(monkeypatch, capsys, "disclose", "default-sweep", "--standard", "gri-306")
    assert code == 2 and err.startswith("ewaste: error: default-sweep: --point: 162 sweep points")


BAD = {
    "unknown standard": (["--standard", "gri-305"], "ewaste: error: refresh-cycle: --standard: unknown standard"),
    "year outside": (
        ["--standard", "gri-306", "--year", "2035"],
        "ewaste: error: refresh-cycle: --year: 2035 is outside",
    ),
    "mix not summing to 1": (
        ["--standard", "esrs-e1", "--grid-mix", "fossil=0.5,nuclear=0.2,renewable=0.2"],
        "ewaste: error: refresh-cycle: --grid-mix: the shares sum to 0.9",
    ),
    "negative share": (
        ["--standard", "esrs-e1", "--grid-mix", "fossil=1.2,nuclear=-0.2,renewable=0"],
        "ewaste: error: refresh-cycle: --grid-mix: nuclear:",
    ),
    "unknown point": (
        ["--standard", "gri-306", "--point", "refresh_cycle=7"],
        "ewaste: error: refresh-cycle: --point: refresh_cycle has no label '7'",
    ),
    "missing folder": (
        ["--standard", "gri-306", "-o", "no/such/t.csv"],
        "ewaste: error: no/such/t.csv: the folder does not exist",
    ),
    "unknown format": (["--standard", "gri-306", "-o", "t.txt"], "ewaste: error: t.txt: unknown format '.txt'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_exit_2_and_nothing_written(case: str, tmp_path: Path, monkeypatch, capsys):
    args, line = BAD[case]
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(monkeypatch, capsys, "disclose", "refresh-cycle", *args)
    assert (code, err.count("\n")) == (2, 1) and err.startswith(line), err
    assert not list(tmp_path.rglob("*"))


def test_an_existing_file_is_kept_without_overwrite(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.csv").write_text("mine\n")
    code, _, err = run_main(monkeypatch, capsys, "disclose", "refresh-cycle", "--standard", "gri-306", "-o", "t.csv")
    assert code == 2 and "exists; pass --overwrite" in err and (tmp_path / "t.csv").read_text() == "mine\n"
    code, _, err = run_main(
        monkeypatch, capsys, "disclose", "refresh-cycle", "--standard", "gri-306", "-o", "t.csv", "--overwrite"
    )
    assert code == 0, err
    assert pd.read_csv(tmp_path / "t.csv").field_id.iloc[0] == "waste_generated_t"


def test_results_of_another_version_are_refused(small, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    old = small[1].copy()
    old.attrs["ewaste_version"] = "0.0.1"
    old.to_netcdf(tmp_path / "old.nc")
    code, _, err = run_main(monkeypatch, capsys, "disclose", "old.nc", "--standard", "gri-306", "-o", "t.csv")
    assert (
        code == 2
        and err.startswith("ewaste: error: old.nc: results of ewaste 0.0.1")
        and not (tmp_path / "t.csv").exists()
    )


def test_a_folder_that_takes_no_files_is_refused(tmp_path: Path, monkeypatch, capsys):
    """As a read-only folder answers (EACCES), also where the tests run as root, whom chmod does not stop."""
    import ewaste.files  # noqa: PLC0415

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(ewaste.files.tempfile, "mkstemp", refuse)
    code, _, err = run_main(
        monkeypatch, capsys, "disclose", "refresh-cycle", "--standard", "gri-306", "-o", str(tmp_path / "t.csv")
    )
    assert code == 2 and err.strip() == f"ewaste: error: {tmp_path / 't.csv'}: cannot write here (Permission denied)"
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused(tmp_path: Path, monkeypatch, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, _, err = run_main(
            monkeypatch, capsys, "disclose", "refresh-cycle", "--standard", "gri-306", "-o", str(folder / "t.csv")
        )
        assert code == 2 and "cannot write here" in err and not list(folder.iterdir())
    finally:
        folder.chmod(0o755)


def test_the_error_lines_quoted_in_the_docs_are_printed(small, tmp_path: Path, monkeypatch, capsys):
    text = (Path(__file__).resolve().parents[1] / "docs" / "disclosure.md").read_text(encoding="utf-8")
    quoted = text.split("## Bad input", 1)[1].split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    monkeypatch.chdir(tmp_path)
    old = small[1].copy()
    old.attrs["ewaste_version"] = "0.0.1"
    old.to_netcdf(tmp_path / "old.nc")
    (tmp_path / "t.csv").write_text("mine\n")
    cases = [["refresh-cycle", *args] for args, _ in BAD.values()]
    cases += [["old.nc", "--standard", "gri-306"], ["refresh-cycle", "--standard", "gri-306", "-o", "t.csv"]]
    printed = set()
    for args in cases:
        code, _, err = run_main(monkeypatch, capsys, "disclose", *args)
        assert code == 2
        printed.add(err.strip())
    assert [line for line in quoted if line not in printed] == []


def test_a_zarr_store_with_draws_gives_the_table_of_the_scenario(tmp_path: Path):
    """Results streamed to Zarr (read back lazily, with dask) give the same numbers as the scenario in memory."""
    scenario = tmp_path / "drawn.toml"
    drawn = SMALL.replace("mass = 100", 'mass = { dist = "triangular", min = 90, mode = 100, max = 110 }')
    scenario.write_text(drawn + "\n[uncertainty]\ndraws = 21\nseed = 1\n", encoding="utf-8")
    ewaste.run(str(scenario), tmp_path / "r.zarr")
    numbers = lambda table: table[table.unit != "text"].reset_index(drop=True)  # noqa: E731
    stored = disclosure_table(results_of(tmp_path / "r.zarr"), "gri-306", 2025)
    assert set(stored.columns) >= {"rate", "draw"} and len(set(stored["draw"])) == 1  # the rate does not move the total
    pd.testing.assert_frame_equal(numbers(stored), numbers(disclosure_table(results_of(scenario), "gri-306", 2025)))
    for _, one in tables_by_point(stored):
        check_identities("gri-306", exact(one))
        assert fields(one)["waste_generated_t"] == pytest.approx(UNITS * MASS_T, rel=0.1)
