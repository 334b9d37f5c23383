// The compiled CPU engine: cohort.h built for the host (ewaste/host.py compiles and calls it).
// Blocks of 64 scenarios run side by side so that the compiler vectorises across scenarios; the
// last, partial block runs scenario by scenario. For trajectories a block writes into a small local
// buffer that is then streamed to the output arrays (non-temporal stores: the outputs are not read
// back, so they need not be fetched into the cache first). In summary mode (Result.summary) the
// recursion sums as it goes and no trajectory is written. Threads are the caller's: each call
// solves the scenarios [begin, end).
#include <stdint.h>
#include <string.h>

#include <vector>

#include "cohort.h"
#if defined(__SSE__)
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

struct Scratch {
  std::vector<double> x, sf, av, acc, out;
  std::vector<int64_t> negative;
};

// Scenarios s .. s + W - 1: summary sums straight into the results, or trajectories via `o`.
template <int W>
void solve_block(const ew::Problem& p, const ew::Result& r, int64_t s, Scratch& t) {
  if (r.summary != nullptr) {
    ew::solve<W>(p, r, s, s, t.x.data(), t.sf.data(), t.av.data(), t.acc.data());
    return;
  }
  const int64_t n = p.n, k = p.n_attributes, S = p.stride;
  double* o = t.out.data();
  // the block's trajectories, series after series, then its first-step survival
  const ew::Result local = {o,
                            o + n * W,
                            o + 2 * n * W,
                            o + 3 * n * W,
                            o + 4 * n * W,
                            o + (4 + k) * n * W,
                            o + (4 + 2 * k) * n * W,
                            t.negative.data(),
                            o + (4 + 3 * k) * n * W,
                            o + (4 + 3 * k) * n * W + W,
                            W,
                            nullptr};
  ew::solve<W>(p, local, s, 0, t.x.data(), t.sf.data(), t.av.data(), t.acc.data());
  double* const targets[7] = {r.inflow, r.stock, r.outflow, r.in_service, r.attr_stock, r.attr_outflow,
                              r.attr_in_service};
  const int64_t rows[7] = {n, n, n, n, k * n, k * n, k * n};
  const double* from = o;
  for (int i = 0; i < 7; ++i) {
    if (targets[i] == nullptr) {  // not asked for (the average in service without Problem.averages)
      from += rows[i] * W;
      continue;
    }
    for (int64_t m = 0; m < rows[i]; ++m, from += W) stream(targets[i] + m * S + s, from, W);
  }
  memcpy(r.negative + s, t.negative.data(), sizeof(int64_t) * W);
  memcpy(r.first_step + s, local.first_step, sizeof(double) * W);
  memcpy(r.stock_error + s, local.stock_error, sizeof(double) * W);
}
}  // namespace

extern "C" int ew_solve_range(const ew::Problem* p, const ew::Result* r, int64_t begin, int64_t end) {
  const int64_t n = p->n, k = p->n_attributes;
#if defined(__SSE__)
  // float32: subnormal floats (survival shares below 1e-38, common in a lifetime's tail) would take
  // a slow path in the CPU; flush them to zero on this thread while it runs (as GPUs do), then restore.
  const unsigned int csr = _mm_getcsr();
  if (p->single) _mm_setcsr(csr | 0x8040);  // FTZ | DAZ
#endif
  int status = 0;
  try {
    Scratch t;
    t.x.resize(n * BLOCK);
    t.sf.resize(2 * n * BLOCK);
    t.av.resize(n * BLOCK);
    t.acc.resize(ew::acc_size(p->n_attributes) * BLOCK);
    t.out.resize((4 + 3 * k) * n * BLOCK + 2 * BLOCK);
    t.negative.resize(BLOCK);
    int64_t s = begin;
    for (; s + BLOCK <= end; s += BLOCK) solve_block<BLOCK>(*p, *r, s, t);
    for (; s < end; ++s) solve_block<1>(*p, *r, s, t);
  } catch (...) {  // out of memory for the scratch: no exception may cross into Python
    status = 1;
  }
#if defined(__SSE__)
  _mm_setcsr(csr);
#endif
#if defined(__AVX__)
  _mm_sfence();  // streamed stores visible before the caller reads the results
#endif
  return status;
}

extern "C" int ew_abi_version() { return 8; }
