/* The AVX2 + FMA path: 16 ymm registers, micro-tile 6×8 = 12 accumulators + 2 B vectors + 1 broadcast.
 * The only things that differ from the AVX-512 path are this micro-kernel, its packing kernel and its block
 * sizes. The build is generic x86-64: only this file's functions use AVX2/FMA, and they run only after cpu.c has
 * checked both the CPU and the OS. */
#include "kernel.h"

/* This path's block sizes, its only copy: the micro-tile, and the compensated kernel's pass (rows × columns). */
#define MR 6
#define NR 8
#define HP_COMP_RB 4
#define HP_COMP_CW 4

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "cpu.h"
#include "peak_loop.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

#include "block_tree.h"


/* Row i of the micro-tile for one k: C[i, 0..3] and C[i, 4..7] += a[k·6 + i] · b[k·8 ..].
 * The empty asm statements emit nothing: they keep the broadcast (and, in STEP, the two B vectors) live until
 * the row's (step's) last FMA, so the register allocator writes every FMA into its accumulator (vfmadd231pd)
 * instead of into the dying operand's register: otherwise GCC rotates accumulators through extra moves, which
 * the single-thread tile bench (kernel/native/bench-tile.mjs --path avx2) shows as a slower tile. */
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
/* The tree of block_tree.h on the accumulators: X = T + X for row i of level T, the older sum on the left. */
#define MERGE(i)                                                    \
  c##i##0 = _mm256_add_pd(_mm256_load_pd(T + (i) * NR), c##i##0);   \
  c##i##1 = _mm256_add_pd(_mm256_load_pd(T + (i) * NR + 4), c##i##1);
#define KEEP(i) _mm256_store_pd(T + (i) * NR, c##i##0); _mm256_store_pd(T + (i) * NR + 4, c##i##1);
#define ADD(i)                                                      \
  c##i##0 = _mm256_add_pd(_mm256_loadu_pd(c + (i) * ldc), c##i##0);  \
  c##i##1 = _mm256_add_pd(_mm256_loadu_pd(c + (i) * ldc + 4), c##i##1);
#define STORE(i) _mm256_storeu_pd(c + (i) * ldc, c##i##0); _mm256_storeu_pd(c + (i) * ldc + 4, c##i##1);
#define ALL(X) X(0) X(1) X(2) X(3) X(4) X(5)

static void ukr_avx2(size_t k, const double *restrict a, const double *restrict b, double *restrict c, size_t ldc,
                     int accumulate) {
  __m256d c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
  HP_TREE_UKR(MR * NR,
              c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_pd();,
              STEP(0) STEP(1) STEP(2) STEP(3) a += 4 * MR; b += 4 * NR;,
              STEP(0) a += MR; b += NR;,
              ALL(MERGE),
              ALL(KEEP),
              if (accumulate) { ALL(ADD) } ALL(STORE))
}

#include "pack_x86.h"

#if MR % 2 != 0 || NR % 4 != 0
#error "the packing kernels take rows in fours and pairs, B's in fours"
#endif

/* This path's packing kernel (driver.h's HP_PACK_PANEL): the panel's rows in fours (and a last pair), each group over
 * the whole k run, two k per step (pack_x86.h). A group at a time: rows whose stride is a large power of two fall in
 * the same L1 sets, so all of a panel's rows read together would evict each other's lines before their next k.
 * FULL: no padding rows, so no masking. */
static inline __attribute__((always_inline)) size_t pack_panel_avx2(const double *const *rp, size_t live,
                                                                    const double *ref, const double *dist, size_t kc,
                                                                    const size_t w, const int DIVIDE, const int FULL,
                                                                    double *restrict q0, double *restrict q1,
                                                                    double *restrict q2) {
  const size_t kend = kc / 2 * 2;
  for (size_t jb = 0; jb < w; jb += 4) {
    const int four = jb + 4 <= w;
    for (size_t k = 0; k < kend; k += 2) {
      const __m256d R = _mm256_loadu_pd(ref + 2 * k), D = DIVIDE ? hp_x86_dup2(dist + k) : R;
      const size_t o = k * w + jb;
      if (four) hp_x86_rows_k2(rp, jb, 1, live, k, R, D, w, DIVIDE, FULL, q0 + o, q1 + o, q2 + o);
      else hp_x86_rows_k2(rp, jb, 0, live, k, R, D, w, DIVIDE, FULL, q0 + o, q1 + o, q2 + o);
    }
  }
  return kend;
}

/* The fused kernel of one B micro-panel on the diagonal (driver.h's HP_PACK_PANEL_AB): B's rows in fours, two k
 * per step; each k's four Re and Im, before the division, also stored as A's in halves of two rows (two consecutive
 * lanes of one A panel, since mr is even), then divided by that k's distance for B. FULL: no padding rows. */
static inline __attribute__((always_inline)) size_t pack_panel_ab_avx2(
    const double *const *rp, size_t live, const size_t *aoff, const double *ref, const double *dist, size_t kc,
    const int FULL, double *restrict q0, double *restrict q1, double *restrict q2, double *restrict a0p,
    double *restrict a1p, double *restrict a2p) {
  const size_t kend = kc / 2 * 2;
  for (size_t jb = 0; jb < NR; jb += 4) {
    const size_t lo = aoff[jb], hi = aoff[jb + 2]; /* each half's A offset, or SIZE_MAX */
    const __m256d keep = _mm256_castsi256_pd(_mm256_set_epi64x(jb + 3 < live ? -1 : 0, jb + 2 < live ? -1 : 0,
                                                               jb + 1 < live ? -1 : 0, jb < live ? -1 : 0));
    for (size_t k = 0; k < kend; k += 2) {
      const __m256d R = _mm256_loadu_pd(ref + 2 * k);
      __m256d re[2], im[2];
      hp_x86_t4x2(hp_x86_row2(rp[jb] + 2 * k, R, R, 0, FULL, FULL ? R : hp_x86_keep(jb, live)),
                  hp_x86_row2(rp[jb + 1] + 2 * k, R, R, 0, FULL, FULL ? R : hp_x86_keep(jb + 1, live)),
                  hp_x86_row2(rp[jb + 2] + 2 * k, R, R, 0, FULL, FULL ? R : hp_x86_keep(jb + 2, live)),
                  hp_x86_row2(rp[jb + 3] + 2 * k, R, R, 0, FULL, FULL ? R : hp_x86_keep(jb + 3, live)), re, im);
      for (int t = 0; t < 2; t++) {
        const size_t ka = (k + t) * MR;
        if (lo != SIZE_MAX)
          hp_x86_put2(_mm256_castpd256_pd128(re[t]), _mm256_castpd256_pd128(im[t]), 0, a0p + lo + ka, a1p + lo + ka, a2p + lo + ka);
        if (hi != SIZE_MAX)
          hp_x86_put2(_mm256_extractf128_pd(re[t], 1), _mm256_extractf128_pd(im[t], 1), 0, a0p + hi + ka, a1p + hi + ka, a2p + hi + ka);
        const __m256d d = _mm256_set1_pd(dist[k + t]);
        __m256d br = _mm256_div_pd(re[t], d), bi = _mm256_div_pd(im[t], d);
        if (!FULL) br = _mm256_and_pd(br, keep), bi = _mm256_and_pd(bi, keep);
        hp_x86_put4(br, bi, 1, q0 + (k + t) * NR + jb, q1 + (k + t) * NR + jb, q2 + (k + t) * NR + jb);
      }
    }
  }
  return kend;
}

#define HP_PACK_PANEL pack_panel_avx2
#define HP_PACK_PANEL_AB pack_panel_ab_avx2
#define HP_MR MR
#define HP_NR NR
#define HP_UKR ukr_avx2
#define HP_TILE tile_avx2
#define HP_TILE_COMP tile_comp_avx2
#define HP_PACK_TEST pack_avx2
#define HP_VFMA _mm256_fmadd_pd
#define HP_VSPLAT _mm256_set1_pd
#define HP_VFNMA _mm256_fnmadd_pd
#include "driver.h"

static volatile double sink;

static double run_avx2(double seconds) {
  const __m256d m = _mm256_set1_pd(HPAIR_PEAK_M), a = _mm256_set1_pd(HPAIR_PEAK_A);
  __m256d c0 = _mm256_set1_pd(1.00), c1 = _mm256_set1_pd(1.01), c2 = _mm256_set1_pd(1.02), c3 = _mm256_set1_pd(1.03);
  __m256d c4 = _mm256_set1_pd(1.04), c5 = _mm256_set1_pd(1.05), c6 = _mm256_set1_pd(1.06), c7 = _mm256_set1_pd(1.07);
  __m256d c8 = _mm256_set1_pd(1.08), c9 = _mm256_set1_pd(1.09), c10 = _mm256_set1_pd(1.10), c11 = _mm256_set1_pd(1.11);
  uint64_t iterations = 0;
  const double start = hpair_now_seconds();
  double elapsed;
  do {
    for (int i = 0; i < HPAIR_PEAK_BATCH; i++) {
      c0 = _mm256_fmadd_pd(c0, m, a), c1 = _mm256_fmadd_pd(c1, m, a), c2 = _mm256_fmadd_pd(c2, m, a), c3 = _mm256_fmadd_pd(c3, m, a);
      c4 = _mm256_fmadd_pd(c4, m, a), c5 = _mm256_fmadd_pd(c5, m, a), c6 = _mm256_fmadd_pd(c6, m, a), c7 = _mm256_fmadd_pd(c7, m, a);
      c8 = _mm256_fmadd_pd(c8, m, a), c9 = _mm256_fmadd_pd(c9, m, a), c10 = _mm256_fmadd_pd(c10, m, a), c11 = _mm256_fmadd_pd(c11, m, a);
      __asm__ volatile("" : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3), "+x"(c4), "+x"(c5));
      __asm__ volatile("" : "+x"(c6), "+x"(c7), "+x"(c8), "+x"(c9), "+x"(c10), "+x"(c11));
    }
    iterations += HPAIR_PEAK_BATCH;
    elapsed = hpair_now_seconds() - start;
  } while (elapsed < seconds);
  __m256d s = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(c0, c1), _mm256_add_pd(c2, c3)), _mm256_add_pd(_mm256_add_pd(c4, c5), _mm256_add_pd(c6, c7)));
  s = _mm256_add_pd(s, _mm256_add_pd(_mm256_add_pd(c8, c9), _mm256_add_pd(c10, c11)));
  double lanes[4];
  _mm256_storeu_pd(lanes, s);
  sink = lanes[0] + lanes[3];
  return (double)iterations * 12 /* chains */ * 4 /* lanes */ * 2 /* flops per FMA */ / elapsed;
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

static const char *why_not_avx2(void) {
  const hpair_cpu *cpu = hpair_cpu_get();
  return cpu->avx2_fma ? NULL : cpu->avx2_reason;
}

const hpair_path hpair_path_avx2 = {"avx2", MR, NR, HPAIR_KC, 64, HP_COMP_RB, HP_COMP_CW, 240, 4, 1,
                                    why_not_avx2, ukr_avx2, tile_avx2, tile_comp_avx2, run_avx2, pack_avx2};

#else
static const char *why_not_avx2(void) { return "not an x86-64 build"; }
const hpair_path hpair_path_avx2 = {"avx2", MR, NR, HPAIR_KC, 64, HP_COMP_RB, HP_COMP_CW, 240, 4, 0, why_not_avx2, 0, 0, 0, 0, 0};
#endif
