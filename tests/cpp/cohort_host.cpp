// Host build of kernels/cohort.h for the tests: the same per-scenario maths, looped over scenarios.
#include <vector>
#include "cohort.h"

extern "C" void cohort_solve_host(int n, int n_scenarios, int stock_driven, int kind, const double* p1,
                                  const double* p2, double dt, double offset, int correct, const double* driver,
                                  double* inflow, double* stock, double* outflow, int* negative) {
  std::vector<double> sf(n), x(n);
  for (long s = 0; s < n_scenarios; ++s) {
    negative[s] = ew::solve_scenario(n, stock_driven, kind, p1[s], p2[s], dt, offset, correct, driver + s,
                                     n_scenarios, inflow + s, stock + s, outflow + s, sf.data(), x.data());
  }
}
