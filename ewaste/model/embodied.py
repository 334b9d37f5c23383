"""Embodied emissions of a fleet, cohort by cohort: counted at purchase, and amortised straight-line
over the mean life the units serve, the rest at retirement (docs/finance.md). With [finance] they come
from the same (N, N, S) cohort accounts as the money (`finance.fleet_money`); without it from sums over
the cohorts held, in O(steps x points) memory (`Accounts.held_sum`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..engine.arrays import Backend
from .cohorts import Accounts, accounts
from .depreciation import book_share

# result -> (units, long name, kind)
EMBODIED = {
    "embodied_emissions": ("MtCO2e", "embodied emissions of the units put in service (counted at purchase)", "flow"),
    "embodied_emissions_amortised": (
        "MtCO2e",
        "embodied emissions amortised over the mean life the units serve, the rest at retirement",
        "flow",
    ),
}


def embodied_only(g: xr.Dataset, dt: float, be: Backend) -> dict[str, xr.DataArray]:
    """Embodied emissions of one fleet (a grid without the fleet dimension) per modelled step (time,
    sweep dims), in kgCO2e: at purchase (`embodied_purchase`) and amortised (`embodied_amortised`),
    without the (N, N, S) accounts; `be`: the backend the model ran with (`cohorts.accounts`)."""
    acc = accounts(g, (g["embodied"],), be)
    life = acc.mean_life(str(g["lifetime_type"].values), dt)
    per_cohort = acc.by_cohort(g["embodied"])
    age_end = acc.ages(g.attrs["age_convention"], dt)[1][0, :, 0]  # by lag

    def share(lags: np.ndarray, cohorts: np.ndarray) -> np.ndarray:
        return book_share("straight-line", age_end[lags, None], life[cohorts], 0.0)

    held = acc.held_sum(per_cohort, share, flat=bool((life == life[:1]).all()))
    return {name: acc.wrap(a) for name, a in embodied_emissions(acc, per_cohort, held).items()}


def embodied_emissions(acc: Accounts, per_cohort: np.ndarray, held: np.ndarray) -> dict[str, np.ndarray]:
    """(N, S) embodied emissions at purchase and amortised (`per_cohort`: (N, S) per unit of each cohort),
    from the emissions still to amortise on the units held at each step's end, `held`: H[m] = sum_k
    held[m, k] embodied[m - k] share_end[m, k] (straight-line over the mean life): what is amortised
    in step m (the charge on the units held at its start, and the rest on those retiring) is
    purchase[m] + H[m - 1] - H[m], since the units held at a step's start are those held at the
    previous step's end at the age they had then, plus the purchases at full value (`Accounts.start`,
    `Accounts.ages`). One sum over the cohorts instead of the charge's and the retirements'."""
    purchase = acc.units_in * per_cohort
    amortised = purchase - held
    amortised[1:] += held[:-1]
    return {"embodied_purchase": purchase, "embodied_amortised": amortised}
