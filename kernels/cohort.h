// The cohort maths of ewaste, shared by the GPU kernel (cohort.cu) and the compiled CPU engine (host.cpp).
//
// Everything here is __host__ __device__ and compiles as plain C++17 too. The recursion runs W
// scenarios side by side ("lanes"): the GPU runs one lane per thread (W = 1), the CPU runs blocks
// of 64 lanes so that the compiler vectorises across scenarios. Conventions as in docs/model.md:
// stocks at the end of a step, flows during it; the age of a cohort in the step it enters is
// `offset` steps (0 'end', 0.5 'middle'); lifetimes in years, dt in years per step. The NumPy
// engine (ewaste/stockflow.py) is the reference: tests/test_kernels.py checks this file against it.
#pragma once

#include "survival.h"

namespace ew {

// A step's stock is checked relative to itself, or to this share of the largest stock so far
// (ewaste/engine/stockflow.py LOCAL_FLOOR).
#define EW_LOCAL_FLOOR 1e-6

// One fleet's problem. Every (n, S) array is C-ordered: element (m, s) at m * stride + s.
struct Problem {
  int32_t n;             // steps, inflow-history steps first
  int32_t n_history;     // first steps whose inflow is given even when stock-driven
  int32_t stock_driven;  // 1: driver is the stock at the end of each step; 0: the inflow per step
  int32_t correct;       // 1: ODYM's correction of negative inflow; 0: negative inflow kept
  int32_t kind;          // Lifetime
  int32_t by_cohort;     // 1: p1/p2 have one row per cohort (n, S); 0: one row (1, S)
  int32_t n_attributes;  // K cohort attributes per driver unit
  int32_t n_lags;        // TABLE: lags in the survival table (the last holds beyond)
  int32_t single;        // 1: compute in float32 (inputs and outputs stay float64); 0: float64
  int32_t installed_base;  // 1: the first step's cohort is the installed base, in service all that step
  int32_t averages;      // 1: compute the average in service (in_service, attr_in_service); 0: skip them
  int32_t driver_shared;  // 1: one driver trajectory for every scenario, driver (n, 1); 0: (n, S)
  int64_t stride;        // S, the number of scenarios
  double dt;             // years per step
  double offset;         // age in steps of a cohort in the step it enters service
  const double* p1;      // mean (WEIBULL: shape; TABLE: survival by lag, (1 or n, n_lags, S))
  const double* p2;      // std (WEIBULL: scale; unused for FIXED and TABLE)
  const double* driver;  // (n, S) inflow per step or stock at the end of each step, driver units ((n, 1): shared)
  const double* attributes;  // (K, n, S) attribute per driver unit of each cohort
  const double* weights;     // summary mode: (2, n) weights of the steps (target year; up to it)
  int64_t last;              // summary mode: the step whose value is kept (end of the target year)
};

struct Result {
  double* inflow;           // (n, S) driver units put in service in each step
  double* stock;            // (n, S) driver units in service at the end of each step
  double* outflow;          // (n, S) driver units retired in each step
  double* in_service;       // (n, S) driver units in service on average over each step (Problem.averages)
  double* attr_stock;       // (K, n, S) sum over cohorts of x[c] * sf[m, c] * a[k, c]
  double* attr_outflow;     // (K, n, S) attr_stock[k, m - 1] + inflow * a[k, m] - attr_stock[k, m]
  double* attr_in_service;  // (K, n, S) sum over cohorts of x[c] * av[m, c] * a[k, c]
  int64_t* negative;        // (S,) steps whose stock-driven inflow came out negative
  double* first_step;       // (S,) smallest share of a cohort surviving the step it enters, sf[m, m]
  double* stock_error;      // (S,) stock-driven: largest |stock - given| over the step's own stock (floored)
  int64_t stride;           // elements between steps in the output arrays (S, or a block's width)
  // Summary mode when not null: no trajectories, but for each series q (inflow, stock, outflow,
  // in_service, then attr_stock, attr_outflow and attr_in_service by attribute) three values per
  // scenario, at (q * 3 + i) * stride: i = 0: sum_m weights[m] v[m], 1: sum_m weights[n + m] v[m],
  // 2: v[last]. (4 + 3K, 3, S); without Problem.averages the in_service sums stay 0.
  double* summary;
};

EW_HD inline int n_series(int n_attributes) { return 4 + 3 * n_attributes; }

// Scratch doubles per lane for the summary sums and the previous attribute stocks.
EW_HD inline int64_t acc_size(int n_attributes) { return (int64_t)n_series(n_attributes) * 3 + n_attributes; }

// Add the value v of series q at step m to the summary sums of lane j (acc: 3 W doubles per series).
template <typename T, int W>
EW_HD inline void add(T* acc, const Problem& p, int q, int m, int j, T v) {
  T* a = acc + q * 3 * W;
  a[j] += T(p.weights[m]) * v;
  a[W + j] += T(p.weights[p.n + m]) * v;
  if (m == p.last) a[2 * W + j] = v;
}

// Survival and average survival of lane j's cohorts at the ages of step m into sf and av: by age
// (a = 0 .. n - 1) when the lifetime is the same for every cohort, else the row of step m (c = 0 .. m).
template <typename T, int W, int KIND>
EW_HD void survival_by_age(const Problem& p, int64_t s0, T* sf, T* av) {
  const int64_t S = p.stride;
  // double Weibull: (age / scale)^shape as exp(shape (ln age - ln scale)), ln age shared by the lanes;
  // lam = ln scale, once a lane for the survival and the integrals
  constexpr bool weibull = KIND == WEIBULL && sizeof(T) == sizeof(double);
  double b0[W], b1[W], i0[W], i1[W], lam[W];
  EW_SIMD for (int j = 0; j < W; ++j) {
    b0[j] = b1[j] = 0.0;
    lam[j] = KIND == WEIBULL ? log(p.p2[s0 + j]) : 0.0;
  }
  for (int a = 0; a < p.n; ++a) {
    const T age = T((a + p.offset) * p.dt);
    if constexpr (KIND == TABLE) {
      const int64_t at = (a < p.n_lags ? a : p.n_lags - 1) * S + s0;
      const int64_t before = (a >= 1 && a - 1 < p.n_lags ? a - 1 : (a >= 1 ? p.n_lags - 1 : 0)) * S + s0;
      EW_SIMD for (int j = 0; j < W; ++j) {
        sf[a * W + j] = T(p.p1[at + j]);
        av[a * W + j] = T(table_average(a, p.offset, p.p1[before + j], p.p1[at + j]));
      }
    } else {
      if constexpr (weibull) {  // capped at 690 = exp(6.536691597591305), as `survival`
        const double la = log(age > 0 ? double(age) : 1.0);
        EW_SIMD for (int j = 0; j < W; ++j) {
          sf[a * W + j] = age > 0 ? T(exp(-exp(fmin(p.p1[s0 + j] * (la - lam[j]), 6.536691597591305)))) : T(1);
        }
      } else {
        EW_SIMD for (int j = 0; j < W; ++j) sf[a * W + j] = survival<T, KIND>(age, T(p.p1[s0 + j]), T(p.p2[s0 + j]));
      }
      if (!p.averages) continue;  // the integrals are what the average in service costs
      intervals<W, KIND>(a * p.dt, p.dt, p.p1 + s0, p.p2 + s0, lam, i0, i1);
      EW_SIMD for (int j = 0; j < W; ++j) {
        av[a * W + j] = T(average(a, p.dt, p.offset, b0[j], b1[j], i0[j], i1[j]));
        b0[j] = i0[j];
        b1[j] = i1[j];
      }
    }
  }
}

template <typename T, int W, int KIND>
EW_HD void survival_row(const Problem& p, int64_t s0, int m, T* sf, T* av) {
  const int64_t S = p.stride;
  double b0[W], b1[W], i0[W], i1[W], lam[W];
  EW_SIMD for (int j = 0; j < W; ++j) b0[j] = b1[j] = 0.0;
  for (int c = 0; c <= m; ++c) {
    const int lag = m - c;
    if constexpr (KIND == TABLE) {
      const int64_t at = ((int64_t)c * p.n_lags + (lag < p.n_lags ? lag : p.n_lags - 1)) * S + s0;
      const int back = lag >= 1 ? lag - 1 : 0;
      const int64_t before = ((int64_t)c * p.n_lags + (back < p.n_lags ? back : p.n_lags - 1)) * S + s0;
      EW_SIMD for (int j = 0; j < W; ++j) {
        sf[c * W + j] = T(p.p1[at + j]);
        av[c * W + j] = T(table_average(lag, p.offset, p.p1[before + j], p.p1[at + j]));
      }
    } else {
      const T age = T((lag + p.offset) * p.dt);
      const int64_t at = c * S + s0;
      EW_SIMD for (int j = 0; j < W; ++j) sf[c * W + j] = survival<T, KIND>(age, T(p.p1[at + j]), T(p.p2[at + j]));
      if (!p.averages) continue;
      EW_SIMD for (int j = 0; j < W; ++j) lam[j] = KIND == WEIBULL ? log(p.p2[at + j]) : 0.0;  // this cohort's
      intervals<W, KIND>(lag * p.dt, p.dt, p.p1 + at, p.p2 + at, lam, i0, i1);
      if (lag >= 1) intervals<W, KIND>((lag - 1) * p.dt, p.dt, p.p1 + at, p.p2 + at, lam, b0, b1);
      EW_SIMD for (int j = 0; j < W; ++j) av[c * W + j] = T(average(lag, p.dt, p.offset, b0[j], b1[j], i0[j], i1[j]));
    }
  }
}

// Lanes s0 .. s0 + W - 1 over all steps, written to outputs o0 .. o0 + W - 1 (o0 = s0 when the
// outputs are the full arrays). Scratch (in T): x and av n * W values each, sf 2 n * W (the second
// half: the previous row, float32 by cohort), acc acc_size(K) * W.
// Inputs and outputs are double; T is the precision of the arithmetic.
// sf and av hold survival and average survival over a step by age (one lifetime per scenario) or,
// for parameters that vary by cohort, the rows sf[m, c] and av[m, c] of the current step.
template <typename T, int W, int KIND>
EW_HD void solve_lanes(const Problem& p, const Result& r, int64_t s0, int64_t o0, T* x, T* sf, T* av, T* acc) {
  const int n = p.n, K = p.n_attributes;
  const int64_t S = p.stride, R = r.stride;
  const bool summary = r.summary != nullptr;
  T* attr_prev = acc + n_series(K) * 3 * W;  // attr_stock of the previous step, K * W
  for (int64_t i = 0; i < acc_size(K) * W; ++i) acc[i] = T(0);
  // float32: outflows summed from the retirements of each cohort (non-negative terms), not taken as
  // the difference of stocks, which loses their digits where stocks dwarf outflows
  constexpr bool direct = sizeof(T) == sizeof(float);
  T* sf_prev = sf + n * W;  // by cohort, direct: the previous step's row
  T prev[W], tot[W], avg[W], keep[W], half[W], fresh[W], tot_a[W], avg_a[W], seen[W], ret[W], ret_a[W];
  double error[W];
  int64_t negative[W];
  EW_SIMD for (int j = 0; j < W; ++j) {
    prev[j] = 0.0;
    seen[j] = 0.0;
    error[j] = 0.0;
    negative[j] = 0;
  }
  // rounding, on the scale of the values at hand: the stocks so far, not later ones (float32: rounding
  // is 1e-7, so 1e-5 is noise)
  const T noise_share = sizeof(T) == sizeof(float) ? T(1e-5) : T(1e-12);
  if (!p.by_cohort) {
    survival_by_age<T, W, KIND>(p, s0, sf, av);
    EW_SIMD for (int j = 0; j < W; ++j) r.first_step[o0 + j] = sf[j];
  } else {
    EW_SIMD for (int j = 0; j < W; ++j) r.first_step[o0 + j] = 1.0;
  }
  for (int m = 0; m < n; ++m) {
    if (p.by_cohort) {
      if constexpr (direct) {
        for (int64_t i = 0; i < (int64_t)m * W; ++i) sf_prev[i] = sf[i];
      }
      survival_row<T, W, KIND>(p, s0, m, sf, av);
      EW_SIMD for (int j = 0; j < W; ++j) r.first_step[o0 + j] = fmin(r.first_step[o0 + j], double(sf[m * W + j]));
    }
    // sf[m, c] and av[m, c] for lane j: row(c)[j], arow(c)[j]
    auto row = [&](int c) -> const T* { return p.by_cohort ? sf + c * W : sf + (m - c) * W; };
    auto arow = [&](int c) -> const T* { return p.by_cohort ? av + c * W : av + (m - c) * W; };
    // sf[m - 1, c] (c < m)
    auto prow = [&](int c) -> const T* { return p.by_cohort ? sf_prev + c * W : sf + (m - 1 - c) * W; };
    EW_SIMD for (int j = 0; j < W; ++j) {
      tot[j] = T(0);
      avg[j] = T(0);
      ret[j] = T(0);
    }
    for (int c = 0; c < m; ++c) {
      const T* xc = x + c * W;
      const T* sc = row(c);
      if (p.averages) {
        const T* ac = arow(c);
        EW_SIMD for (int j = 0; j < W; ++j) {
          tot[j] += xc[j] * sc[j];
          avg[j] += xc[j] * ac[j];
        }
      } else {
        EW_SIMD for (int j = 0; j < W; ++j) tot[j] += xc[j] * sc[j];
      }
      if constexpr (direct) {
        const T* pc = prow(c);
        EW_SIMD for (int j = 0; j < W; ++j) ret[j] += xc[j] * (pc[j] - sc[j]);
      }
    }
    const T* diag = row(m);
    // the installed base a stock-driven run starts from serves its whole first step
    const T* adiag = m == 0 && p.installed_base ? diag : arow(m);  // read only with p.averages
    const double* drow = p.driver + (p.driver_shared ? m : m * S + s0);
    double given[W];
    EW_SIMD for (int j = 0; j < W; ++j) given[j] = drow[p.driver_shared ? 0 : j];
    const bool solve_inflow = p.stock_driven && m >= p.n_history;
    bool corrected = false;
    EW_SIMD for (int j = 0; j < W; ++j) {
      T inflow = T(given[j]);
      keep[j] = T(1);
      seen[j] = fmax(seen[j], T(fabs(given[j])));  // the largest stock so far
      if (solve_inflow) {
        inflow = (T(given[j]) - tot[j]) / diag[j];
        const T scale = fmax(seen[j], T(fabs(tot[j])));
        const bool neg = inflow * diag[j] < -noise_share * scale;  // negative beyond rounding
        negative[j] += neg ? 1 : 0;
        if (p.correct && neg) {  // inflow 0, every cohort retired early by the same share
          keep[j] = T(given[j]) / tot[j];
          inflow = T(0);
        }
      }
      half[j] = T(0.5) * (T(1) + keep[j]);  // cohorts retired early leave evenly over the step
      fresh[j] = inflow;
      ret[j] += tot[j] * (T(1) - keep[j]) + inflow * (T(1) - diag[j]);  // retired early; in the entry step
      tot[j] *= keep[j];
      avg[j] *= half[j];
    }
    if (solve_inflow && p.correct) {
      for (int j = 0; j < W; ++j) corrected = corrected || keep[j] != T(1);
    }
    EW_SIMD for (int j = 0; j < W; ++j) {
      const T now = tot[j] + fresh[j] * diag[j];
      const T mean = p.averages ? avg[j] + fresh[j] * adiag[j] : T(0);
      const T out = direct ? ret[j] : prev[j] + fresh[j] - now;
      if (summary) {
        add<T, W>(acc, p, 0, m, j, fresh[j]);
        add<T, W>(acc, p, 1, m, j, now);
        add<T, W>(acc, p, 2, m, j, out);
        if (p.averages) add<T, W>(acc, p, 3, m, j, mean);
      } else {
        r.inflow[m * R + o0 + j] = fresh[j];
        r.stock[m * R + o0 + j] = now;
        r.outflow[m * R + o0 + j] = out;
        if (p.averages) r.in_service[m * R + o0 + j] = mean;
      }
      x[m * W + j] = fresh[j];
      prev[j] = now;
    }
    if (solve_inflow) {  // the stock reached, against the step's own (or LOCAL_FLOOR of the largest so far)
      EW_SIMD for (int j = 0; j < W; ++j) {
        const double scale = fmax(fmax(fabs(given[j]), EW_LOCAL_FLOOR * double(seen[j])), 1e-300);
        error[j] = fmax(error[j], fabs(double(prev[j]) - given[j]) / scale);
      }
    }
    for (int k = 0; k < K; ++k) {  // attributes: sums over the cohorts before any correction
      const double* a = p.attributes + (int64_t)k * n * S + s0;  // a[c * S + j]: cohort c, lane j
      T* pk = attr_prev + k * W;
      EW_SIMD for (int j = 0; j < W; ++j) {
        tot_a[j] = T(0);
        avg_a[j] = T(0);
        ret_a[j] = T(0);
      }
      for (int c = 0; c < m; ++c) {
        const T* xc = x + c * W;
        const T* sc = row(c);
        if (p.averages) {
          const T* ac = arow(c);
          EW_SIMD for (int j = 0; j < W; ++j) {
            const T xa = xc[j] * T(a[c * S + j]);
            tot_a[j] += xa * sc[j];
            avg_a[j] += xa * ac[j];
          }
        } else {
          EW_SIMD for (int j = 0; j < W; ++j) tot_a[j] += xc[j] * T(a[c * S + j]) * sc[j];
        }
        if constexpr (direct) {
          const T* pc = prow(c);
          EW_SIMD for (int j = 0; j < W; ++j) ret_a[j] += xc[j] * T(a[c * S + j]) * (pc[j] - sc[j]);
        }
      }
      EW_SIMD for (int j = 0; j < W; ++j) {
        const T am = T(a[m * S + j]);
        const T now = tot_a[j] * keep[j] + fresh[j] * diag[j] * am;
        const T mean = p.averages ? avg_a[j] * half[j] + fresh[j] * adiag[j] * am : T(0);
        const T early = tot_a[j] * (T(1) - keep[j]) + fresh[j] * (T(1) - diag[j]) * am;
        const T out = direct ? ret_a[j] + early : pk[j] + fresh[j] * am - now;
        if (summary) {
          add<T, W>(acc, p, 4 + k, m, j, now);
          add<T, W>(acc, p, 4 + K + k, m, j, out);
          if (p.averages) add<T, W>(acc, p, 4 + 2 * K + k, m, j, mean);
        } else {
          r.attr_stock[((int64_t)k * n + m) * R + o0 + j] = now;
          r.attr_outflow[((int64_t)k * n + m) * R + o0 + j] = out;
          if (p.averages) r.attr_in_service[((int64_t)k * n + m) * R + o0 + j] = mean;
        }
        pk[j] = now;
      }
    }
    if (corrected) {
      for (int c = 0; c < m; ++c) {
        EW_SIMD for (int j = 0; j < W; ++j) x[c * W + j] *= keep[j];
      }
    }
  }
  EW_SIMD for (int j = 0; j < W; ++j) {
    r.negative[o0 + j] = negative[j];
    r.stock_error[o0 + j] = error[j];
  }
  if (summary) {
    for (int i = 0; i < n_series(K) * 3; ++i) {
      EW_SIMD for (int j = 0; j < W; ++j) r.summary[i * R + o0 + j] = acc[i * W + j];
    }
  }
}

// Dispatch on the lifetime type (templated so that each loop body is branch-free).
template <typename T, int W>
EW_HD void solve_in(const Problem& p, const Result& r, int64_t s0, int64_t o0, T* x, T* sf, T* av, T* acc) {
  switch (p.kind) {
    case FIXED: return solve_lanes<T, W, FIXED>(p, r, s0, o0, x, sf, av, acc);
    case NORMAL: return solve_lanes<T, W, NORMAL>(p, r, s0, o0, x, sf, av, acc);
    case FOLDEDNORMAL: return solve_lanes<T, W, FOLDEDNORMAL>(p, r, s0, o0, x, sf, av, acc);
    case LOGNORMAL: return solve_lanes<T, W, LOGNORMAL>(p, r, s0, o0, x, sf, av, acc);
    case WEIBULL: return solve_lanes<T, W, WEIBULL>(p, r, s0, o0, x, sf, av, acc);
    default: return solve_lanes<T, W, TABLE>(p, r, s0, o0, x, sf, av, acc);
  }
}

// Dispatch on the precision: the scratch is sized in doubles and holds floats in float32 mode.
template <int W>
EW_HD void solve(const Problem& p, const Result& r, int64_t s0, int64_t o0, double* x, double* sf, double* av,
                 double* acc) {
  if (p.single) {
    solve_in<float, W>(p, r, s0, o0, reinterpret_cast<float*>(x), reinterpret_cast<float*>(sf),
                       reinterpret_cast<float*>(av), reinterpret_cast<float*>(acc));
  } else {
    solve_in<double, W>(p, r, s0, o0, x, sf, av, acc);
  }
}

}  // namespace ew
