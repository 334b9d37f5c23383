// The compiled CPU engine: cohort.h built for the host (ewaste/host.py compiles and calls it).
// Blocks of 64 scenarios run side by side so that the compiler vectorises across scenarios; the
// last, partial block runs scenario by scenario. A block writes into a small local buffer that is
// then streamed to the output arrays (non-temporal stores: the outputs are not read back, so they
// need not be fetched into the cache first). Threads are the caller's: each call solves the
// scenarios [begin, end).
#include <stdint.h>
#include <string.h>

#include <vector>

#include "cohort.h"
#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace {
constexpr int BLOCK = 64;

// dst[0 .. w) = src[0 .. w), bypassing the cache where the CPU allows.
void stream(double* dst, const double* src, int w) {
#if defined(__AVX__)
  int j = 0;
  for (; j < w && ((uintptr_t)(dst + j) & 31); ++j) dst[j] = src[j];
  for (; j + 4 <= w; j += 4) _mm256_stream_pd(dst + j, _mm256_loadu_pd(src + j));
  for (; j < w; ++j) dst[j] = src[j];
#else
  memcpy(dst, src, sizeof(double) * w);
#endif
}
}  // namespace

extern "C" int ew_solve_range(const ew::Problem* p, const ew::Result* r, int64_t begin, int64_t end) {
  const int64_t n = p->n, k = p->n_attributes, S = p->stride;
  try {
    std::vector<double> x(n * BLOCK), sf(n * BLOCK), out((3 + 2 * k) * n * BLOCK + BLOCK);
    std::vector<int64_t> negative(BLOCK);
    double* o = out.data();
    const ew::Result local = {o, o + n * BLOCK, o + 2 * n * BLOCK, o + 3 * n * BLOCK, o + (3 + k) * n * BLOCK,
                              negative.data(), o + (3 + 2 * k) * n * BLOCK, BLOCK};
    double* const targets[5] = {r->inflow, r->stock, r->outflow, r->attr_stock, r->attr_outflow};
    const int64_t rows[5] = {n, n, n, k * n, k * n};
    int64_t s = begin;
    for (; s + BLOCK <= end; s += BLOCK) {
      ew::solve<BLOCK>(*p, local, s, 0, x.data(), sf.data());
      const double* from = o;
      for (int t = 0; t < 5; ++t) {
        for (int64_t m = 0; m < rows[t]; ++m, from += BLOCK) stream(targets[t] + m * S + s, from, BLOCK);
      }
      memcpy(r->negative + s, negative.data(), sizeof(int64_t) * BLOCK);
      memcpy(r->first_step + s, local.first_step, sizeof(double) * BLOCK);
    }
    for (; s < end; ++s) ew::solve<1>(*p, *r, s, s, x.data(), sf.data());
  } catch (...) {  // out of memory for the scratch: no exception may cross into Python
    return 1;
  }
#if defined(__AVX__)
  _mm_sfence();  // streamed stores visible before the caller reads the results
#endif
  return 0;
}

extern "C" int ew_abi_version() { return 2; }
