"""Wang et al. (2024)'s Monte Carlo design, run through ewaste, against the deterministic run.

Run from the repository root: python tools/wang2024_monte_carlo.py [DRAWS] [SEED]

The design is the authors' (shared/data/wang2024/README.md, "Monte Carlo"): in every quarter,
independently, normal noise with relative sd 2 % on parameters per model N, training tokens D and
the per-GPU peak compute of both fleets, 5 % on users U; absolute sd 0.005 on the training
utilisation efficiency (0.33) and 0.01 on the inference one (0.46); one draw per iteration of
tokens per user per day k ~ N(1000, 100); no noise on models per quarter or sparsity. Demand and
per-server capacity are products of these, so each draw multiplies the bundled series:
R_train x (1+eN)(1+eD), R_infer x (1+eN)(1+eU) k/1000, P x (1+ep)(eff+d)/eff. The same N is
drawn for both fleets (one frontier model per quarter). Draws come from scipy.stats; the run is
the bundled wang2024 scenario's base case (chip normal, efficiency constant, users demo) under the
authors' replacement rule, every draw a point of a `draw` dimension.
"""

from __future__ import annotations

import sys

import numpy as np
import scipy.stats as st
import xarray as xr

import ewaste

BASE = {"chip": "normal", "efficiency": "constant", "users": "demo", "rule": "wang2024"}
EFFICIENCY = {"training": (0.33, 0.005), "inference": (0.46, 0.01)}  # mean, absolute sd


def monte_carlo_grid(draws: int = 1000, seed: int = 2024) -> tuple[xr.Dataset, xr.Dataset]:
    """The deterministic base grid and the grid of `draws` noisy copies (dims + draw)."""
    grid = ewaste.load_grid("wang2024").sel(BASE)
    quarters = grid.sizes["time"]
    rng = np.random.default_rng(seed)

    def noise(sd: float) -> np.ndarray:
        return st.norm(1.0, sd).rvs(size=(draws, quarters), random_state=rng)

    n, d, u = noise(0.02), noise(0.02), noise(0.05)
    k = st.norm(1000, 100).rvs(size=(draws, 1), random_state=rng) / 1000
    per_server = []
    for fleet in ("training", "inference"):
        mean, sd = EFFICIENCY[fleet]
        per_server.append(noise(0.02) * st.norm(mean, sd).rvs(size=(draws, quarters), random_state=rng) / mean)
    dims, fleets = ("fleet", "draw", "time"), {"fleet": grid.fleet}
    demand = xr.DataArray(np.stack([n * d, n * u * k]), dims=dims, coords=fleets)
    capacity = xr.DataArray(np.stack(per_server), dims=dims, coords=fleets)
    drawn = grid.assign(demand=grid["demand"] * demand, capacity_per_unit=grid["capacity_per_unit"] * capacity)
    return grid, drawn


def compare(draws: int = 1000, seed: int = 2024) -> xr.Dataset:
    """Deterministic value, Monte Carlo mean, p5 / p50 / p95 and the mean's standard error, per case.

    Figures: e-waste generated in 2030 and cumulative 2020-2030 (t, both fleets), units bought
    2020-2030 (inflow) and retired (outflow).
    """
    grid, drawn = monte_carlo_grid(draws, seed)
    names = {
        "ewaste_2030": "ewaste_generated_target",
        "ewaste_cumulative": "ewaste_generated_cumulative_target",
        "inflow_units": "inflow_units_cumulative_target",
        "outflow_units": "outflow_units_cumulative_target",
    }
    wanted = ["ewaste_generated", "inflow_units", "outflow_units"]
    det = ewaste.evaluate(grid, summary=True, outputs=wanted)
    mc = ewaste.evaluate(drawn, summary=True, outputs=wanted)
    rows = {}
    for label, name in names.items():
        a, b = det[name].sum("fleet"), mc[name].sum("fleet")
        q = b.quantile([0.05, 0.5, 0.95], "draw")
        rows[label] = xr.concat(
            [a, b.mean("draw"), b.std("draw") / np.sqrt(draws), *(q.sel(quantile=p, drop=True) for p in q["quantile"])],
            dim=xr.DataArray(["deterministic", "mean", "se_mean", "p5", "p50", "p95"], dims="stat"),
            coords="minimal",
            compat="override",
        )
    return xr.Dataset(rows)


def main() -> None:
    draws = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 2024
    table = compare(draws, seed)
    print(f"Wang et al. (2024) Monte Carlo design, {draws} draws, seed {seed}; Mt (e-waste) or million units")
    heads = ("determ.", "mean", "offset %", "+-2se %", "p5", "p50", "p95")
    print(f"{'case':13} {'figure':18} " + " ".join(f"{h:>8}" for h in heads))
    for case in table["case"].values:
        for label in table.data_vars:
            s = table[label].sel(case=case)
            val = {k: float(s.sel(stat=k)) / 1e6 for k in s["stat"].values}
            offset = 100 * (val["mean"] / val["deterministic"] - 1)
            band = 200 * val["se_mean"] / val["deterministic"]
            print(
                f"{case:13} {label:18} {val['deterministic']:8.3f} {val['mean']:8.3f} {offset:+9.3f} {band:8.3f}"
                f" {val['p5']:8.3f} {val['p50']:8.3f} {val['p95']:8.3f}"
            )


if __name__ == "__main__":
    main()
