"""The cohort stock-flow engine: pure array functions on NumPy or CuPy.

Shapes: N steps (inflow-history steps first, then the modelled steps), S scenarios (any grid
point, flattened), K cohort attributes. Arrays may have size 1 on the scenario axis where a value is
the same for every scenario. Memory is O(K * N * S): survival is evaluated one step (row) at a
time and never stored as an N x N x S table.

Bookkeeping (see docs/model.md): stocks at the end of a step, flows during it;
sf[m, c] = S(age(m, c)) with age(m, c) = (m - c + offset) * dt, offset 0 ("end") or 0.5 ("middle").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .arrays import Backend
from .lifetime import AGE_CONVENTIONS, average_survival, survival, tabulated_average, tabulated_survival

NEGATIVE_INFLOW_POLICIES = ("correct", "allow")
REPLACEMENT_RULES = ("balanced", "wang2024")
MIN_FIRST_STEP_SURVIVAL = 1e-3  # below this, solving for the inflow amplifies rounding by 1/sf[m,m]
NOISE = 1e-12  # a negative inflow this small, relative to the largest stock so far, is rounding
LOCAL_FLOOR = 1e-6  # a step's stock is checked relative to itself, or to this share of the largest so far


@dataclass
class SurvivalRows:
    """Rows sf[m, 0..m] of the survival table of one set of scenarios, computed on demand.

    `params` holds (N, S) arrays, one row per cohort (size 1 on either axis broadcasts). For a
    tabulated lifetime `params["cumulative"]` is (L, S) or, varying by cohort, (N, L, S).
    """

    kind: str
    params: dict[str, Any]
    n_steps: int
    dt: float
    convention: str
    be: Backend

    def __post_init__(self) -> None:
        self._age_steps = self.be.xp.arange(self.n_steps, dtype=self.be.xp.float64)
        self._invariant = self._cohort_invariant()
        self._table = None
        self._average_table = None

    @property
    def _by_age(self) -> Any:
        """Survival by age (N, S) when it does not change by cohort, else None; computed on first use."""
        if self._table is None and self._invariant:
            first = {k: v[:1] if self.kind != "tabulated" else v for k, v in self.params.items()}
            self._table = self._evaluate(self._age_steps[:, None], first)
        return self._table

    @property
    def invariant(self) -> bool:
        """Whether survival is the same for every cohort (then `at_lag` and the tables by age exist)."""
        return self._invariant

    def at_lag(self, k: int) -> Any:
        """(1, S) survival k steps after entry where it does not change by cohort (sf[m, m - k]), else
        None; evaluated for that lag alone unless the whole table is already at hand."""
        if not self._invariant:
            return None
        if self._table is not None:
            return self._table[k : k + 1]
        first = {name: v[:1] if self.kind != "tabulated" else v for name, v in self.params.items()}
        return self._evaluate(self.be.xp.full((1, 1), float(k)), first)

    @property
    def _average_by_age(self) -> Any:
        """Average survival over each step by lag (N, S) when it does not change by cohort, else None."""
        if self._average_table is None and self._invariant:
            first = {k: v[:1] if self.kind != "tabulated" else v for k, v in self.params.items()}
            self._average_table = self._average(self._age_steps[:, None], first)
        return self._average_table

    def _average(self, lag: Any, p: dict[str, Any]) -> Any:
        """Share of a cohort in service on average over the step `lag` steps after entry (a column)."""
        lag = lag.astype(int)
        if self.kind == "tabulated":
            return tabulated_average(lag, p["cumulative"], self.convention, self.be)
        return average_survival(self.kind, lag, p, self.dt, self.convention, self.be)

    def average_row(self, m: int) -> Any:
        """a[m, c] for c = 0..m, shape (m + 1, S): the share of cohort c in service on average over
        step m (lifetime.average_survival); sum_c x[c] a[m, c] is the average stock over the step."""
        if self._average_by_age is not None:
            return self._average_by_age[m::-1]
        xp = self.be.xp
        lag = (m - self._age_steps[: m + 1]).astype(int)
        if self.kind == "tabulated":  # a table per cohort: (N, L, S)
            cum = self.params["cumulative"]
            if cum.shape[0] == 1:
                return self._average(lag[:, None], {"cumulative": cum[0]})
            rows = xp.arange(m + 1)
            last = cum.shape[1] - 1
            now = xp.maximum(1.0 - cum[rows, xp.minimum(lag, last)], 0.0)
            before = xp.maximum(1.0 - cum[rows, xp.minimum(xp.maximum(lag - 1, 0), last)], 0.0)
            return xp.where((lag >= 1)[:, None], 0.5 * (before + now), AGE_CONVENTIONS[self.convention] * now)
        p = {k: v[: m + 1] if v.shape[0] > 1 else v for k, v in self.params.items()}
        return self._average(lag[:, None], p)

    def _cohort_invariant(self) -> bool:
        if self.kind == "tabulated":
            return self.params["cumulative"].ndim == 2
        return all(v.shape[0] == 1 for v in self.params.values())

    def _evaluate(self, lag: Any, p: dict[str, Any]) -> Any:
        """Survival after `lag` steps (a column, lag axis first) for parameters `p`."""
        if self.kind == "tabulated":
            return tabulated_survival(lag.astype(int), p["cumulative"], self.be)
        age = (lag + AGE_CONVENTIONS[self.convention]) * self.dt
        return survival(self.kind, age, p, self.be)

    def row(self, m: int) -> Any:
        """sf[m, c] for c = 0..m, shape (m + 1, S)."""
        if self._by_age is not None:
            return self._by_age[m::-1]
        xp = self.be.xp
        cohorts = slice(0, m + 1)
        lag = m - self._age_steps[cohorts]
        if self.kind == "tabulated":
            cum = self.params["cumulative"]
            if cum.shape[0] == 1:
                return tabulated_survival(lag[:, None].astype(int), cum[0], self.be)
            idx = xp.minimum(lag.astype(int), cum.shape[1] - 1)
            return xp.maximum(1.0 - cum[xp.arange(m + 1), idx], 0.0)
        p = {k: v[cohorts] if v.shape[0] > 1 else v for k, v in self.params.items()}
        return self._evaluate(lag[:, None], p)

    def diagonal_min(self) -> float:
        """Smallest sf[m, m] over all cohorts and scenarios (the share that survives its first step)."""
        if self._by_age is not None:
            return float(self._by_age[0].min())
        if self.kind == "tabulated":
            return float((1.0 - self.params["cumulative"][:, 0]).min())
        return float(self._evaluate(self.be.xp.zeros((1, 1)), self.params).min())


@dataclass
class CohortFlows:
    """What the recursion returns."""

    inflow: Any  # (N, S) driver units put in service in each step
    stock: Any  # (N, S) driver units in service at the end of each step
    outflow: Any  # (N, S) driver units retired in each step
    in_service: Any  # (N, S) driver units in service on average over each step
    attr_stock: Any  # (K, N, S) sum over cohorts of x[c] * sf[m, c] * a[k, c]; None without attributes
    attr_outflow: Any  # (K, N, S) the same for the outflow; None without attributes
    attr_in_service: Any  # (K, N, S) the same for the average in service; None without attributes
    negative_inflow_steps: Any  # (S,) steps in which the stock-driven inflow came out negative
    stock_error: Any = None  # (S,) stock-driven: largest |stock - given| over the step's own stock (floored)


def solve(
    driver: Any,
    stock_driven: bool,
    rows: SurvivalRows,
    attributes: Any = None,
    n_history: int = 0,
    negative_inflow: str = "correct",
    installed_base: bool = False,
    averages: bool = True,
) -> CohortFlows:
    """Run the cohort recursion over N steps.

    driver: (N, S) inflow per step (inflow-driven, and every history step) or stock at the end
        of the step (stock-driven), in driver units (units, or capacity for capacity-driven fleets).
    attributes: optional (K, N, S) cohort attributes per driver unit (units per unit of capacity,
        mass, power, ... that change by cohort); their stocks and outflows are summed by cohort.
    n_history: the first steps, whose inflow is given even in a stock-driven run.
    negative_inflow: "correct" (ODYM's correction: inflow 0, every cohort retired early by the
        same share, persisting) or "allow" (negative inflow returned as it is, as ODYM and flodym
        do by default).

    installed_base: the first step's cohort is the installed base a run starts from (stock-driven,
        no history): it serves that whole step, so the step's average in service is its stock.
    averages: compute the average in service (in_service, attr_in_service); False leaves them None
        and skips the integrals of survival over each step that they need.

    Stock-driven steps solve x[m] = (s[m] - sum_{c<m} sf[m,c] x[c]) / sf[m,m]. The outflow of a
    step is what left the stock: o[m] = s[m-1] + i[m] - s[m] (s[m-1] before any correction). The
    average in service over step m is sum_c x[c] a[m, c] (`SurvivalRows.average_row`); cohorts
    retired early by the correction leave evenly over the step, so half of them count.
    """
    xp = rows.be.xp
    n, s = driver.shape[0], _width(driver, attributes, rows)
    if stock_driven:
        require_first_step(rows.diagonal_min())
    x = xp.zeros((n, s))  # cohort sizes, scaled by any early-retirement correction
    entered = xp.zeros((n, s))  # what entered service in each step
    stock, outflow, in_service = xp.zeros((n, s)), xp.zeros((n, s)), xp.zeros((n, s))
    k = 0 if attributes is None else attributes.shape[0]
    attr = {name: xp.zeros((k, n, s)) for name in ("stock", "outflow", "in_service")}
    negative = xp.zeros(s, dtype=xp.int64)
    error = xp.zeros(s)
    seen = xp.zeros(s)  # the largest stock so far: what rounding in the cohorts still in service scales with
    for m in range(n):
        row = rows.row(m)
        avg = rows.average_row(m) if averages else None
        seen = xp.maximum(seen, xp.abs(driver[m]))
        # survivors of earlier cohorts at the end of step m, and on average over it (einsum: no temporaries)
        old_total = xp.einsum("cs,cs->s", x[:m], row[:m]) if m else xp.zeros(s)
        old_average = xp.einsum("cs,cs->s", x[:m], avg[:m]) if m and averages else xp.zeros(s)
        keep = None
        if stock_driven and m >= n_history:
            new = (driver[m] - old_total) / row[m]
            # rounding, on the scale of the values at hand (stocks up to this step, not later ones)
            noise = NOISE * xp.maximum(seen, xp.abs(old_total))
            neg = new * row[m] < -noise  # negative beyond rounding counts as negative inflow
            if bool(neg.any()):
                negative += neg
                if negative_inflow == "correct":
                    keep = xp.where(neg, driver[m] / xp.where(neg, old_total, 1.0), 1.0)
                    new = xp.where(neg, 0.0, new)
        else:
            new = driver[m] + xp.zeros(s)
        # the cohorts retired early by the correction leave evenly over the step: half of them serve
        early = 1.0 if keep is None else keep
        half = 1.0 if keep is None else 0.5 * (1.0 + keep)
        x[m] = new
        entered[m] = new
        stock[m] = old_total * early + new * row[m]
        if averages:
            first = row[m] if m == 0 and installed_base else avg[m]
            in_service[m] = old_average * half + new * first
        outflow[m] = (stock[m - 1] if m else 0.0) + new - stock[m]
        if stock_driven and m >= n_history:  # the stock reached, against the step's own
            scale = xp.maximum(xp.maximum(xp.abs(driver[m]), LOCAL_FLOOR * seen), 1e-300)
            error = xp.maximum(error, xp.abs(stock[m] - driver[m]) / scale)
        if k:
            a = attributes[:, : m + 1]
            for name, share, scale in (("stock", row, early), ("in_service", avg, half))[: 1 + averages]:
                attr[name][:, m] = xp.einsum("cs,cs,kcs->ks", x[:m], share[:m], a[:, :m]) * scale
                attr[name][:, m] += new * (first if name == "in_service" else share[m]) * a[:, m]
            attr["outflow"][:, m] = (attr["stock"][:, m - 1] if m else 0.0) + new * a[:, m] - attr["stock"][:, m]
        if keep is not None:
            x[:m] *= keep
    return CohortFlows(
        inflow=entered,
        stock=stock,
        outflow=outflow,
        in_service=in_service if averages else None,
        attr_stock=attr["stock"] if k else None,
        attr_outflow=attr["outflow"] if k else None,
        attr_in_service=attr["in_service"] if k and averages else None,
        negative_inflow_steps=negative,
        stock_error=error,
    )


def reduce_flows(flows: CohortFlows, weights: Any, last: int, xp: Any) -> CohortFlows:
    """Flows with the step axis replaced by three values: weights[0] @ v, weights[1] @ v, v[last].

    weights: (2, N) per step (e.g. 1 in the target year, and 1 up to it); the attributes become
    (K, 3, S). What the compiled CPU engine computes in summary mode, without the trajectories.
    """

    def red(a: Any) -> Any:
        return xp.concatenate([xp.einsum("tn,...ns->...ts", weights, a), a[..., last : last + 1, :]], axis=-2)

    def opt(a: Any) -> Any:
        return None if a is None else red(a)

    return CohortFlows(
        inflow=red(flows.inflow),
        stock=red(flows.stock),
        outflow=red(flows.outflow),
        in_service=opt(flows.in_service),
        attr_stock=opt(flows.attr_stock),
        attr_outflow=opt(flows.attr_outflow),
        attr_in_service=opt(flows.attr_in_service),
        negative_inflow_steps=flows.negative_inflow_steps,
        stock_error=flows.stock_error,
    )


def wang2024_inflow(demand: Any, per_unit: Any, retire_share: Any, xp: Any) -> Any:
    """Units put in service under the replacement rule of Wang et al. (2024)'s released code.

    demand: (N, S) capacity required; per_unit: (N, S) capacity of a unit entering in each step;
    retire_share: (W + 1, S) share of a cohort retired `lag` steps after entering (lag 0 first).
    In[0] = ceil(D[0] / P[0]); for t >= 1
        Out[t] = sum_{lag=1..min(t, W)} retire_share[lag] * In[t - lag]
        In[t]  = ceil((D[t] - D[t-1] + sum_{k=t-min(t,W)+1..t} P[k] * Out[k]) / P[t])
    i.e. retired capacity, valued at the capacity of the step it retires in, is bought back in
    each of the W steps after (a moving sum), and new units are whole. This re-buys capacity
    several times over, so the fleet grows past demand (see docs/model.md).
    """
    n, s = demand.shape[0], max(demand.shape[1], per_unit.shape[1], retire_share.shape[1])
    window = retire_share.shape[0] - 1
    units_in = xp.zeros((n, s))
    retired_capacity = xp.zeros((n, s))
    units_in[0] = xp.ceil(demand[0] / per_unit[0])
    for t in range(1, n):
        lags = min(t, window)
        out = xp.einsum("ls,ls->s", retire_share[1 : lags + 1], units_in[t - 1 :: -1][:lags])
        retired_capacity[t] = per_unit[t] * out
        replacement = retired_capacity[t - lags + 1 : t + 1].sum(axis=0)
        units_in[t] = xp.ceil((demand[t] - demand[t - 1] + replacement) / per_unit[t])
    return units_in


def require_first_step(first_step: float) -> None:
    """Refuse a stock-driven run whose cohorts mostly leave in the step they enter (sf[m, m] tiny)."""
    if not first_step >= MIN_FIRST_STEP_SURVIVAL:
        raise InputError(
            None,
            "lifetime",
            f"only {first_step:.3g} of a cohort survives the step it enters service (sf[m,m]): a stock-driven "
            f"model divides by it and needs at least {MIN_FIRST_STEP_SURVIVAL:g}; use a longer lifetime, "
            "shorter steps or the 'end' age convention",
        )


def _width(driver: Any, attributes: Any, rows: SurvivalRows) -> int:
    widths = [driver.shape[-1]] + ([] if attributes is None else [attributes.shape[-1]])
    widths += [v.shape[-1] for v in rows.params.values()]
    return max(widths)


def check_balance(stock: Any, inflow: Any, outflow: Any, xp: Any) -> float:
    """Largest relative violation of s[m] - s[m-1] = i[m] - o[m] (s[-1] = 0), along axis -2.

    Scaled per scenario by the largest stock or flow it holds; NaN counts as a violation.
    """
    ds = xp.diff(stock, axis=-2, prepend=0.0 * stock[..., :1, :])
    err = xp.abs(ds - (inflow - outflow))
    scale = xp.maximum(xp.abs(stock).max(axis=-2), xp.abs(inflow).max(axis=-2))
    scale = xp.maximum(scale, xp.abs(outflow).max(axis=-2))
    rel = err.max(axis=-2) / xp.where(scale > 0, scale, 1.0)
    worst = float(xp.nan_to_num(rel, nan=xp.inf).max()) if rel.size else 0.0
    return worst
