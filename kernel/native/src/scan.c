/* The non-finite scan that runs over all of expp before H is computed. x − x is +0 (all bits clear) for every
 * finite x and NaN for NaN and ±Infinity, so OR-ing x − x over a block is non-zero exactly when the block holds
 * a non-finite value; only then is the block searched element by element for the first one. */
#include "scan.h"

#include "cpu.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HP_SCAN_X86 1
#endif

static int64_t first_in(const double *v, size_t i, size_t end) {
  for (; i < end; i++)
    if (v[i] - v[i] != 0) return (int64_t)i; /* NaN compares unequal to everything */
  return -1;
}

#ifdef HP_SCAN_X86
/* 16 values per step in four independent OR chains; vptest decides. */
__attribute__((target("avx"))) static int64_t scan_avx(const double *v, size_t start, size_t end) {
  size_t i = start;
  for (; i + 16 <= end; i += 16) {
    __m256d x0 = _mm256_loadu_pd(v + i), x1 = _mm256_loadu_pd(v + i + 4);
    __m256d x2 = _mm256_loadu_pd(v + i + 8), x3 = _mm256_loadu_pd(v + i + 12);
    __m256d o = _mm256_or_pd(_mm256_or_pd(_mm256_sub_pd(x0, x0), _mm256_sub_pd(x1, x1)),
                             _mm256_or_pd(_mm256_sub_pd(x2, x2), _mm256_sub_pd(x3, x3)));
    __m256i bits = _mm256_castpd_si256(o);
    if (!_mm256_testz_si256(bits, bits)) return first_in(v, i, i + 16);
  }
  return first_in(v, i, end);
}

/* The x86-64 baseline (SSE2): 8 values per step. */
static int64_t scan_sse2(const double *v, size_t start, size_t end) {
  size_t i = start;
  const __m128i zero = _mm_setzero_si128();
  for (; i + 8 <= end; i += 8) {
    __m128d x0 = _mm_loadu_pd(v + i), x1 = _mm_loadu_pd(v + i + 2);
    __m128d x2 = _mm_loadu_pd(v + i + 4), x3 = _mm_loadu_pd(v + i + 6);
    __m128d o = _mm_or_pd(_mm_or_pd(_mm_sub_pd(x0, x0), _mm_sub_pd(x1, x1)),
                          _mm_or_pd(_mm_sub_pd(x2, x2), _mm_sub_pd(x3, x3)));
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_castpd_si128(o), zero)) != 0xffff) return first_in(v, i, i + 8);
  }
  return first_in(v, i, end);
}
#endif

int64_t hpair_scan_non_finite(const double *values, size_t start, size_t end) {
#ifdef HP_SCAN_X86
  /* AVX's YMM state is enabled whenever AVX2 + FMA are (cpu.c checks XCR0 there). */
  if (hpair_cpu_get()->avx2_fma) return scan_avx(values, start, end);
  return scan_sse2(values, start, end);
#else
  return first_in(values, start, end);
#endif
}
