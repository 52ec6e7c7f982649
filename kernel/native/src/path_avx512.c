/* The AVX-512F path: 32 zmm registers, micro-tile 12×16 = 24 accumulators + 2 B vectors + 1 broadcast
 * (or an embedded {1to8} broadcast operand). Structurally the AVX2 path with a wider micro-kernel: the same
 * driver.h, the same kc; only this micro-kernel and mr/nr differ. Each element's block sum is the same FMA
 * chains joined by the same tree (block_tree.h), so this path gives the AVX2 path's bits. Only this file's functions use AVX-512F (and the
 * driver's AVX2 packing), and they run only after cpu.c has checked the CPU and the OS's ZMM state. */
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

#define HP_MR MR
#define HP_NR NR
#define HP_UKR ukr_avx512
#define HP_TILE tile_avx512
#define HP_TILE_COMP tile_comp_avx512
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
                                    why_not_avx512, ukr_avx512, tile_avx512, tile_comp_avx512, run_avx512};

#else
static const char *why_not_avx512(void) { return "not an x86-64 build"; }
const hpair_path hpair_path_avx512 = {"avx512", MR, NR, HPAIR_KC, 64, HP_COMP_RB, HP_COMP_CW, 240, 8, 0, why_not_avx512, 0, 0, 0, 0};
#endif
