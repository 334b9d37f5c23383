"""Units in service on average over each step (what energy uses), against closed forms and quadrature;
the float32 negative-inflow threshold; the circuit-board ledger."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
from conftest import evaluate_dict, run_engine

HOURS = 8760.0

# steady inflow I for long enough: the average in service is I x the mean life (Little's law)
LIFETIMES = {
    "fixed": ({"mean": 1.4}, 1.4),
    "normal": ({"mean": 3.0, "std": 0.9}, None),  # mean of the part at positive ages: computed below
    "foldednormal": ({"mean": 1.0, "std": 1.5}, None),
    "lognormal": ({"mean": 2.5, "std": 1.5}, 2.5),
    "weibull": ({"shape": 1.7, "scale": 3.5}, 3.5 * math.gamma(1 + 1 / 1.7)),
}


def positive_mean(kind: str, p: dict) -> float:
    """Mean life counting only ages >= 0 (units at negative ages of a normal leave at once)."""
    if kind == "normal":
        d = scipy.stats.norm(p["mean"], p["std"])
        return scipy.integrate.quad(d.sf, 0, np.inf)[0]
    if kind == "foldednormal":
        d = scipy.stats.foldnorm(p["mean"] / p["std"], scale=p["std"])
        return d.mean()
    return LIFETIMES[kind][1]


def survival(kind: str, p: dict):
    """S(a) from scipy.stats (independent of ewaste's closed forms), as a function of the age."""
    if kind == "fixed":
        return lambda a: float(a < p["mean"])
    if kind == "normal":
        d = scipy.stats.norm(p["mean"], p["std"])
    elif kind == "foldednormal":
        d = scipy.stats.foldnorm(p["mean"] / p["std"], scale=p["std"])
    elif kind == "lognormal":
        s2 = math.log1p((p["std"] / p["mean"]) ** 2)
        d = scipy.stats.lognorm(math.sqrt(s2), scale=p["mean"] * math.exp(-s2 / 2))
    else:
        d = scipy.stats.weibull_min(p["shape"], scale=p["scale"])
    return lambda a: float(d.sf(a))


@pytest.mark.parametrize("kind", sorted(LIFETIMES))
@pytest.mark.parametrize("convention", ["end", "middle"])
@pytest.mark.parametrize("dt", [1.0, 0.25, 1 / 12])
def test_steady_inflow_serves_inflow_times_mean_life(each_engine, kind, convention, dt):
    params, _ = LIFETIMES[kind]
    years = 60 if kind == "lognormal" else 30
    n = int(round(years / dt))
    rate = 1000.0  # units a year
    f = run_engine(kind, params, np.full(n, rate * dt), convention=convention, dt=dt)
    want = rate * positive_mean(kind, params)
    tol = 2e-4 if kind == "lognormal" else 1e-9  # the lognormal's tail beyond 60 years
    assert f.in_service[-1, 0] == pytest.approx(want, rel=tol)


@pytest.mark.parametrize("kind", sorted(LIFETIMES))
@pytest.mark.parametrize("convention", ["end", "middle"])
def test_average_over_a_step_is_the_integral_of_survival(kind, convention):
    """One cohort: its average in service in each step, by numerical integration over entry times
    (spread evenly over the step for 'middle', at its end for 'end') and service times."""
    params, _ = LIFETIMES[kind]
    dt, n = 0.5, 10
    sf = survival(kind, params)
    inflow = np.zeros(n)
    inflow[0] = 1.0
    got = run_engine(kind, params, inflow, convention=convention, dt=dt).in_service[:, 0]
    for k in range(n):
        lo, hi = k * dt, (k + 1) * dt
        if convention == "end":  # enters at dt; in service from then on
            want = scipy.integrate.quad(lambda t: sf(t - dt), max(lo, dt), hi)[0] / dt
            want = want if hi > dt else 0.0
        else:  # enters at u in [0, dt), evenly

            def inner(t):
                top = min(t, dt)
                jump = [t - params["mean"]] if kind == "fixed" and 0 < t - params["mean"] < top else None
                return scipy.integrate.quad(lambda u: sf(t - u), 0.0, top, points=jump)[0]

            want = scipy.integrate.quad(inner, lo, hi, limit=200)[0] / dt**2
        assert got[k] == pytest.approx(want, abs=1e-7), k


def test_issue_cases_energy_uses_the_average_in_service():
    """Annual steps, 'middle', 1000 units/yr, 1 kW, utilisation 1, PUE 1: fixed 0.4 yr serves 400
    units on average (0.003504 TWh/yr), not 0 at the end of the year; fixed 1.4 yr 1400 units
    (0.012264 TWh/yr), not 1000; quarterly steps with 0.4 yr 400, not 500."""
    for life, step, units in ((0.4, "year", 400.0), (1.4, "year", 1400.0), (0.4, "quarter", 400.0)):
        raw = {
            "scenario": {"start_year": 2020, "end_year": 2030, "step": step, "age_convention": "middle"},
            "fleets": {
                "s": {
                    "driver": "inflow",
                    "inflow": 1000,
                    "lifetime": {"type": "fixed", "mean": life},
                    "mass": 1,
                    "power": 1,
                    "utilisation": 1,
                }
            },
            "energy": {"pue": 1, "grid_intensity": 100},
        }
        res = evaluate_dict(raw).sel(fleet="s")
        assert float(res["in_service_units_annual"].sel(year=2030)) == pytest.approx(units, rel=1e-12)
        assert float(res["energy_target"]) == pytest.approx(units * HOURS * 1e-9, rel=1e-12)
        assert float(res["emissions_target"]) == pytest.approx(units * HOURS * 100 * 1e-12, rel=1e-12)
        stock_end = {(0.4, "year"): 0.0, (1.4, "year"): 1000.0, (0.4, "quarter"): 500.0}[(life, step)]
        assert float(res["stock_units_target"]) == pytest.approx(stock_end, abs=1e-9)  # kept as its own output


def test_first_year_of_a_short_life_by_hand():
    """Fixed 0.4 yr, 'middle', 1000 units bought evenly over 2020: in 2020 the average in service is
    1000 x (integral over t of min(t, 0.4)) = 1000 x (0.08 + 0.4 x 0.6) = 320, in 2021 the rest, 80."""
    f = run_engine("fixed", {"mean": 0.4}, [1000.0, 0.0, 0.0], convention="middle")
    assert f.in_service[:, 0] == pytest.approx([320.0, 80.0, 0.0], abs=1e-9)
    g = run_engine("fixed", {"mean": 0.4}, [1000.0, 0.0, 0.0], convention="end")
    assert g.in_service[:, 0] == pytest.approx([0.0, 400.0, 0.0], abs=1e-9)


def test_stock_driven_steady_state_serves_inflow_times_mean_life(each_engine):
    """A constant installed base: the inflow settles at stock / sum of survival, and the average in
    service at inflow x mean life (both conventions, quarterly steps)."""
    kind, params = "weibull", {"shape": 2.0, "scale": 3.0}
    dt, n = 0.25, 200
    for convention in ("end", "middle"):
        f = run_engine(kind, params, np.full(n, 5000.0), stock_driven=True, convention=convention, dt=dt)
        rate = f.inflow[-1, 0] / dt
        assert f.in_service[-1, 0] == pytest.approx(rate * 3.0 * math.gamma(1.5), rel=1e-9)


def test_correction_retires_early_over_the_step(each_engine):
    """Fixed 10 yr, 'end', stock 1000 then 400: the 600 retired early leave evenly over step 1, so
    on average 400 + 600 / 2 = 700 serve in it (the cohort entered at the end of step 0)."""
    f = run_engine("fixed", {"mean": 10.0}, [1000.0, 400.0, 400.0], stock_driven=True, convention="end")
    assert f.in_service[:, 0] == pytest.approx([0.0, 700.0, 400.0], abs=1e-9)
    assert f.outflow[:, 0] == pytest.approx([0.0, 600.0, 0.0], abs=1e-9)


FALLING = {
    "scenario": {"start_year": 2020, "end_year": 2030},
    "fleets": {
        "s": {
            "driver": "stock",
            "stock": {"2020": 1000, "2021": 400, "2022": 1000, "2030": 1e9, "interpolation": "log"},
            "lifetime": {"type": "fixed", "mean": 10},
            "mass": 1,
        }
    },
}


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_float32_sees_a_negative_inflow_next_to_a_much_larger_stock(precision):
    """1000 -> 400 units in 2021 (a stock growing to 1e9 by 2030): 600 retired early in 2021, one
    negative-inflow step, and the 400 left retire at 10 years, in 2030 - in float32 as in float64
    (the threshold scales with the stocks so far, and float32 outflows are summed retirements)."""
    import copy

    import ewaste
    from ewaste.engine import host
    from ewaste.inputs.scenario import scenario_to_grid
    from ewaste.inputs.validate import validate

    if not host.status()[0]:
        pytest.skip("float32 needs the compiled CPU engine")
    grid = validate(scenario_to_grid(copy.deepcopy(FALLING), "f.toml"), "f.toml")
    res = ewaste.evaluate(grid, backend="cpu", precision=precision).sel(fleet="s")
    out = res["outflow_units_annual"]
    assert float(out.sel(year=2021)) == pytest.approx(600.0, rel=1e-5)
    assert float(out.sel(year=2030)) == pytest.approx(400.0, rel=1e-5)
    assert float(res["ewaste_generated_annual"].sel(year=2021)) == pytest.approx(0.6, rel=1e-5)
    assert int(res["negative_inflow_steps"]) == 1


def test_float32_refused_where_it_cannot_keep_its_error(tmp_path):
    """1e9 units, then 100 with negative inflow allowed: the survivors (1e9) dwarf the stock kept, so
    float32's rounding (1e-7 of 1e9 = 100) is the size of the stock itself: exit 2, one line naming
    --precision; float64 runs."""
    import subprocess
    import sys

    from ewaste.engine import host

    if not host.status()[0]:
        pytest.skip("float32 needs the compiled CPU engine")
    path = tmp_path / "fall.toml"
    path.write_text(
        '[scenario]\nstart_year = 2020\nend_year = 2022\nnegative_inflow = "allow"\n'
        '[fleets.s]\ndriver = "stock"\nstock = { 2020 = 1e9, 2021 = 100, 2022 = 100 }\n'
        'lifetime = { type = "fixed", mean = 10 }\nmass = 1\n'
    )
    run = [sys.executable, "-m", "ewaste.cli", "run", str(path), "--backend", "cpu", "-q"]
    bad = subprocess.run([*run, "--precision", "float32"], capture_output=True, text=True)
    assert bad.returncode == 2, bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "--precision" in bad.stderr and "float64" in bad.stderr
    assert subprocess.run(run, capture_output=True, text=True).returncode == 0


@pytest.mark.parametrize(("shape", "scale"), [(0.7, 0.3), (2.0, 1.0), (4.0, 1.0), (4.4, 0.8), (8.0, 1.5), (30.0, 2.2)])
@pytest.mark.parametrize("convention", ["end", "middle"])
def test_weibull_average_from_flat_to_steep(each_engine, shape, scale, convention):
    """The Weibull's average over a step (Gauss-Legendre, exact on the first step and for shapes of
    4.5 and up) against adaptive quadrature of exp(-(a/scale)^shape), to 2e-9 of a cohort."""
    dt, n = 1.0, 12
    params = {"shape": shape, "scale": scale}
    inflow = np.zeros(n)
    inflow[0] = 1.0
    got = run_engine("weibull", params, inflow, convention=convention, dt=dt).in_service[:, 0]

    def sf(a):
        return math.exp(-((max(a, 0.0) / scale) ** shape))

    for k in range(n):
        if convention == "end":
            want = scipy.integrate.quad(sf, k - 1, k, points=[scale])[0] if k >= 1 else 0.0
        else:
            rise = scipy.integrate.quad(lambda a, k=k: sf(a) * (a - (k - 1)), max(k - 1, 0), k, points=[scale])[0]
            fall = scipy.integrate.quad(lambda a, k=k: sf(a) * (k + 1 - a), k, k + 1, points=[scale])[0]
            want = (rise if k >= 1 else 0.0) + fall
        assert got[k] == pytest.approx(want, abs=2e-9), k


@pytest.mark.parametrize(("shape", "scale"), [(0.35, 20.0), (1.3, 25.0), (3.0, 30.0), (9.0, 40.0), (40.0, 45.0)])
@pytest.mark.parametrize("convention", ["end", "middle"])
def test_weibull_average_by_bend(each_engine, shape, scale, convention):
    """The Weibull's step integrals in ln(age) with 4 to 8 Gauss-Legendre points by the step's bend,
    shape x ln((a + 1) / a) (lifetime.GL_TIERS): over 60 annual steps a curve passes through every
    tier, and each step stays within the tier's bound (4e-12 of a cohort up to a bend of 1, 6e-10 up
    to 2) of adaptive quadrature of exp(-(a/scale)^shape); the first step (exact: incomplete gamma
    functions, with no difference of two values near Gamma(s)) within 2e-15."""
    n = 60
    inflow = np.zeros(n)
    inflow[0] = 1.0
    got = run_engine("weibull", {"shape": shape, "scale": scale}, inflow, convention=convention).in_service[:, 0]

    def integral(f, lo, hi):
        return scipy.integrate.quad(f, lo, hi, epsabs=1e-15, epsrel=1e-13, limit=200)[0]

    def sf(a):
        return math.exp(-((a / scale) ** shape))

    def bound(a):  # the tier's bound for the step [a, a + 1]
        return 0.0 if a < 1 else 4e-12 if shape * math.log1p(1 / a) <= 1.0 else 6e-10

    errs = []
    for k in range(1, n):
        if convention == "end":
            want, tol = integral(sf, k - 1, k), bound(k - 1)
        else:
            rise = integral(lambda a, k=k: sf(a) * (a - (k - 1)), k - 1, k)
            fall = integral(lambda a, k=k: sf(a) * (k + 1 - a), k, k + 1)
            want, tol = rise + fall, 2 * bound(k - 1) + bound(k)
        errs.append((k, got[k] - want, tol))
    assert [e for e in errs if abs(e[1]) > e[2] + 2e-15] == []
