// GPU wrapper of the cohort maths in cohort.h: one thread per scenario, arrays (n, S) in C order.
// Built at run time through CuPy (RawModule); the maths lives in cohort.h.
#include "cohort.h"

#ifndef EW_MAX_STEPS
#define EW_MAX_STEPS 512
#endif

extern "C" __global__ void cohort_solve(int n, int n_scenarios, int stock_driven, int kind, const double* p1,
                                        const double* p2, double dt, double offset, int correct,
                                        const double* driver, double* inflow, double* stock, double* outflow,
                                        int* negative) {
  const long s = blockIdx.x * (long)blockDim.x + threadIdx.x;
  if (s >= n_scenarios || n > EW_MAX_STEPS) return;
  double sf[EW_MAX_STEPS];
  double x[EW_MAX_STEPS];
  negative[s] = ew::solve_scenario(n, stock_driven, kind, p1[s], p2[s], dt, offset, correct, driver + s,
                                   n_scenarios, inflow + s, stock + s, outflow + s, sf, x);
}
