/* Runs the shared driver (src/driver.h) with the AVX-512 path's block sizes, mr×nr = 12×16, a scalar micro-kernel
 * that computes the same block sums (fma() chains of each sub-block in k order from +0, joined by block_tree.h, then
 * added to C when accumulating) and the driver's plain-C packing, against every path of src/paths.h that runs on this
 * CPU (each with its own mr×nr, mc, packing kernels and compensated pass). H must be the same bits on every shape and
 * tile grid, in both accuracies. This checks the AVX-512 path's loop framework (packing at widths 12 and 16 in plain
 * C, the triangle at 12×16, padding, the chunk sums, the combination) on any CPU, and each path's own micro-kernel
 * and packing kernels by comparing its bits: plain C, no target pragma, so it also runs under qemu for another
 * architecture's build.
 * Built with every path file (src/path_<name>.c for each line of paths.h):
 *
 *   cc -O2 -ffp-contract=off -Ikernel/native/src kernel/native/check/driver-12x16.c \
 *      kernel/native/src/path_*.c kernel/native/src/scratch.c kernel/native/src/cpu.c -lm -o driver-12x16 && ./driver-12x16
 *
 * The first line names the paths compared; each further line is a case, with a hash of its H in both accuracies
 * and no path name, so that equal case lines from two builds (prebuild.mjs: x86-64 and arm64 under qemu) mean the
 * same bits on both architectures. Exits 0 when every case is bit-identical on every path that runs, 1 when one
 * differs, 4 when no listed path runs on this CPU (the cases' hashes are printed, compared with nothing here). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block_tree.h"
#include "kernel.h"
#include "paths_table.h"

/* block_tree.h's order again, written independently of its HP_TREE_UKR: the tree in memory, one sub-block's sums at a
 * time (a binary counter over levels of len doubles, and a spare), so that the check compares every path's register
 * tree with a second implementation of the same order. */
#define HP_TREE_DECLARE(name, len) double name[(HP_TREE_LEVELS + 1) * (len)] __attribute__((aligned(64)))

/* Where sub-block n's sum goes: level 0 when it is free (n even), else the spare (hp_tree_push merges it). */
static inline __attribute__((always_inline)) double *hp_tree_slot(double *tree, size_t len, unsigned n) {
  return (n & 1) ? tree + HP_TREE_LEVELS * len : tree;
}

/* Merges sub-block n's sum, stored at hp_tree_slot(tree, len, n), into the tree (then n + 1 sums are in it). */
static inline __attribute__((always_inline)) void hp_tree_push(double *tree, size_t len, unsigned n) {
  if (!(n & 1)) return;
  const double *x = tree + HP_TREE_LEVELS * len; /* the newer sum */
  for (unsigned l = 0;; l++) {
    double *lo = tree + l * len; /* the older sum, 2^l sub-blocks */
    const int carry = (n >> (l + 1)) & 1;  /* level l + 1 is occupied too: merge on */
    double *dst = carry ? lo : tree + (l + 1) * len;
    for (size_t i = 0; i < len; i++) dst[i] = lo[i] + x[i];
    if (!carry) return;
    x = dst;
  }
}

/* The block's sum of the n > 0 sub-blocks in the tree, for the rows × cols micro-tile (len = rows·cols): stored into
 * C (row stride ldc), or added to it when accumulate is non-zero. */
static inline __attribute__((always_inline)) void hp_tree_finish(double *tree, size_t rows, size_t cols, unsigned n,
                                                                 double *restrict c, size_t ldc, int accumulate) {
  const size_t len = rows * cols;
  unsigned l = 0;
  while (!((n >> l) & 1)) l++;
  double *r = tree + l * len; /* the lowest occupied level: the last sub-blocks */
  for (l++; (n >> l) != 0; l++) {
    if (!((n >> l) & 1)) continue;
    const double *older = tree + l * len;
    for (size_t i = 0; i < len; i++) r[i] = older[i] + r[i];
  }
  for (size_t i = 0; i < rows; i++) {
    double *restrict out = c + i * ldc;
    const double *restrict s = r + i * cols;
    if (accumulate)
      for (size_t j = 0; j < cols; j++) out[j] = out[j] + s[j];
    else
      for (size_t j = 0; j < cols; j++) out[j] = s[j];
  }
}

static void ukr_scalar(size_t k, const double *a, const double *b, double *c, size_t ldc, int accumulate) {
  HP_TREE_DECLARE(tree, 12 * 16);
  unsigned n = 0;
  do {
    const size_t ks = k < HPAIR_SUB ? k : HPAIR_SUB;
    double *slot = hp_tree_slot(tree, 12 * 16, n);
    for (int i = 0; i < 12; i++) {
      for (int j = 0; j < 16; j++) {
        double s = 0.0;
        for (size_t x = 0; x < ks; x++) s = fma(a[x * 12 + i], b[x * 16 + j], s);
        slot[i * 16 + j] = s;
      }
    }
    a += ks * 12, b += ks * 16, k -= ks;
    hp_tree_push(tree, 12 * 16, n++);
  } while (k > 0);
  hp_tree_finish(tree, 12, 16, n, c, ldc, accumulate);
}

#define HP_MR 12
#define HP_NR 16
#define HP_UKR ukr_scalar
#define HP_TILE tile_12x16
#define HP_TILE_COMP tile_comp_12x16
#define HP_COMP_RB 3
#define HP_COMP_CW 2
#include "driver.h"

/* An AVX path's tile can return with the upper halves of the vector registers dirty (GCC emits no vzeroupper after
 * a static helper's ymm code), and the plain SSE code of this file then runs many times slower until they are
 * cleared: clear them after each path's call, where the CPU has AVX (the instruction faults elsewhere). */
static void clear_upper(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (__builtin_cpu_supports("avx")) __asm__ volatile("vzeroupper");
#endif
}

static unsigned long long state = 88172645463325252ull;
static double next(void) { /* xorshift64: uniform in [−3, 3) */
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return (double)(state >> 11) / 9007199254740992.0 * 6 - 3;
}

/* FNV-1a over the bytes of H. */
static unsigned long long fnv(const void *data, size_t bytes) {
  unsigned long long h = 14695981039346656037ull;
  for (size_t i = 0; i < bytes; i++) h = (h ^ ((const unsigned char *)data)[i]) * 1099511628211ull;
  return h;
}

int main(void) {
  static const size_t cases[][3] = {{2, 1, 1},   {2, 2, 1},    {3, 5, 2},    {17, 3, 5},   {38, 300, 13},
                                    {66, 65, 64}, {131, 261, 48}, {97, 530, 97}, {200, 700, 77},
                                    {30, 12289, 11}, {40, 12290, 40}, {19, 26000, 7}, {27, 37000, 26}};
  const hpair_path *runs[HPAIR_PATH_COUNT];
  size_t count = 0;
  for (size_t p = 0; p < HPAIR_PATH_COUNT; p++) {
    if (!hpair_paths[p]->why_not() && hpair_paths[p]->tile && hpair_paths[p]->tile_compensated) runs[count++] = hpair_paths[p];
  }
  printf("paths:");
  for (size_t p = 0; p < count; p++) printf(" %s", runs[p]->name);
  printf("%s\n", count ? "" : " none runs on this CPU (only the 12x16 driver's bits are printed)");
  int failed = 0;
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const size_t N = cases[c][0], M = cases[c][1], T = cases[c][2], n = N - 1;
    double *e = malloc(16 * N * M), *d = malloc(8 * M), *h1 = calloc(2 * n * n + 1, 8), *h2 = calloc(2 * n * n + 1, 8);
    double *h3 = calloc(2 * n * n + 1, 8), *h4 = calloc(2 * n * n + 1, 8);
    if (!e || !d || !h1 || !h2 || !h3 || !h4) return 2;
    for (size_t i = 0; i < 2 * N * M; i++) e[i] = next();
    for (size_t i = 0; i < M; i++) d[i] = (0.5 + fabs(next()) / 3) * (next() < 0 ? -1 : 1);
    hpair_scratch s1 = {0}, s2 = {0};
    int64_t bad1, bad2;
    /* The 12×16 driver's H, in both accuracies (compensated on the shorter sums only: it is the slow kernel). */
    for (size_t i0 = 0; i0 < n; i0 += T) {
      for (size_t j0 = 0; j0 <= i0; j0 += T) {
        hpair_tile_args t = {e, d, N, M, i0, i0 + T < n ? i0 + T : n, j0, j0 + T < n ? j0 + T : n, h1, 0, 0, n, n};
        if (tile_12x16(&t, &s1, 24, &bad1) || bad1 != -1) return 3;
        t.h = h3;
        if (M < 2000 && (tile_comp_12x16(&t, &s1, 24, &bad1) || bad1 != -1)) return 3;
      }
    }
    char differs[256] = "";
    for (size_t p = 0; p < count; p++) {
      const hpair_path *path = runs[p];
      memset(h2, 0, 16 * n * n);
      memset(h4, 0, 16 * n * n);
      for (size_t i0 = 0; i0 < n; i0 += T) {
        for (size_t j0 = 0; j0 <= i0; j0 += T) {
          hpair_tile_args t = {e, d, N, M, i0, i0 + T < n ? i0 + T : n, j0, j0 + T < n ? j0 + T : n, h2, 0, 0, n, n};
          const int failed_plain = path->tile(&t, &s2, hpair_choose_mc(path, 512 * 1024), &bad2) || bad2 != -1;
          clear_upper();
          if (failed_plain) return 3;
          t.h = h4;
          const int failed_comp = M < 2000 && (path->tile_compensated(&t, &s2, 0, &bad2) || bad2 != -1);
          clear_upper();
          if (failed_comp) return 3;
        }
      }
      if (memcmp(h1, h2, 16 * n * n) != 0 || memcmp(h3, h4, 16 * n * n) != 0) {
        size_t used = strlen(differs);
        snprintf(differs + used, sizeof differs - used, "%s%s", used ? ", " : "", path->name);
      }
    }
    /* The bits themselves, hashed, so that builds for two architectures can be compared line by line. */
    if (differs[0]) printf("N %zu M %zu tile %zu: DIFFERENT on %s (H %016llx, compensated %016llx)\n", N, M, T, differs, fnv(h1, 16 * n * n), fnv(h3, 16 * n * n));
    else printf("N %zu M %zu tile %zu: %s (H %016llx, compensated %016llx)\n", N, M, T, count ? "bit-identical" : "no path to compare with", fnv(h1, 16 * n * n),
                fnv(h3, 16 * n * n));
    failed |= differs[0] != 0;
    hpair_scratch_free(&s1);
    hpair_scratch_free(&s2);
    free(e);
    free(d);
    free(h1);
    free(h2);
    free(h3);
    free(h4);
  }
  return failed ? 1 : count == 0 ? 4 : 0;
}
