/* The AVX2 + FMA path: 16 ymm registers, micro-tile 6×8 = 12 accumulators + 2 B vectors + 1 broadcast.
 * The only things that differ from the AVX-512 path are this micro-kernel and its block sizes. The build is
 * generic x86-64: only this file's functions use AVX2/FMA, and they run only after cpu.c has checked both the
 * CPU and the OS. */
#include "kernel.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

#define MR 6
#define NR 8

/* Row i of the micro-tile for one k: C[i, 0..3] and C[i, 4..7] += a[k·6 + i] · b[k·8 ..].
 * The empty asm statements emit nothing: they keep the broadcast (and, in STEP, the two B vectors) live until
 * the row's (step's) last FMA, so the register allocator writes every FMA into its accumulator (vfmadd231pd)
 * instead of into the dying operand's register, which made GCC rotate accumulators through extra moves and
 * cost ~7% on Zen 3 (measured). */
#define ROW(i, o)                                      \
  x = _mm256_broadcast_sd(a + (o) * MR + (i));         \
  c##i##0 = _mm256_fmadd_pd(x, b0, c##i##0);           \
  c##i##1 = _mm256_fmadd_pd(x, b1, c##i##1);           \
  __asm__("" : : "x"(x));
#define STEP(o)                                        \
  {                                                    \
    const __m256d b0 = _mm256_loadu_pd(b + (o) * NR);  \
    const __m256d b1 = _mm256_loadu_pd(b + (o) * NR + 4); \
    __m256d x;                                         \
    ROW(0, o) ROW(1, o) ROW(2, o) ROW(3, o) ROW(4, o) ROW(5, o) \
    __asm__("" : : "x"(b0), "x"(b1));                  \
  }
#define ADD(i)                                                      \
  c##i##0 = _mm256_add_pd(_mm256_loadu_pd(c + (i) * ldc), c##i##0);  \
  c##i##1 = _mm256_add_pd(_mm256_loadu_pd(c + (i) * ldc + 4), c##i##1);
#define STORE(i) _mm256_storeu_pd(c + (i) * ldc, c##i##0); _mm256_storeu_pd(c + (i) * ldc + 4, c##i##1);

static void ukr_avx2(size_t k, const double *restrict a, const double *restrict b, double *restrict c, size_t ldc,
                     int accumulate) {
  __m256d c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
  c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_pd();
  for (; k >= 4; k -= 4, a += 4 * MR, b += 4 * NR) {
    STEP(0) STEP(1) STEP(2) STEP(3)
  }
  for (; k > 0; k--, a += MR, b += NR) STEP(0)
  if (accumulate) {
    ADD(0) ADD(1) ADD(2) ADD(3) ADD(4) ADD(5)
  }
  STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5)
}

#define HP_MR MR
#define HP_NR NR
#define HP_UKR ukr_avx2
#define HP_TILE tile_avx2
#define HP_COMP_CW 4
#define HP_COMP_RB 3
#define HP_TILE_COMP tile_comp_avx2
#include "driver.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

const hpair_path hpair_path_avx2 = {"avx2", MR, NR, HPAIR_KC, ukr_avx2, tile_avx2, tile_comp_avx2};

#else
const hpair_path hpair_path_avx2 = {"avx2", 6, 8, HPAIR_KC, 0, 0, 0};
#endif
