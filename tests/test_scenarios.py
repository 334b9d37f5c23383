"""The bundled scenario library and the hardware catalogue: every number sourced, every file runs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose

import ewaste
from ewaste.inputs import catalogue
from ewaste.inputs.catalogue import archetypes, recycling_yields

BUNDLED = sorted(catalogue.bundled())
STATUSES = {"V", "V2", "D", "R", "ASSUMED"}


def test_the_library_holds_what_the_issue_asks_for():
    assert {"default", "wang2024", "devries-gao-2026", "iea-2025-energy", "refresh-cycle", "recycling-levers"} <= set(
        BUNDLED
    )


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_scenario_runs_and_cites_its_sources(name: str):
    path = catalogue.bundled()[name]
    res = ewaste.evaluate(ewaste.load_grid(path))
    assert json.loads(res.attrs["sources"]), "a bundled scenario lists its sources"
    generated = res["ewaste_generated_target"]
    # every grid point makes e-waste; every fleet makes some somewhere (a second-life fleet holds
    # nothing at the points that switch its cascade off, as cascade.toml's `none` does)
    total = generated.sum("fleet") if "fleet" in generated.dims else generated
    assert float(total.min()) > 0
    if "fleet" in generated.dims:
        assert (generated.max([d for d in generated.dims if d != "fleet"]) > 0).all()
    # destinations close: generated = recovered + disposed, to rounding
    gen = res["ewaste_generated_cumulative_target"]
    total = res["recovered_cumulative_target"] + res["disposed_cumulative_target"]
    gen, total = xr.broadcast(gen, total)
    np.testing.assert_allclose(total.transpose(*gen.dims).values, gen.values, rtol=1e-9)
    if name.startswith("wang"):  # files carrying the authors' numbers keep their MIT notice
        assert "Permission is hereby granted, free of charge" in path.read_text()


def test_show_lists_parameters_with_sources():
    out = subprocess.run(
        [sys.executable, "-m", "ewaste.cli", "scenarios", "show", "default-sweep"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "NVIDIA DGX H100/H200 User Guide" in out.stdout and "Chancerel" in out.stdout
    assert "refresh_cycle" in out.stdout


def test_archetype_catalogue_every_value_has_source_and_status():
    cat = archetypes()
    assert {"dgx_a100", "dgx_h100", "dgx_b200", "gb200_nvl72", "hgx_8gpu"} <= set(cat["archetype"])
    for name, arch in cat["archetype"].items():
        for key in ("gpus", "mass", "power"):
            assert arch[key]["source"] and arch[key]["status"] in STATUSES, (name, key)
    for key in ("composition_data_centre", "composition_genai_server", "pcb_metals_data_centre"):
        assert cat[key]["source"] and cat[key]["status"] in STATUSES
    for key in ("composition_data_centre", "composition_genai_server"):
        assert sum(cat[key]["value"].values()) == pytest.approx(1.0, abs=1e-6)
    assert {"steel", "aluminium", "copper", "plastics", "circuit_boards", "batteries"} <= set(
        cat["composition_genai_server"]["value"]
    )
    assert {"Au", "Ag", "Pd", "Cu"} <= set(cat["pcb_metals_data_centre"]["value"])
    for stage in recycling_yields().values():
        for entry in stage.values():
            assert 0 <= entry["value"] <= 1 and entry["source"] and entry["status"] in STATUSES


def _servers(archetype: str) -> dict:
    return {
        "scenario": {"start_year": 2027, "end_year": 2027},
        "fleets": {
            "servers": {
                "archetype": archetype,
                "driver": "stock",
                "stock": 1.5e6,
                "lifetime": {"type": "fixed", "mean": 4},
            }
        },
        "energy": {"pue": 1.0},
    }


@pytest.mark.parametrize(("archetype", "twh"), [("dgx_a100", 85.4), ("dgx_h100", 134.0)])
def test_de_vries_2023_from_the_catalogue(archetype: str, twh: float):
    """1.5 M servers at 6.5 and 10.2 kW, full load, no PUE: de Vries (2023)'s 85.4 and 134.0 TWh/yr."""
    from ewaste.inputs.scenario import scenario_to_grid
    from ewaste.inputs.validate import validate

    res = ewaste.evaluate(validate(scenario_to_grid(_servers(archetype), "devries.toml"), "devries.toml"))
    assert float(res["energy_target"].sum()) == pytest.approx(twh, rel=1e-3)
    used = json.loads(res.attrs["parameter_sources"])
    assert "archetype" in used["fleets.servers.power"]


def test_iea_scenario_matches_the_iea_base_case():
    """The installed base is the IEA's yearly electricity / 105,936 kWh per server-year, keyed at
    mid-year: each year's energy is its average fleet x that figure. A log-linear path through the
    mid-year points averages over a year to within 2.5 % of them (the path bends at 2030 and flattens
    after 2035, where the IEA gives no more figures)."""
    res = ewaste.evaluate(ewaste.load_grid(catalogue.bundled()["iea-2025-energy"]))
    energy = res["energy_annual"].sum("fleet")
    average = res["in_service_units_annual"].sum("fleet")
    assert_allclose(energy.values, average.values * 10.2 * 0.76 * 1.56 * 8760 * 1e-9, rtol=1e-12)
    for year, twh in ((2024, 415), (2030, 945), (2035, 1200)):
        assert float(energy.sel(year=year).max()) == pytest.approx(twh, rel=2.5e-2)
    assert float(energy.sel(year=2024).max()) == pytest.approx(415, rel=1.5e-2)


def test_refresh_cycle_shorter_cycles_give_more_ewaste_same_energy():
    res = ewaste.evaluate(ewaste.load_grid(catalogue.bundled()["refresh-cycle"]))
    e = res["ewaste_generated_cumulative_target"].sum("fleet").values
    assert np.all(np.diff(e) < 0)  # refresh cycle 1 -> 6 years: less e-waste
    # the same installed base at the end of each year: the average in service over a year differs
    # only by how units enter and leave within it (evenly spread, 'middle'), by less than 0.5 %
    energy = res["energy_target"].sum("fleet").values
    np.testing.assert_allclose(energy, energy[0], rtol=5e-3)


def test_recycling_levers_raise_recovery_not_generation():
    res = ewaste.evaluate(ewaste.load_grid(catalogue.bundled()["recycling-levers"]))
    total = res.sum("fleet")
    gen = total["ewaste_generated_target"].values
    np.testing.assert_allclose(gen, gen.flat[0], rtol=1e-12)
    rec = total["recovered_target"].sel(preprocessing="measured_2009")
    assert np.all(np.diff(rec.values) > 0)  # collection 22 % -> 80 %
    gold = total["metal_recovered_cumulative_target"].sel(metal="Au", collection="world_2022")
    assert float(gold.sel(preprocessing="boards_removed")) > 2 * float(gold.sel(preprocessing="measured_2009"))


def test_named_composition_with_batteries_and_archetype_metals():
    from ewaste.inputs.scenario import scenario_to_grid
    from ewaste.inputs.validate import validate

    raw = {
        "fleets": {
            "s": {
                "archetype": "gb200_nvl72",
                "composition": "genai_server",
                "driver": "inflow",
                "inflow": 100,
                "lifetime": {"type": "fixed", "mean": 3},
            }
        }
    }
    res = ewaste.evaluate(validate(scenario_to_grid(raw, "x.toml"), "x.toml")).sel(fleet="s")
    tonnes = 100 * 1.360  # 100 racks a year retire from 2023 on, 1,360 kg each
    by_material = res["ewaste_by_material_target"]
    assert float(by_material.sum()) == pytest.approx(tonnes, rel=1e-12)
    assert float(by_material.sel(material="batteries")) == pytest.approx(0.10 * tonnes, rel=1e-12)
    boards = 0.30 * tonnes
    assert float(res["metal_in_ewaste_target"].sel(metal="Cu")) == pytest.approx(boards * 0.155, rel=1e-12)
    assert "genai_server" not in json.loads(res.attrs["parameter_sources"])  # sources name the references
    assert "Wang" in json.loads(res.attrs["parameter_sources"])["fleets.s.composition"]
