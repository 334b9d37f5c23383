// GPU wrapper of the cohort maths in cohort.h: one thread (one lane) per scenario.
// Compiled at run time through CuPy (RawModule, see ewaste/gpu.py); the maths lives in cohort.h.
// Arguments are ew::Problem and ew::Result field by field (scalars and pointers). The per-thread
// scratch limits the steps to EW_MAX_STEPS and, in summary mode, the attributes to
// EW_MAX_ATTRIBUTES; gpu.py checks both before launching.
#include "cohort.h"

#ifndef EW_MAX_STEPS
#define EW_MAX_STEPS 512
#endif
#ifndef EW_MAX_ATTRIBUTES
#define EW_MAX_ATTRIBUTES 24
#endif

extern "C" __global__ void cohort_solve(int n, int n_history, int stock_driven, int correct, int kind, int by_cohort,
                                        int n_attributes, int n_lags, int single, int installed_base, int averages,
                                        int driver_shared,
                                        long long stride,
                                        double dt, double offset,
                                        const double* p1, const double* p2, const double* driver,
                                        const double* attributes, const double* weights, long long last,
                                        double* inflow, double* stock, double* outflow, double* in_service,
                                        double* attr_stock, double* attr_outflow, double* attr_in_service,
                                        long long* negative, double* first_step, double* stock_error,
                                        double* summary) {
  const int64_t s = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (s >= stride || n > EW_MAX_STEPS || n_attributes > EW_MAX_ATTRIBUTES) return;
  const ew::Problem p = {n,      n_history, stock_driven,   correct,  kind,          by_cohort,
                         n_attributes, n_lags, single, installed_base, averages, driver_shared,
                         stride, dt,  offset, p1,       p2,       driver,        attributes,
                         weights, last};
  const ew::Result r = {inflow,          stock,    outflow,           in_service, attr_stock,  attr_outflow,
                        attr_in_service, (int64_t*)negative, first_step, stock_error, stride,      summary};
  double x[EW_MAX_STEPS];
  double sf[2 * EW_MAX_STEPS];
  double av[EW_MAX_STEPS];
  double acc[(4 + 3 * EW_MAX_ATTRIBUTES) * 3 + EW_MAX_ATTRIBUTES];
  ew::solve<1>(p, r, s, s, x, sf, av, acc);
}
