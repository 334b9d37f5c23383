// The cohort maths of ewaste, shared by the GPU kernel (cohort.cu) and the compiled CPU engine (host.cpp).
//
// Everything here is __host__ __device__ and compiles as plain C++17 too. The recursion runs W
// scenarios side by side ("lanes"): the GPU runs one lane per thread (W = 1), the CPU runs blocks
// of 64 lanes so that the compiler vectorises across scenarios. Conventions as in docs/model.md:
// stocks at the end of a step, flows during it; the age of a cohort in the step it enters is
// `offset` steps (0 'end', 0.5 'middle'); lifetimes in years, dt in years per step. The NumPy
// engine (ewaste/stockflow.py) is the reference: tests/test_kernels.py checks this file against it.
#pragma once

#ifdef __CUDACC_RTC__  // NVRTC (CuPy's run-time compiler) has no C library headers
typedef int int32_t;
typedef long long int64_t;
#else
#include <stdint.h>
#endif

#ifdef __CUDACC__
#define EW_HD __host__ __device__
#define EW_SIMD
#else
#define EW_HD
#define EW_SIMD _Pragma("omp simd")
#include <cmath>
using std::erfc;
using std::exp;
using std::fabs;
using std::fmax;
using std::fmin;
using std::log;
using std::log1p;
using std::pow;
using std::sqrt;
#endif

namespace ew {

// TABLE: survival by age given as a table (tabulated lifetimes), read from p1.
enum Lifetime { FIXED = 0, NORMAL = 1, FOLDEDNORMAL = 2, LOGNORMAL = 3, WEIBULL = 4, TABLE = 5 };

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
  int32_t pad;
  int64_t stride;        // S, the number of scenarios
  double dt;             // years per step
  double offset;         // age in steps of a cohort in the step it enters service
  const double* p1;      // mean (WEIBULL: shape; TABLE: survival by lag, (1 or n, n_lags, S))
  const double* p2;      // std (WEIBULL: scale; unused for FIXED and TABLE)
  const double* driver;  // (n, S) inflow per step or stock at the end of each step, driver units
  const double* attributes;  // (K, n, S) attribute per driver unit of each cohort
  const double* weights;     // summary mode: (2, n) weights of the steps (target year; up to it)
  int64_t last;              // summary mode: the step whose value is kept (end of the target year)
};

struct Result {
  double* inflow;        // (n, S) driver units put in service in each step
  double* stock;         // (n, S) driver units in service at the end of each step
  double* outflow;       // (n, S) driver units retired in each step
  double* attr_stock;    // (K, n, S) sum over cohorts of x[c] * sf[m, c] * a[k, c]
  double* attr_outflow;  // (K, n, S) attr_stock[k, m - 1] + inflow * a[k, m] - attr_stock[k, m]
  int64_t* negative;     // (S,) steps whose stock-driven inflow came out negative
  double* first_step;    // (S,) smallest share of a cohort surviving the step it enters, sf[m, m]
  int64_t stride;        // elements between steps in the output arrays (S, or a block's width)
  // Summary mode when not null: no trajectories, but for each series q (inflow, stock, outflow,
  // then attr_stock and attr_outflow by attribute) three values per scenario, at (q * 3 + i) * stride:
  // i = 0: sum_m weights[m] v[m], 1: sum_m weights[n + m] v[m], 2: v[last]. (3 + 2K, 3, S).
  double* summary;
};

// Scratch doubles per lane for the summary sums and the previous attribute stocks.
EW_HD inline int64_t acc_size(int n_attributes) { return (3 + 2 * (int64_t)n_attributes) * 3 + n_attributes; }

// Add the value v of series q at step m to the summary sums of lane j (acc: 3 W doubles per series).
template <typename T, int W>
EW_HD inline void add(T* acc, const Problem& p, int q, int m, int j, T v) {
  T* a = acc + q * 3 * W;
  a[j] += T(p.weights[m]) * v;
  a[W + j] += T(p.weights[p.n + m]) * v;
  if (m == p.last) a[2 * W + j] = v;
}

// Share of a cohort still in service at `age` years, S(age), for a parametric lifetime (T: the
// precision of the arithmetic, double or float).
template <typename T, int KIND>
EW_HD inline T survival(T age, T p1, T p2) {
  const T r2 = T(1.4142135623730951), half = T(0.5), one = T(1), zero = T(0);
  if constexpr (KIND == FIXED) {
    return age < p1 ? one : zero;
  } else if constexpr (KIND == NORMAL) {
    return half * erfc((age - p1) / (p2 * r2));
  } else if constexpr (KIND == FOLDEDNORMAL) {
    const T both = half * erfc((age - p1) / (p2 * r2)) + half * erfc((age + p1) / (p2 * r2));
    return age < zero ? one : both;
  } else if constexpr (KIND == LOGNORMAL) {  // p1, p2: mean and std of the lifetime itself
    const T var = log1p((p2 / p1) * (p2 / p1));
    const T mu = log(p1) - half * var;
    const T tail = half * erfc((log(fmax(age, T(1e-30))) - mu) / (sqrt(var) * r2));
    return age <= zero ? one : tail;
  } else {  // WEIBULL: p1 shape, p2 scale
    return exp(-pow(fmax(age, zero) / p2, p1));
  }
}

// Lanes s0 .. s0 + W - 1 over all steps, written to outputs o0 .. o0 + W - 1 (o0 = s0 when the
// outputs are the full arrays). Scratch (in T): x and sf n * W values each, acc acc_size(K) * W.
// Inputs and outputs are double; T is the precision of the arithmetic.
// sf holds survival by age (one lifetime per scenario) or, for parameters that vary by cohort,
// the row sf[m, c] of the current step.
template <typename T, int W, int KIND>
EW_HD void solve_lanes(const Problem& p, const Result& r, int64_t s0, int64_t o0, T* x, T* sf, T* acc) {
  const int n = p.n;
  const int64_t S = p.stride, R = r.stride;
  const bool summary = r.summary != nullptr;
  const int n_series = 3 + 2 * p.n_attributes;
  T* attr_prev = acc + n_series * 3 * W;  // attr_stock of the previous step, K * W
  for (int64_t i = 0; i < acc_size(p.n_attributes) * W; ++i) acc[i] = T(0);
  T noise[W], prev[W], tot[W], keep[W], fresh[W];
  int64_t negative[W];
  EW_SIMD for (int j = 0; j < W; ++j) {
    noise[j] = 0.0;
    prev[j] = 0.0;
    negative[j] = 0;
  }
  for (int m = 0; m < n; ++m) {
    EW_SIMD for (int j = 0; j < W; ++j) noise[j] = fmax(noise[j], T(fabs(p.driver[m * S + s0 + j])));
  }
  // rounding, on the scale of the largest stock (float32: rounding is 1e-7, so 1e-5 is noise)
  const T noise_share = sizeof(T) == sizeof(float) ? T(1e-5) : T(1e-12);
  EW_SIMD for (int j = 0; j < W; ++j) noise[j] *= noise_share;
  if (!p.by_cohort) {
    for (int a = 0; a < n; ++a) {
      const T age = T((a + p.offset) * p.dt);
      if constexpr (KIND == TABLE) {
        const int64_t at = (a < p.n_lags ? a : p.n_lags - 1) * S + s0;
        EW_SIMD for (int j = 0; j < W; ++j) sf[a * W + j] = p.p1[at + j];
      } else {
        EW_SIMD for (int j = 0; j < W; ++j) sf[a * W + j] = survival<T, KIND>(age, T(p.p1[s0 + j]), T(p.p2[s0 + j]));
      }
    }
    EW_SIMD for (int j = 0; j < W; ++j) r.first_step[o0 + j] = sf[j];
  } else {
    EW_SIMD for (int j = 0; j < W; ++j) r.first_step[o0 + j] = 1.0;
  }
  for (int m = 0; m < n; ++m) {
    if (p.by_cohort) {  // sf[c] = S(age of cohort c in step m) with cohort c's parameters
      for (int c = 0; c <= m; ++c) {
        if constexpr (KIND == TABLE) {
          const int lag = m - c < p.n_lags ? m - c : p.n_lags - 1;
          const int64_t at = ((int64_t)c * p.n_lags + lag) * S + s0;
          EW_SIMD for (int j = 0; j < W; ++j) sf[c * W + j] = p.p1[at + j];
        } else {
          const T age = T((m - c + p.offset) * p.dt);
          const int64_t at = c * S + s0;
          EW_SIMD for (int j = 0; j < W; ++j) sf[c * W + j] = survival<T, KIND>(age, T(p.p1[at + j]), T(p.p2[at + j]));
        }
      }
      EW_SIMD for (int j = 0; j < W; ++j) r.first_step[o0 + j] = fmin(r.first_step[o0 + j], double(sf[m * W + j]));
    }
    // sf[m, c] for lane j: row(c)[j]
    auto row = [&](int c) -> const T* { return p.by_cohort ? sf + c * W : sf + (m - c) * W; };
    EW_SIMD for (int j = 0; j < W; ++j) tot[j] = T(0);
    for (int c = 0; c < m; ++c) {
      const T* xc = x + c * W;
      const T* sc = row(c);
      EW_SIMD for (int j = 0; j < W; ++j) tot[j] += xc[j] * sc[j];
    }
    const T* diag = row(m);
    const double* given = p.driver + m * S + s0;
    const bool solve_inflow = p.stock_driven && m >= p.n_history;
    bool corrected = false;
    EW_SIMD for (int j = 0; j < W; ++j) {
      T inflow = T(given[j]);
      keep[j] = T(1);
      if (solve_inflow) {
        inflow = (T(given[j]) - tot[j]) / diag[j];
        const bool neg = inflow * diag[j] < -noise[j];  // negative beyond rounding
        negative[j] += neg ? 1 : 0;
        if (p.correct && neg) {  // inflow 0, every cohort retired early by the same share
          keep[j] = T(given[j]) / tot[j];
          inflow = T(0);
        }
      }
      fresh[j] = inflow;
    }
    if (solve_inflow && p.correct) {
      for (int j = 0; j < W; ++j) corrected = corrected || keep[j] != T(1);
    }
    if (corrected) {
      for (int c = 0; c < m; ++c) {
        EW_SIMD for (int j = 0; j < W; ++j) x[c * W + j] *= keep[j];
      }
      EW_SIMD for (int j = 0; j < W; ++j) tot[j] *= keep[j];
    }
    if (summary) {
      EW_SIMD for (int j = 0; j < W; ++j) {
        const T now = tot[j] + fresh[j] * diag[j];
        x[m * W + j] = fresh[j];
        add<T, W>(acc, p, 0, m, j, fresh[j]);
        add<T, W>(acc, p, 1, m, j, now);
        add<T, W>(acc, p, 2, m, j, prev[j] + fresh[j] - now);
        prev[j] = now;
      }
    } else {
      EW_SIMD for (int j = 0; j < W; ++j) {
        const T now = tot[j] + fresh[j] * diag[j];
        x[m * W + j] = fresh[j];
        r.inflow[m * R + o0 + j] = fresh[j];
        r.stock[m * R + o0 + j] = now;
        r.outflow[m * R + o0 + j] = prev[j] + fresh[j] - now;
        prev[j] = now;
      }
    }
    for (int k = 0; k < p.n_attributes; ++k) {
      const double* a = p.attributes + (int64_t)k * n * S + s0;  // a[c * S + j]: cohort c, lane j
      T* pk = attr_prev + k * W;
      EW_SIMD for (int j = 0; j < W; ++j) tot[j] = T(0);
      for (int c = 0; c < m; ++c) {
        const T* xc = x + c * W;
        const T* sc = row(c);
        EW_SIMD for (int j = 0; j < W; ++j) tot[j] += xc[j] * sc[j] * T(a[c * S + j]);
      }
      if (summary) {
        EW_SIMD for (int j = 0; j < W; ++j) {
          const T now = tot[j] + fresh[j] * diag[j] * T(a[m * S + j]);
          add<T, W>(acc, p, 3 + k, m, j, now);
          add<T, W>(acc, p, 3 + p.n_attributes + k, m, j, pk[j] + fresh[j] * T(a[m * S + j]) - now);
          pk[j] = now;
        }
      } else {
        double* as = r.attr_stock + (int64_t)k * n * R + o0;  // as[m * R + j]
        double* ao = r.attr_outflow + (int64_t)k * n * R + o0;
        EW_SIMD for (int j = 0; j < W; ++j) {
          const T now = tot[j] + fresh[j] * diag[j] * T(a[m * S + j]);
          as[m * R + j] = now;
          ao[m * R + j] = pk[j] + fresh[j] * T(a[m * S + j]) - now;
          pk[j] = now;
        }
      }
    }
  }
  EW_SIMD for (int j = 0; j < W; ++j) r.negative[o0 + j] = negative[j];
  if (summary) {
    for (int i = 0; i < n_series * 3; ++i) {
      EW_SIMD for (int j = 0; j < W; ++j) r.summary[i * R + o0 + j] = acc[i * W + j];
    }
  }
}

// Dispatch on the lifetime type (templated so that each loop body is branch-free).
template <typename T, int W>
EW_HD void solve_in(const Problem& p, const Result& r, int64_t s0, int64_t o0, T* x, T* sf, T* acc) {
  switch (p.kind) {
    case FIXED: return solve_lanes<T, W, FIXED>(p, r, s0, o0, x, sf, acc);
    case NORMAL: return solve_lanes<T, W, NORMAL>(p, r, s0, o0, x, sf, acc);
    case FOLDEDNORMAL: return solve_lanes<T, W, FOLDEDNORMAL>(p, r, s0, o0, x, sf, acc);
    case LOGNORMAL: return solve_lanes<T, W, LOGNORMAL>(p, r, s0, o0, x, sf, acc);
    case WEIBULL: return solve_lanes<T, W, WEIBULL>(p, r, s0, o0, x, sf, acc);
    default: return solve_lanes<T, W, TABLE>(p, r, s0, o0, x, sf, acc);
  }
}

// Dispatch on the precision: the scratch is sized in doubles and holds floats in float32 mode.
template <int W>
EW_HD void solve(const Problem& p, const Result& r, int64_t s0, int64_t o0, double* x, double* sf, double* acc) {
  if (p.single) {
    solve_in<float, W>(p, r, s0, o0, reinterpret_cast<float*>(x), reinterpret_cast<float*>(sf),
                       reinterpret_cast<float*>(acc));
  } else {
    solve_in<double, W>(p, r, s0, o0, x, sf, acc);
  }
}

}  // namespace ew
