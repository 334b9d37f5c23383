// The compiled CPU engine: cohort.h built for the host (ewaste/host.py compiles and calls it).
// Blocks of 64 scenarios run side by side so that the compiler vectorises across scenarios; the
// last, partial block runs scenario by scenario. Threads are the caller's: each call solves the
// scenarios [begin, end).
#include <vector>

#include "cohort.h"

namespace {
constexpr int BLOCK = 64;
}

extern "C" int ew_solve_range(const ew::Problem* p, const ew::Result* r, int64_t begin, int64_t end) {
  try {
    std::vector<double> x((size_t)p->n * BLOCK), sf((size_t)p->n * BLOCK);
    int64_t s = begin;
    for (; s + BLOCK <= end; s += BLOCK) ew::solve<BLOCK>(*p, *r, s, x.data(), sf.data());
    for (; s < end; ++s) ew::solve<1>(*p, *r, s, x.data(), sf.data());
  } catch (...) {  // out of memory for the scratch: no exception may cross into Python
    return 1;
  }
  return 0;
}

extern "C" int ew_abi_version() { return 1; }
