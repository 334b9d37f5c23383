// The lifetime maths of ewaste's compiled engines: survival S(age) of each lifetime type, and its
// integrals over a step (the average in service). Included by cohort.h (the recursion); the same
// formulas as ewaste/engine/lifetime.py, which tests/test_host.py and tests/test_in_service.py
// check them against. Everything here is __host__ __device__ and compiles as plain C++17 too.
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

// TABLE: survival by age given as a table (tabulated lifetimes), read from p1.
enum Lifetime { FIXED = 0, NORMAL = 1, FOLDEDNORMAL = 2, LOGNORMAL = 3, WEIBULL = 4, TABLE = 5 };

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

}  // namespace ew
