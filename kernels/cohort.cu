// GPU wrapper of the cohort maths in cohort.h: one thread (one lane) per scenario.
// Compiled at run time through CuPy (RawModule, see ewaste/gpu.py); the maths lives in cohort.h.
// Arguments are ew::Problem and ew::Result field by field (scalars and pointers). Steps are
// limited to EW_MAX_STEPS by the per-thread scratch; gpu.py checks before launching.
#include "cohort.h"

#ifndef EW_MAX_STEPS
#define EW_MAX_STEPS 512
#endif

extern "C" __global__ void cohort_solve(int n, int n_history, int stock_driven, int correct, int kind, int by_cohort,
                                        int n_attributes, int n_lags, long long stride, double dt, double offset,
                                        const double* p1, const double* p2, const double* driver,
                                        const double* attributes, double* inflow, double* stock, double* outflow,
                                        double* attr_stock, double* attr_outflow, long long* negative,
                                        double* first_step) {
  const int64_t s = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (s >= stride || n > EW_MAX_STEPS) return;
  const ew::Problem p = {n, n_history, stock_driven, correct, kind, by_cohort, n_attributes, n_lags, stride,
                         dt, offset, p1, p2, driver, attributes};
  const ew::Result r = {inflow, stock, outflow, attr_stock, attr_outflow, (int64_t*)negative, first_step, stride};
  double x[EW_MAX_STEPS];
  double sf[EW_MAX_STEPS];
  ew::solve<1>(p, r, s, s, x, sf);
}
