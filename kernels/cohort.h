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
using std::expm1;
using std::fabs;
using std::fmax;
using std::fmin;
using std::log;
using std::lgamma;
using std::log1p;
using std::pow;
using std::sqrt;
#endif

namespace ew {

// A step's stock is checked relative to itself, or to this share of the largest stock so far
// (ewaste/engine/stockflow.py LOCAL_FLOOR).
#define EW_LOCAL_FLOOR 1e-6

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
  } else {  // WEIBULL: p1 shape, p2 scale; (age / scale)^shape capped where S is below 1e-300 anyway
    return exp(-fmin(pow(fmax(age, zero) / p2, p1), T(sizeof(T) == sizeof(float) ? 87.0 : 690.0)));
  }
}

// Upper incomplete gamma Gamma(s, y) = Gamma(s) Q(s, y) in double precision, given gs = Gamma(s), less
// gs where `lower` (i.e. minus the lower incomplete gamma: a step's differences then never subtract
// two values near Gamma(s)): the series of the lower one below y = s + 1, a continued fraction
// (modified Lentz) above (as in Numerical Recipes, gammq, without its regularisation).
EW_HD inline double gamma_upper(double s, double y, double gs, bool lower) {
  if (!(y > 0.0)) return lower ? 0.0 : gs;
  const double front = exp(-y + s * log(y));
  if (y < s + 1.0) {
    double term = 1.0 / s, sum = term;
    for (int i = 1; i < 1000 && fabs(term) > fabs(sum) * 1e-17; ++i) {
      term *= y / (s + i);
      sum += term;
    }
    return lower ? -sum * front : fmax(gs - sum * front, 0.0);
  }
  const double tiny = 1e-300;
  double b = y + 1.0 - s, c = 1.0 / tiny, d = 1.0 / b, h = d;
  for (int i = 1; i < 1000; ++i) {
    const double an = -i * (i - s);
    b += 2.0;
    d = an * d + b;
    d = fabs(d) < tiny ? tiny : d;
    c = b + an / c;
    c = fabs(c) < tiny ? tiny : c;
    d = 1.0 / d;
    h *= d * c;
    if (fabs(d * c - 1.0) < 1e-16) break;
  }
  return lower ? front * h - gs : front * h;
}

// T(a) = integral of S from a to infinity and U(a) = integral of T from a to infinity, in double
// (lifetime.tail_integrals in ewaste/engine/lifetime.py gives the closed forms and their sources).
EW_HD inline void normal_tails(double a, double mean, double sd, double& t, double& u) {
  // z capped where the tails are below 1e-297 anyway: no slow path for underflow
  const double z = fmin(fmax((a - mean) / sd, -37.0), 37.0);
  const double q = 0.5 * erfc(z / 1.4142135623730951), phi = exp(-0.5 * z * z) / 2.5066282746310002;
  t = sd * (phi - z * q);
  u = 0.5 * sd * sd * ((1.0 + z * z) * q - z * phi);
}

// The Weibull's (shape k, scale lambda), given g1 = Gamma(1 + 1/k) and g2 = Gamma(1 + 2/k), for a step
// ending where (age / lambda)^k = y1: where y1 < s + 1, each of T and U less a constant that cancels
// in the step's I0 and I1 (the lower incomplete gamma, see gamma_upper); y1 = 1e308: T and U themselves.
EW_HD inline void weibull_tails(double a, double k, double lam, double g1, double g2, double y1, double& t,
                                double& u) {
  const double y = pow(fmax(a, 0.0) / lam, k), q0 = exp(-y), s1 = 1.0 + 1.0 / k, s2 = 1.0 + 2.0 / k;
  const double m1 = lam * gamma_upper(s1, y, g1, y1 < s1 + 1.0);
  const double m2 = lam * lam * gamma_upper(s2, y, g2, y1 < s2 + 1.0);
  t = m1 - a * q0;
  u = 0.5 * (m2 - 2.0 * a * m1 + a * a * q0);
}

template <int KIND>
EW_HD inline void tails(double a, double p1, double p2, double& t, double& u) {
  if constexpr (KIND == FIXED) {
    t = fmax(p1 - a, 0.0);
    u = 0.5 * t * t;
  } else if constexpr (KIND == NORMAL) {
    normal_tails(a, p1, p2, t, u);
  } else if constexpr (KIND == FOLDEDNORMAL) {
    double t2, u2;
    normal_tails(a, p1, p2, t, u);
    normal_tails(a, -p1, p2, t2, u2);
    t += t2;
    u += u2;
  } else if constexpr (KIND == LOGNORMAL) {
    const double var = log1p((p2 / p1) * (p2 / p1)), sd = sqrt(var);
    const double z = (log(fmax(a, 1e-300)) - log(p1) + 0.5 * var) / sd;
    const double q0 = 0.5 * erfc(z / 1.4142135623730951), q1 = 0.5 * erfc((z - sd) / 1.4142135623730951);
    const double q2 = 0.5 * erfc((z - 2.0 * sd) / 1.4142135623730951);
    t = p1 * q1 - a * q0;
    u = 0.5 * ((p1 * p1 + p2 * p2) * q2 - 2.0 * a * p1 * q1 + a * a * q0);
  } else {  // WEIBULL (weibull_tails, with the gamma functions computed here)
    weibull_tails(a, p1, p2, exp(lgamma(1.0 + 1.0 / p1)), exp(lgamma(1.0 + 2.0 / p1)), 1e308, t, u);
  }
}

// A Weibull step [x0, x0 + dt] is integrated exactly (incomplete gamma) where its bend, shape x
// ln((x0 + dt) / x0), exceeds EW_WEIBULL_STEEP (the first step, where S's derivative is infinite, and
// steep curves); else by Gauss-Legendre in u = ln(age), with 4 to 8 points as the bend grows (the
// tiers' upper bends, gl_bend: each tier within 4e-12 of a cohort, 8 points within 6e-10), and not
// at all where S is below 4e-18 over the step (EW_NEGLIGIBLE: (x0 / scale)^shape >= e^3.7). The same
// rule as ewaste/engine/lifetime.py (GL_TIERS, WEIBULL_STEEP, NEGLIGIBLE).
#define EW_WEIBULL_STEEP 2.0
#define EW_NEGLIGIBLE 3.7
#define EW_GL_TIERS 5
EW_HD inline double gl_bend(int t) {
  const double b[EW_GL_TIERS] = {0.1, 0.4, 0.7, 1.0, EW_WEIBULL_STEEP};
  return b[t];
}
// Tier t has 4 + t points; its nodes and weights on [-1, 1] start at index t (t + 7) / 2.
EW_HD inline int gl_first(int t) { return t * (t + 7) / 2; }
EW_HD inline double gl_node(int i) {
  const double x[30] = {-0.8611363115940526, -0.33998104358485626, 0.33998104358485626, 0.8611363115940526,
                        -0.906179845938664,  -0.5384693101056831,  0.0,                 0.5384693101056831,
                        0.906179845938664,   -0.9324695142031519,  -0.6612093864662645, -0.2386191860831969,
                        0.2386191860831969,  0.6612093864662645,   0.9324695142031519,  -0.9491079123427586,
                        -0.7415311855993945, -0.4058451513773972,  0.0,                 0.4058451513773972,
                        0.7415311855993945,  0.9491079123427586,   -0.9602898564975362, -0.7966664774136267,
                        -0.525532409916329,  -0.18343464249564978, 0.18343464249564978, 0.525532409916329,
                        0.7966664774136267,  0.9602898564975362};
  return x[i];
}
EW_HD inline double gl_weight(int i) {
  const double w[30] = {0.34785484513745357, 0.6521451548625464,  0.6521451548625464,  0.34785484513745357,
                        0.23692688505618928, 0.4786286704993663,  0.5688888888888887,  0.4786286704993663,
                        0.23692688505618928, 0.17132449237917027, 0.3607615730481387,  0.46791393457269104,
                        0.46791393457269104, 0.3607615730481387,  0.17132449237917027, 0.12948496616886973,
                        0.27970539148927687, 0.3818300505051187,  0.4179591836734693,  0.3818300505051187,
                        0.27970539148927687, 0.12948496616886973, 0.10122853629037706, 0.22238103445337443,
                        0.3137066458778869,  0.36268378337836166, 0.36268378337836166, 0.3137066458778869,
                        0.22238103445337443, 0.10122853629037706};
  return w[i];
}

// I0 = integral of S over [x0, x0 + dt] and I1 = integral of (a - x0) S over it, for lanes 0 .. W - 1
// (double; p1, p2 point at lane 0's parameters; lam: ln p2 of each lane, read by the Weibull only).
// Closed forms from T and U; the Weibull's as above: its lanes are sorted into tiers by their bend,
// and each tier's lanes are summed side by side.
template <int W, int KIND>
EW_HD void intervals(double x0, double dt, const double* p1, const double* p2, const double* lam, double* i0,
                     double* i1) {
  if constexpr (KIND == WEIBULL) {
    // span = ln((x0 + dt) / x0), the step's width in u
    const double span = x0 > 0.0 ? log1p(dt / x0) : 1e300, lx0 = log(x0 > 0.0 ? x0 : 1e-300);
    int tier[W], lane[EW_GL_TIERS + 1][W], count[EW_GL_TIERS + 1] = {0, 0, 0, 0, 0, 0};
    EW_SIMD for (int j = 0; j < W; ++j) {  // each lane's tier; EW_GL_TIERS: exact, or negligible
      i0[j] = i1[j] = 0.0;
      const double bend = p1[j] * span;
      int t = 0;
      for (int b = 0; b < EW_GL_TIERS; ++b) t += bend > gl_bend(b) ? 1 : 0;
      tier[j] = p1[j] * (lx0 - lam[j]) >= EW_NEGLIGIBLE ? EW_GL_TIERS : t;
    }
    for (int j = 0; j < W; ++j) lane[tier[j]][count[tier[j]]++] = j;
    for (int t = 0; t < EW_GL_TIERS; ++t) {
      const int c = count[t];
      if (c == 0) continue;
      double k[W], lk[W], s0[W], s1[W];
      for (int i = 0; i < c; ++i) {
        k[i] = p1[lane[t][i]];
        lk[i] = lam[lane[t][i]];
        s0[i] = s1[i] = 0.0;
      }
      for (int g = gl_first(t); g < gl_first(t + 1); ++g) {  // nodes outside, lanes inside: they vectorise
        // age x0 e^h at the node; da = age du
        const double h = 0.5 * span * (1.0 + gl_node(g)), off = x0 * expm1(h), u = lx0 + h;
        const double w = 0.5 * span * gl_weight(g) * (x0 + off);
        EW_SIMD for (int i = 0; i < c; ++i) {
          // (a / lambda)^k, capped where S is below 1e-288 anyway: no slow path for under- or overflow
          const double sv = w * exp(-exp(fmin(k[i] * (u - lk[i]), 6.5)));
          s0[i] += sv;
          s1[i] += sv * off;
        }
      }
      for (int i = 0; i < c; ++i) {
        i0[lane[t][i]] = s0[i];
        i1[lane[t][i]] = s1[i];
      }
    }
    for (int j = 0; j < W; ++j) {
      if (p1[j] * span <= EW_WEIBULL_STEEP) continue;
      const double g1 = exp(lgamma(1.0 + 1.0 / p1[j])), g2 = exp(lgamma(1.0 + 2.0 / p1[j]));
      const double y1 = pow((x0 + dt) / p2[j], p1[j]);
      double t0, u0, t1, u1;
      weibull_tails(x0, p1[j], p2[j], g1, g2, y1, t0, u0);
      weibull_tails(x0 + dt, p1[j], p2[j], g1, g2, y1, t1, u1);
      i0[j] = t0 - t1;
      i1[j] = -dt * t1 + u0 - u1;
    }
  } else {
    EW_SIMD for (int j = 0; j < W; ++j) {
      double t0, u0, t1, u1;
      tails<KIND>(x0, p1[j], p2[j], t0, u0);
      tails<KIND>(x0 + dt, p1[j], p2[j], t1, u1);
      i0[j] = t0 - t1;
      i1[j] = -dt * t1 + u0 - u1;
    }
  }
}

// Share of a cohort in service on average over the step `lag` steps after it entered, from the
// integrals of S over the step before (b0, b1) and this one (i0, i1) (lifetime.average_survival):
// 'end' (offset 0) entry at the end of the step, 'middle' entry spread evenly over it.
EW_HD inline double average(int lag, double dt, double offset, double b0, double b1, double i0, double i1) {
  if (offset == 0.0) return lag >= 1 ? b0 / dt : 0.0;
  return ((lag >= 1 ? b1 : 0.0) + dt * i0 - i1) / (dt * dt);
}

// The same for a tabulated lifetime from its end-of-step survival: linear within each step.
EW_HD inline double table_average(int lag, double offset, double before, double now) {
  return lag >= 1 ? 0.5 * (before + now) : offset * now;
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
