// The compiled CPU engine: cohort.h built for the host (ewaste/host.py compiles and calls it).
// Blocks of 64 scenarios run side by side so that the compiler vectorises across scenarios; the
// last, partial block runs scenario by scenario. A block writes into a small local buffer that is
// then either streamed to the output arrays (non-temporal stores: the outputs are not read back, so
// they need not be fetched into the cache first) or, in summary mode, reduced over the steps so
// that no trajectory is written at all. Threads are the caller's: each call solves the scenarios
// [begin, end).
#include <stdint.h>
#include <string.h>

#include <vector>

#include "cohort.h"
#if defined(__AVX__)
#include <immintrin.h>
#endif

// Summary mode: for every series (inflow, stock, outflow, then attr_stock and attr_outflow by
// attribute), three values per scenario: sum_m weights[m] * v[m], sum_m weights[n + m] * v[m], and
// v[last]. out is (3 + 2K, 3, S).
struct Summary {
  const double* weights;  // (2, n)
  int64_t last;           // step whose value is kept
  double* out;
};

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

// Solve scenarios s .. s + W - 1 into the local buffer `o`, then write or reduce them.
template <int W>
void solve_block(const ew::Problem& p, const ew::Result& r, const Summary* sum, int64_t s, double* x, double* sf,
                 double* o, int64_t* negative) {
  const int64_t n = p.n, k = p.n_attributes, S = p.stride;
  const ew::Result local = {o, o + n * W, o + 2 * n * W, o + 3 * n * W, o + (3 + k) * n * W,
                            negative, o + (3 + 2 * k) * n * W, W};
  ew::solve<W>(p, local, s, 0, x, sf);
  const double* from = o;
  if (sum == nullptr) {
    double* const targets[5] = {r.inflow, r.stock, r.outflow, r.attr_stock, r.attr_outflow};
    const int64_t rows[5] = {n, n, n, k * n, k * n};
    for (int t = 0; t < 5; ++t) {
      for (int64_t m = 0; m < rows[t]; ++m, from += W) stream(targets[t] + m * S + s, from, W);
    }
  } else {
    for (int64_t series = 0; series < 3 + 2 * k; ++series, from += n * W) {
      double target[W], cumulative[W];
      EW_SIMD for (int j = 0; j < W; ++j) target[j] = cumulative[j] = 0.0;
      for (int64_t m = 0; m < n; ++m) {
        const double a = sum->weights[m], b = sum->weights[n + m];
        EW_SIMD for (int j = 0; j < W; ++j) {
          target[j] += a * from[m * W + j];
          cumulative[j] += b * from[m * W + j];
        }
      }
      double* dst = sum->out + series * 3 * S + s;
      memcpy(dst, target, sizeof(double) * W);
      memcpy(dst + S, cumulative, sizeof(double) * W);
      memcpy(dst + 2 * S, from + sum->last * W, sizeof(double) * W);
    }
  }
  memcpy(r.negative + s, negative, sizeof(int64_t) * W);
  memcpy(r.first_step + s, local.first_step, sizeof(double) * W);
}
}  // namespace

extern "C" int ew_solve_range(const ew::Problem* p, const ew::Result* r, const Summary* sum, int64_t begin,
                              int64_t end) {
  const int64_t n = p->n, k = p->n_attributes;
  try {
    std::vector<double> x(n * BLOCK), sf(n * BLOCK), out((3 + 2 * k) * n * BLOCK + BLOCK);
    std::vector<int64_t> negative(BLOCK);
    int64_t s = begin;
    for (; s + BLOCK <= end; s += BLOCK) solve_block<BLOCK>(*p, *r, sum, s, x.data(), sf.data(), out.data(), negative.data());
    for (; s < end; ++s) solve_block<1>(*p, *r, sum, s, x.data(), sf.data(), out.data(), negative.data());
  } catch (...) {  // out of memory for the scratch: no exception may cross into Python
    return 1;
  }
#if defined(__AVX__)
  _mm_sfence();  // streamed stores visible before the caller reads the results
#endif
  return 0;
}

extern "C" int ew_abi_version() { return 3; }
