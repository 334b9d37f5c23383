// GPU wrapper of the cohort maths in cohort.h: one thread (one lane) per scenario.
// Built at run time through CuPy (RawModule); the maths lives in cohort.h. Steps are limited to
// EW_MAX_STEPS by the per-thread scratch.
#include "cohort.h"

#ifndef EW_MAX_STEPS
#define EW_MAX_STEPS 512
#endif

extern "C" __global__ void cohort_solve(const ew::Problem p, const ew::Result r) {
  const int64_t s = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (s >= p.stride || p.n > EW_MAX_STEPS) return;
  double x[EW_MAX_STEPS];
  double sf[EW_MAX_STEPS];
  ew::solve<1>(p, r, s, s, x, sf);
}
