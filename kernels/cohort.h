// The per-scenario cohort maths of ewaste, for the GPU kernel (cohort.cu) and for the host.
//
// Everything here is __host__ __device__ and compiles as plain C++ too, so the test suite builds
// it with the system compiler and checks it against the NumPy engine (tests/test_kernels.py).
// Conventions as in docs/model.md: stocks at the end of a step, flows during it; the age of a
// cohort in the step it enters is `offset` steps (0 'end', 0.5 'middle'); lifetimes in years.
// This first version covers lifetimes that do not change by cohort (one parameter pair per
// scenario) and the stock- and inflow-driven recursions, both negative-inflow policies.
#pragma once

#ifdef __CUDACC__
#define EW_HD __host__ __device__
#else
#define EW_HD
#include <cmath>
#endif

namespace ew {

enum Lifetime { FIXED = 0, NORMAL = 1, FOLDEDNORMAL = 2, LOGNORMAL = 3, WEIBULL = 4 };

// Share of a cohort still in service at `age` years. p1, p2: mean and std (FIXED: mean only;
// LOGNORMAL: mean and std of the lifetime itself; WEIBULL: shape and scale).
EW_HD inline double survival(int kind, double age, double p1, double p2) {
  const double r2 = 1.4142135623730951;
  switch (kind) {
    case FIXED:
      return age < p1 ? 1.0 : 0.0;
    case NORMAL:
      return 0.5 * erfc((age - p1) / (p2 * r2));
    case FOLDEDNORMAL:
      if (age < 0) return 1.0;
      return 0.5 * erfc((age - p1) / (p2 * r2)) + 0.5 * erfc((age + p1) / (p2 * r2));
    case LOGNORMAL: {
      if (age <= 0) return 1.0;
      const double var = log1p((p2 / p1) * (p2 / p1));
      const double mu = log(p1) - 0.5 * var;
      return 0.5 * erfc((log(age) - mu) / (sqrt(var) * r2));
    }
    case WEIBULL:
      return exp(-pow(fmax(age, 0.0) / p2, p1));
  }
  return 0.0;
}

// One scenario over n steps. Arrays are read and written with a stride (the number of scenarios
// for an (n, S) array in C order). driver: inflow per step, or stock at the end of each step.
// sf (n) and x (n) are scratch. Returns the number of steps whose stock-driven inflow came out
// negative (corrected with ODYM's proportional early retirement when `correct`).
EW_HD inline int solve_scenario(int n, int stock_driven, int kind, double p1, double p2, double dt, double offset,
                                int correct, const double* driver, long stride, double* inflow, double* stock,
                                double* outflow, double* sf, double* x) {
  double scale = 0.0;
  for (int m = 0; m < n; ++m) {
    sf[m] = survival(kind, (m + offset) * dt, p1, p2);  // by age: sf[m, c] = sf[m - c]
    scale = fmax(scale, fabs(driver[m * stride]));
  }
  const double noise = 1e-12 * scale;
  int negative = 0;
  double previous = 0.0;
  for (int m = 0; m < n; ++m) {
    double old_total = 0.0;
    for (int c = 0; c < m; ++c) old_total += x[c] * sf[m - c];
    double given = driver[m * stride];
    double fresh = given;
    if (stock_driven) {
      fresh = (given - old_total) / sf[0];
      if (fresh * sf[0] < -noise) {
        ++negative;
        if (correct) {
          const double keep = given / old_total;
          for (int c = 0; c < m; ++c) x[c] *= keep;
          old_total *= keep;
          fresh = 0.0;
        }
      }
    }
    x[m] = fresh;
    const double now = old_total + fresh * sf[0];
    inflow[m * stride] = fresh;
    stock[m * stride] = now;
    outflow[m * stride] = previous + fresh - now;
    previous = now;
  }
  return negative;
}

}  // namespace ew
