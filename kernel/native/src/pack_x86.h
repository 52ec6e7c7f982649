/* Packing on 256-bit vectors (AVX2), for the x86 paths' packing kernels (driver.h's HP_PACK_PANEL): included by
 * path_avx2.c and path_avx512.c inside their target regions, before driver.h.
 *
 * A row's k run is contiguous interleaved complex in expp, so one 256-bit load holds a row's (re, im) at k and
 * k + 1; four such rows transposed in registers give the panel's Re and Im at k and k + 1 for those four rows, as
 * vectors to store, where the driver's loop gathers one value per row and k. Every packed value is the scalar
 * formula's IEEE operation on the same operands, lane by lane: e − ref, then (e − ref) / d for B (d repeated for
 * re and im), then Re + Im (A) or Re − Im (B) of those values; padding rows are masked to +0 after the
 * arithmetic, so they come out as the loop's zeros. */
#ifndef HPAIR_PACK_X86_H
#define HPAIR_PACK_X86_H

#include <immintrin.h>
#include <stddef.h>

/* A row's (re, im) at k and k + 1, minus the reference's (R), divided by (D) for B; zeroed where `keep` is zero. */
static inline __attribute__((always_inline)) __m256d hp_x86_row2(const double *e, __m256d R, __m256d D, const int DIVIDE,
                                                                 const int FULL, __m256d keep) {
  __m256d v = _mm256_sub_pd(_mm256_loadu_pd(e), R);
  if (DIVIDE) v = _mm256_div_pd(v, D);
  return FULL ? v : _mm256_and_pd(v, keep);
}

/* (d[k], d[k], d[k + 1], d[k + 1]): each quotient's divisor beside its re and im. */
static inline __attribute__((always_inline)) __m256d hp_x86_dup2(const double *d) {
  return _mm256_permute4x64_pd(_mm256_castpd128_pd256(_mm_loadu_pd(d)), 0x50);
}

/* Stores Re, Im and Re ± Im of one k for consecutive panel rows. */
static inline __attribute__((always_inline)) void hp_x86_put4(__m256d re, __m256d im, const int DIVIDE, double *o0,
                                                              double *o1, double *o2) {
  _mm256_storeu_pd(o0, re);
  _mm256_storeu_pd(o1, im);
  _mm256_storeu_pd(o2, DIVIDE ? _mm256_sub_pd(re, im) : _mm256_add_pd(re, im));
}
static inline __attribute__((always_inline)) void hp_x86_put2(__m128d re, __m128d im, const int DIVIDE, double *o0,
                                                              double *o1, double *o2) {
  _mm_storeu_pd(o0, re);
  _mm_storeu_pd(o1, im);
  _mm_storeu_pd(o2, DIVIDE ? _mm_sub_pd(re, im) : _mm_add_pd(re, im));
}

/* Four rows' (re k, im k, re k+1, im k+1), v0 … v3, transposed: the four rows' Re and Im at k and at k + 1. */
static inline __attribute__((always_inline)) void hp_x86_t4x2(__m256d v0, __m256d v1, __m256d v2, __m256d v3,
                                                              __m256d re[2], __m256d im[2]) {
  const __m256d t0 = _mm256_unpacklo_pd(v0, v1), t1 = _mm256_unpackhi_pd(v0, v1); /* (x0 x1 | x0' x1') */
  const __m256d t2 = _mm256_unpacklo_pd(v2, v3), t3 = _mm256_unpackhi_pd(v2, v3);
  re[0] = _mm256_permute2f128_pd(t0, t2, 0x20), im[0] = _mm256_permute2f128_pd(t1, t3, 0x20);
  re[1] = _mm256_permute2f128_pd(t0, t2, 0x31), im[1] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

/* Panel rows jb … jb + 3 at k and k + 1 (o* point at the panel's k, column jb; w doubles per k), from v0 … v3 as
 * hp_x86_t4x2 takes them. */
static inline __attribute__((always_inline)) void hp_x86_4x2(__m256d v0, __m256d v1, __m256d v2, __m256d v3, size_t w,
                                                             const int DIVIDE, double *o0, double *o1, double *o2) {
  __m256d re[2], im[2];
  hp_x86_t4x2(v0, v1, v2, v3, re, im);
  hp_x86_put4(re[0], im[0], DIVIDE, o0, o1, o2);
  hp_x86_put4(re[1], im[1], DIVIDE, o0 + w, o1 + w, o2 + w);
}

/* Panel rows jb, jb + 1 at k and k + 1, from the two rows' (re k, im k, re k+1, im k+1). */
static inline __attribute__((always_inline)) void hp_x86_2x2(__m256d v0, __m256d v1, size_t w, const int DIVIDE, double *o0,
                                                             double *o1, double *o2) {
  const __m256d re = _mm256_unpacklo_pd(v0, v1), im = _mm256_unpackhi_pd(v0, v1); /* (k: x0 x1 | k+1: x0 x1) */
  hp_x86_put2(_mm256_castpd256_pd128(re), _mm256_castpd256_pd128(im), DIVIDE, o0, o1, o2);
  hp_x86_put2(_mm256_extractf128_pd(re, 1), _mm256_extractf128_pd(im, 1), DIVIDE, o0 + w, o1 + w, o2 + w);
}

/* All ones for a live row, zeros for padding. */
static inline __attribute__((always_inline)) __m256d hp_x86_keep(size_t jj, size_t live) {
  return _mm256_castsi256_pd(_mm256_set1_epi64x(jj < live ? -1 : 0));
}

/* Rows jb … jb + 3 (FOUR) or jb, jb + 1 of the panel at k and k + 1, from rp[jb …] (driver.h's row pointers, at m0);
 * R and D as hp_x86_row2 takes them, at k. */
static inline __attribute__((always_inline)) void hp_x86_rows_k2(const double *const *rp, size_t jb, const int FOUR,
                                                                 size_t live, size_t k, __m256d R, __m256d D, size_t w,
                                                                 const int DIVIDE, const int FULL, double *o0, double *o1,
                                                                 double *o2) {
  const __m256d v0 = hp_x86_row2(rp[jb] + 2 * k, R, D, DIVIDE, FULL, FULL ? R : hp_x86_keep(jb, live));
  const __m256d v1 = hp_x86_row2(rp[jb + 1] + 2 * k, R, D, DIVIDE, FULL, FULL ? R : hp_x86_keep(jb + 1, live));
  if (FOUR) {
    const __m256d v2 = hp_x86_row2(rp[jb + 2] + 2 * k, R, D, DIVIDE, FULL, FULL ? R : hp_x86_keep(jb + 2, live));
    const __m256d v3 = hp_x86_row2(rp[jb + 3] + 2 * k, R, D, DIVIDE, FULL, FULL ? R : hp_x86_keep(jb + 3, live));
    hp_x86_4x2(v0, v1, v2, v3, w, DIVIDE, o0, o1, o2);
  } else {
    hp_x86_2x2(v0, v1, w, DIVIDE, o0, o1, o2);
  }
}

#endif
