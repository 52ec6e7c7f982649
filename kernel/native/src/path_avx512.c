/* The AVX-512F path: 32 zmm registers, micro-tile 12×16 = 24 accumulators + 2 B vectors + 1 broadcast
 * (or an embedded {1to8} broadcast operand). Structurally the AVX2 path with a wider micro-kernel: the same
 * driver.h, the same kc; only this micro-kernel, its packing kernel and mr/nr differ. Each element's block sum is
 * the same FMA chains joined by the same tree (block_tree.h), and each packed value the same IEEE operation, so this
 * path gives the AVX2 path's bits. Only this file's functions use AVX-512F (and AVX2, in pack_x86.h's pieces), and
 * they run only after cpu.c has checked the CPU and the OS's ZMM state. */
#include "kernel.h"

/* This path's block sizes, its only copy: the micro-tile, and the compensated kernel's pass (rows × columns). */
#define MR 12
#define NR 16
#define HP_COMP_RB 4
#define HP_COMP_CW 8

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "cpu.h"
#include "peak_loop.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
#endif

#include "block_tree.h"


/* Row i of the micro-tile for one k: C[i, 0..7] and C[i, 8..15] += a[k·12 + i] · b[k·16 ..].
 * The empty asm statements emit nothing: as in the AVX2 path, they keep the broadcast and the two B vectors live
 * to their last FMA so that every FMA accumulates in place (vfmadd231pd), with no register shuffling. */
#define ROW(i, o)                                          \
  x = _mm512_set1_pd(a[(o) * MR + (i)]);                   \
  c##i##_0 = _mm512_fmadd_pd(x, b0, c##i##_0);             \
  c##i##_1 = _mm512_fmadd_pd(x, b1, c##i##_1);             \
  __asm__("" : : "v"(x));
#define STEP(o)                                            \
  {                                                        \
    const __m512d b0 = _mm512_loadu_pd(b + (o) * NR);      \
    const __m512d b1 = _mm512_loadu_pd(b + (o) * NR + 8);  \
    __m512d x;                                             \
    ROW(0, o) ROW(1, o) ROW(2, o) ROW(3, o) ROW(4, o) ROW(5, o) \
    ROW(6, o) ROW(7, o) ROW(8, o) ROW(9, o) ROW(10, o) ROW(11, o) \
    __asm__("" : : "v"(b0), "v"(b1));                      \
  }
/* The tree of block_tree.h on the accumulators: X = T + X for row i of level T, the older sum on the left. */
#define MERGE(i)                                                        \
  c##i##_0 = _mm512_add_pd(_mm512_load_pd(T + (i) * NR), c##i##_0);     \
  c##i##_1 = _mm512_add_pd(_mm512_load_pd(T + (i) * NR + 8), c##i##_1);
#define KEEP(i) _mm512_store_pd(T + (i) * NR, c##i##_0); _mm512_store_pd(T + (i) * NR + 8, c##i##_1);
#define ADD(i)                                                        \
  c##i##_0 = _mm512_add_pd(_mm512_loadu_pd(c + (i) * ldc), c##i##_0);  \
  c##i##_1 = _mm512_add_pd(_mm512_loadu_pd(c + (i) * ldc + 8), c##i##_1);
#define STORE(i) _mm512_storeu_pd(c + (i) * ldc, c##i##_0); _mm512_storeu_pd(c + (i) * ldc + 8, c##i##_1);
#define ALL(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

static void ukr_avx512(size_t k, const double *restrict a, const double *restrict b, double *restrict c,
                       size_t ldc, int accumulate) {
  __m512d c0_0, c0_1, c1_0, c1_1, c2_0, c2_1, c3_0, c3_1, c4_0, c4_1, c5_0, c5_1;
  __m512d c6_0, c6_1, c7_0, c7_1, c8_0, c8_1, c9_0, c9_1, c10_0, c10_1, c11_0, c11_1;
  HP_TREE_UKR(MR * NR,
              c0_0 = c0_1 = c1_0 = c1_1 = c2_0 = c2_1 = c3_0 = c3_1 = c4_0 = c4_1 = c5_0 = c5_1 = _mm512_setzero_pd();
              c6_0 = c6_1 = c7_0 = c7_1 = c8_0 = c8_1 = c9_0 = c9_1 = c10_0 = c10_1 = c11_0 = c11_1 = _mm512_setzero_pd();,
              STEP(0) STEP(1) STEP(2) STEP(3) a += 4 * MR; b += 4 * NR;,
              STEP(0) a += MR; b += NR;,
              ALL(MERGE),
              ALL(KEEP),
              if (accumulate) { ALL(ADD) } ALL(STORE))
}

#include "pack_x86.h"

#if MR % 4 != 0 || NR % 8 != 0
#error "the packing kernels take rows in eights and fours, B's in eights"
#endif

/* Eight rows' k run of four complex values (v[j]: row j, Re and Im interleaved) transposed: re[t] and im[t] hold
 * k + t of all eight rows. */
static inline __attribute__((always_inline)) void transpose_8x4(const __m512d v[8], __m512d re[4], __m512d im[4]) {
  const __m512i even = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0), odd = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
  __m512d lo[4], hi[4], u[8];
  for (int j = 0; j < 4; j++) lo[j] = _mm512_unpacklo_pd(v[2 * j], v[2 * j + 1]), hi[j] = _mm512_unpackhi_pd(v[2 * j], v[2 * j + 1]);
  /* u[0]: element 0 | 4 of rows 0-3, u[1]: 2 | 6 of rows 0-3, u[2], u[3]: the same of rows 4-7; u[4 …]: odd elements */
  u[0] = _mm512_permutex2var_pd(lo[0], even, lo[1]), u[1] = _mm512_permutex2var_pd(lo[0], odd, lo[1]);
  u[2] = _mm512_permutex2var_pd(lo[2], even, lo[3]), u[3] = _mm512_permutex2var_pd(lo[2], odd, lo[3]);
  u[4] = _mm512_permutex2var_pd(hi[0], even, hi[1]), u[5] = _mm512_permutex2var_pd(hi[0], odd, hi[1]);
  u[6] = _mm512_permutex2var_pd(hi[2], even, hi[3]), u[7] = _mm512_permutex2var_pd(hi[2], odd, hi[3]);
  /* element e of all eight rows: Re of k + e/2 for even e, Im for odd e */
  re[0] = _mm512_shuffle_f64x2(u[0], u[2], 0x44), re[2] = _mm512_shuffle_f64x2(u[0], u[2], 0xEE);
  re[1] = _mm512_shuffle_f64x2(u[1], u[3], 0x44), re[3] = _mm512_shuffle_f64x2(u[1], u[3], 0xEE);
  im[0] = _mm512_shuffle_f64x2(u[4], u[6], 0x44), im[2] = _mm512_shuffle_f64x2(u[4], u[6], 0xEE);
  im[1] = _mm512_shuffle_f64x2(u[5], u[7], 0x44), im[3] = _mm512_shuffle_f64x2(u[5], u[7], 0xEE);
}

/* This path's packing kernel (driver.h's HP_PACK_PANEL): the panel's rows in eights, four k per step, so that one
 * 512-bit load holds a row's four complex values, transposed 8 × 8 in registers (Re and Im of each k for eight
 * rows); a last four rows as pack_x86.h does them. Eight rows at a time over the whole k run: rows whose stride is
 * a large power of two fall in the same L1 sets, so a panel's sixteen rows read together would evict each other's
 * lines before their next k. FULL: no padding rows, so no masking. */
static inline __attribute__((always_inline)) size_t pack_panel_avx512(const double *const *rp, size_t live,
                                                                      const double *ref, const double *dist, size_t kc,
                                                                      const size_t w, const int DIVIDE, const int FULL,
                                                                      double *restrict q0, double *restrict q1,
                                                                      double *restrict q2) {
  const __m512i dup = _mm512_set_epi64(3, 3, 2, 2, 1, 1, 0, 0); /* (d[k], d[k], …, d[k + 3], d[k + 3]) */
  const size_t kend = kc / 4 * 4;
  size_t jb = 0;
  for (; jb + 8 <= w; jb += 8) {
    for (size_t k = 0; k < kend; k += 4) {
      const __m512d R = _mm512_loadu_pd(ref + 2 * k);
      const __m512d D = DIVIDE ? _mm512_permutexvar_pd(dup, _mm512_castpd256_pd512(_mm256_loadu_pd(dist + k))) : R;
      __m512d v[8];
      for (int j = 0; j < 8; j++) {
        v[j] = _mm512_sub_pd(_mm512_loadu_pd(rp[jb + j] + 2 * k), R);
        if (DIVIDE) v[j] = _mm512_div_pd(v[j], D);
        if (!FULL) v[j] = _mm512_maskz_mov_pd(jb + j < live ? 0xFF : 0, v[j]);
      }
      __m512d re[4], im[4];
      transpose_8x4(v, re, im);
      for (int t = 0; t < 4; t++) {
        const size_t o = (k + t) * w + jb;
        _mm512_storeu_pd(q0 + o, re[t]);
        _mm512_storeu_pd(q1 + o, im[t]);
        _mm512_storeu_pd(q2 + o, DIVIDE ? _mm512_sub_pd(re[t], im[t]) : _mm512_add_pd(re[t], im[t]));
      }
    }
  }
  if (jb < w) {
    /* the last four rows, two k at a time */
    for (size_t k = 0; k < kend; k += 2) {
      const __m256d R = _mm256_loadu_pd(ref + 2 * k), D = DIVIDE ? hp_x86_dup2(dist + k) : R;
      const size_t o = k * w + jb;
      hp_x86_rows_k2(rp, jb, 1, live, k, R, D, w, DIVIDE, FULL, q0 + o, q1 + o, q2 + o);
    }
  }
  return kend;
}

/* The fused kernel of one B micro-panel on the diagonal (driver.h's HP_PACK_PANEL_AB): as pack_panel_avx512 for
 * B, with the eight rows' Re and Im of each k, before the division, also stored as A's, in halves of four rows (four
 * consecutive lanes of one A panel, since mr is a multiple of four); B's quotients after the transpose, each k's
 * eight rows divided by that k's distance. FULL: no padding rows. */
static inline __attribute__((always_inline)) size_t pack_panel_ab_avx512(
    const double *const *rp, size_t live, const size_t *aoff, const double *ref, const double *dist, size_t kc,
    const int FULL, double *restrict q0, double *restrict q1, double *restrict q2, double *restrict a0p,
    double *restrict a1p, double *restrict a2p) {
  const size_t kend = kc / 4 * 4;
  for (size_t jb = 0; jb < NR; jb += 8) {
    const size_t lo = aoff[jb], hi = aoff[jb + 4]; /* each half's A offset, or SIZE_MAX */
    const __mmask8 keep = FULL ? 0xFF : (__mmask8)(jb >= live ? 0 : live - jb >= 8 ? 0xFF : (1u << (live - jb)) - 1);
    for (size_t k = 0; k < kend; k += 4) {
      const __m512d R = _mm512_loadu_pd(ref + 2 * k);
      __m512d v[8];
      for (int j = 0; j < 8; j++) {
        v[j] = _mm512_sub_pd(_mm512_loadu_pd(rp[jb + j] + 2 * k), R);
        if (!FULL) v[j] = _mm512_maskz_mov_pd(jb + j < live ? 0xFF : 0, v[j]);
      }
      __m512d re[4], im[4];
      transpose_8x4(v, re, im);
      for (int t = 0; t < 4; t++) {
        const __m512d s = _mm512_add_pd(re[t], im[t]);
        const size_t ka = (k + t) * MR;
        if (lo != SIZE_MAX) {
          _mm256_storeu_pd(a0p + lo + ka, _mm512_castpd512_pd256(re[t]));
          _mm256_storeu_pd(a1p + lo + ka, _mm512_castpd512_pd256(im[t]));
          _mm256_storeu_pd(a2p + lo + ka, _mm512_castpd512_pd256(s));
        }
        if (hi != SIZE_MAX) {
          _mm256_storeu_pd(a0p + hi + ka, _mm512_extractf64x4_pd(re[t], 1));
          _mm256_storeu_pd(a1p + hi + ka, _mm512_extractf64x4_pd(im[t], 1));
          _mm256_storeu_pd(a2p + hi + ka, _mm512_extractf64x4_pd(s, 1));
        }
        const __m512d d = _mm512_set1_pd(dist[k + t]);
        const __m512d br = FULL ? _mm512_div_pd(re[t], d) : _mm512_maskz_div_pd(keep, re[t], d);
        const __m512d bi = FULL ? _mm512_div_pd(im[t], d) : _mm512_maskz_div_pd(keep, im[t], d);
        const size_t o = (k + t) * NR + jb;
        _mm512_storeu_pd(q0 + o, br);
        _mm512_storeu_pd(q1 + o, bi);
        _mm512_storeu_pd(q2 + o, _mm512_sub_pd(br, bi));
      }
    }
  }
  return kend;
}

#define HP_PACK_PANEL pack_panel_avx512
#define HP_PACK_PANEL_AB pack_panel_ab_avx512
#define HP_MR MR
#define HP_NR NR
#define HP_UKR ukr_avx512
#define HP_TILE tile_avx512
#define HP_TILE_COMP tile_comp_avx512
#define HP_PACK_TEST pack_avx512
#define HP_VFMA _mm512_fmadd_pd
#define HP_VSPLAT _mm512_set1_pd
#define HP_VFNMA _mm512_fnmadd_pd
#include "driver.h"

static volatile double sink;

/* Returns flops per second; runs whole batches until `seconds` have passed. */
static double run_avx512(double seconds) {
  const __m512d m = _mm512_set1_pd(HPAIR_PEAK_M), a = _mm512_set1_pd(HPAIR_PEAK_A);
  __m512d c0 = _mm512_set1_pd(1.00), c1 = _mm512_set1_pd(1.01), c2 = _mm512_set1_pd(1.02), c3 = _mm512_set1_pd(1.03);
  __m512d c4 = _mm512_set1_pd(1.04), c5 = _mm512_set1_pd(1.05), c6 = _mm512_set1_pd(1.06), c7 = _mm512_set1_pd(1.07);
  __m512d c8 = _mm512_set1_pd(1.08), c9 = _mm512_set1_pd(1.09), c10 = _mm512_set1_pd(1.10), c11 = _mm512_set1_pd(1.11);
  __m512d c12 = _mm512_set1_pd(1.12), c13 = _mm512_set1_pd(1.13), c14 = _mm512_set1_pd(1.14), c15 = _mm512_set1_pd(1.15);
  uint64_t iterations = 0;
  const double start = hpair_now_seconds();
  double elapsed;
  do {
    for (int i = 0; i < HPAIR_PEAK_BATCH; i++) {
      c0 = _mm512_fmadd_pd(c0, m, a), c1 = _mm512_fmadd_pd(c1, m, a), c2 = _mm512_fmadd_pd(c2, m, a), c3 = _mm512_fmadd_pd(c3, m, a);
      c4 = _mm512_fmadd_pd(c4, m, a), c5 = _mm512_fmadd_pd(c5, m, a), c6 = _mm512_fmadd_pd(c6, m, a), c7 = _mm512_fmadd_pd(c7, m, a);
      c8 = _mm512_fmadd_pd(c8, m, a), c9 = _mm512_fmadd_pd(c9, m, a), c10 = _mm512_fmadd_pd(c10, m, a), c11 = _mm512_fmadd_pd(c11, m, a);
      c12 = _mm512_fmadd_pd(c12, m, a), c13 = _mm512_fmadd_pd(c13, m, a), c14 = _mm512_fmadd_pd(c14, m, a), c15 = _mm512_fmadd_pd(c15, m, a);
      /* Keeps the loop as written: no reassociation of the chains across iterations. */
      __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5), "+v"(c6), "+v"(c7));
      __asm__ volatile("" : "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11), "+v"(c12), "+v"(c13), "+v"(c14), "+v"(c15));
    }
    iterations += HPAIR_PEAK_BATCH;
    elapsed = hpair_now_seconds() - start;
  } while (elapsed < seconds);
  __m512d s = _mm512_add_pd(_mm512_add_pd(_mm512_add_pd(c0, c1), _mm512_add_pd(c2, c3)), _mm512_add_pd(_mm512_add_pd(c4, c5), _mm512_add_pd(c6, c7)));
  s = _mm512_add_pd(s, _mm512_add_pd(_mm512_add_pd(_mm512_add_pd(c8, c9), _mm512_add_pd(c10, c11)), _mm512_add_pd(_mm512_add_pd(c12, c13), _mm512_add_pd(c14, c15))));
  double lanes[8];
  _mm512_storeu_pd(lanes, s);
  sink = lanes[0] + lanes[7];
  return (double)iterations * 16 /* chains */ * 8 /* lanes */ * 2 /* flops per FMA */ / elapsed;
}


#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

static const char *why_not_avx512(void) {
  const hpair_cpu *cpu = hpair_cpu_get();
  return cpu->avx512f ? NULL : cpu->avx512_reason;
}

const hpair_path hpair_path_avx512 = {"avx512", MR, NR, HPAIR_KC, 64, HP_COMP_RB, HP_COMP_CW, 240, 8, 1,
                                    why_not_avx512, ukr_avx512, tile_avx512, tile_comp_avx512, run_avx512, pack_avx512};

#else
static const char *why_not_avx512(void) { return "not an x86-64 build"; }
const hpair_path hpair_path_avx512 = {"avx512", MR, NR, HPAIR_KC, 64, HP_COMP_RB, HP_COMP_CW, 240, 8, 0, why_not_avx512, 0, 0, 0, 0, 0};
#endif
