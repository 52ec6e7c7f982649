/* The portable path: plain C with C's fma(), no intrinsics and no target pragma, so it builds and runs on any CPU
 * the compiler targets (arm64 included). Where the build's FMA is one instruction (__FP_FAST_FMA: arm64, or x86-64
 * built with FMA enabled) the compiler vectorises the micro-kernel's column loop into fused multiply-adds; where it
 * is a library call (a generic x86-64 build) the path is correct but slow, and `auto` ranks it after WebAssembly
 * (fast_fma below). Each element's block sum is the same FMA chains joined by the same tree (block_tree.h)
 * as on the other paths (a vector FMA rounds each lane once, as fma() does), so it gives their bits. */
#include "kernel.h"

#include <math.h>

#include "block_tree.h"
#include "peak_loop.h"

/* This path's block sizes, its only copy: a 4×8 micro-tile's 32 accumulators fit 16 128-bit registers (NEON has
 * 32, SSE2 16), and the compensated kernel's pass (rows × columns): one 128-bit vector of columns, the width
 * every target of this path has. */
#define MR 4
#define NR 8
#define HP_COMP_RB 4
#define HP_COMP_CW 2

/* The accumulators of block_tree.h's HP_TREE_UKR, as one array the compiler keeps in vector registers where it can. */
#define EACH for (int x = 0; x < MR * NR; x++)
#define STEP                                                                                  \
  for (int i = 0; i < MR; i++)                                                                \
    for (int j = 0; j < NR; j++) s[i * NR + j] = fma(a[i], b[j], s[i * NR + j]);            \
  a += MR;                                                                                    \
  b += NR;

static void ukr_portable(size_t k, const double *restrict a, const double *restrict b, double *restrict c, size_t ldc,
                         int accumulate) {
  double s[MR * NR];
  HP_TREE_UKR(MR * NR,
              EACH s[x] = 0;,
              STEP STEP STEP STEP,
              STEP,
              EACH s[x] = T[x] + s[x];,
              EACH T[x] = s[x];,
              for (int i = 0; i < MR; i++) for (int j = 0; j < NR; j++)
                c[i * ldc + j] = accumulate ? c[i * ldc + j] + s[i * NR + j] : s[i * NR + j];)
}

#define HP_MR MR
#define HP_NR NR
#define HP_UKR ukr_portable
#define HP_TILE tile_portable
#define HP_TILE_COMP tile_comp_portable
#define HP_PACK_TEST pack_portable
#include "driver.h"

/* The peak probe in plain C: CHAINS independent fma() chains, which the compiler may run as vectors. */
#define CHAINS 16
static volatile double sink;

static double peak_portable(double seconds) {
  double c[CHAINS];
  for (int q = 0; q < CHAINS; q++) c[q] = 1 + 0.01 * q;
  uint64_t iterations = 0;
  const double start = hpair_now_seconds();
  double elapsed;
  do {
    for (int i = 0; i < HPAIR_PEAK_BATCH; i++)
      for (int q = 0; q < CHAINS; q++) c[q] = fma(c[q], HPAIR_PEAK_M, HPAIR_PEAK_A);
    iterations += HPAIR_PEAK_BATCH;
    elapsed = hpair_now_seconds() - start;
  } while (elapsed < seconds);
  double sum = 0;
  for (int q = 0; q < CHAINS; q++) sum += c[q];
  sink = sum;
  return (double)iterations * CHAINS * 2 /* flops per FMA */ / elapsed;
}

/* Plain C runs on every CPU. */
static const char *why_not_portable(void) { return NULL; }

#ifdef __FP_FAST_FMA
#define FAST_FMA 1
#else
#define FAST_FMA 0
#endif

/* lanes 2: a build without target flags has 128-bit vectors at most (SSE2, NEON). */
const hpair_path hpair_path_portable = {"portable", MR, NR, HPAIR_KC, 64, HP_COMP_RB, HP_COMP_CW, 240, 2, FAST_FMA,
                                        why_not_portable, ukr_portable, tile_portable, tile_comp_portable, peak_portable, pack_portable};
