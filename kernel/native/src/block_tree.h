/* How a micro-kernel sums one k block (kernel.h: HPAIR_KC columns): in sub-blocks of HPAIR_SUB columns, each one FMA
 * chain in k order from +0 in registers, joined in a fixed binary tree. This header is that tree's only home; every
 * micro-kernel (and the C driver check's scalar one) calls it, so every path joins the same sums in the same order.
 *
 * Why a tree of short chains: the error of a recursive sum grows with its length, and 3M's imaginary part
 * (P3 − P1) + P2 adds up three such sums, P3's terms twice the others. Short chains joined pairwise keep the
 * default at or below numpy's 4M zgemm (bench/orders/ simulates the candidates against the exact oracle).
 *
 * The tree is a binary counter over the sub-block sums s0, s1, …: level l holds the sum of 2^l consecutive
 * sub-blocks; a new sum merges with each occupied level from the bottom, the older (lower k) sum on the left:
 * s0 + s1, then (s0 + s1) + (s2 + s3), … At the block's end the occupied levels are added from the lowest (highest
 * k) up: for 6 sub-blocks, ((s0 + s1) + (s2 + s3)) + (s4 + s5); for 5, ((s0 + s1) + (s2 + s3)) + s4. Each addition
 * is one IEEE addition of two doubles, so the vector width that runs it cannot change a bit.
 *
 * A micro-tile's sums are `len` doubles (mr × nr, row stride nr). `tree` holds HP_TREE_LEVELS levels of len doubles
 * and one spare, 64-byte aligned (HP_TREE_DECLARE). Plain C loops: the compiler vectorises them with the ISA of the
 * path that includes this header. */
#ifndef HPAIR_BLOCK_TREE_H
#define HPAIR_BLOCK_TREE_H

#include <stddef.h>

#include "kernel.h"

/* Levels 0 … HP_TREE_LEVELS − 1 hold up to 2^HP_TREE_LEVELS − 1 sub-blocks, more than a block has. */
#define HP_TREE_LEVELS 5
#if (HPAIR_KC + HPAIR_SUB - 1) / HPAIR_SUB >= (1 << HP_TREE_LEVELS)
#error "a k block has more sub-blocks than the tree's levels hold"
#endif

/* For the portable path and the C driver check: the tree in memory, one sub-block's sums at a time. */
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

/* The body of a micro-kernel (hpair_ukr_fn: k, a, b, c, ldc, accumulate in scope) that keeps a micro-tile's sums
 * in registers, over one k block in sub-blocks with the tree above, merging in registers: X = T + X for each level
 * T the new sum completes, then a store to the first free level, or at the block's end the pending levels from the
 * lowest up and the block's sum to C. The path declares its accumulators and supplies, as statements on them (no
 * commas outside parentheses): ZERO zeroes them; STEP4 and STEP1 run 4 and 1 k of multiply-adds and advance a
 * and b; MERGE adds level T (const double *) into them; KEEP stores them at T (double *); END adds C when
 * accumulating and stores C. */
#define HP_TREE_UKR(LEN, ZERO, STEP4, STEP1, MERGE, KEEP, END)     \
  double tree[HP_TREE_LEVELS * (LEN)] __attribute__((aligned(64))); \
  for (unsigned n = 0;; n++) {                                      \
    size_t ks = k < HPAIR_SUB ? k : HPAIR_SUB;                      \
    k -= ks;                                                        \
    ZERO                                                            \
    for (; ks >= 4; ks -= 4) { STEP4 }                              \
    for (; ks > 0; ks--) { STEP1 }                                  \
    unsigned l = 0;                                                 \
    for (; (n >> l) & 1; l++) {                                     \
      const double *T = tree + l * (LEN);                           \
      MERGE                                                         \
    }                                                               \
    if (k > 0) {                                                    \
      double *T = tree + l * (LEN);                                 \
      KEEP                                                          \
      continue;                                                     \
    }                                                               \
    for (l++; (n >> l) != 0; l++) {                                 \
      if (!((n >> l) & 1)) continue;                                \
      const double *T = tree + l * (LEN);                           \
      MERGE                                                         \
    }                                                               \
    END                                                             \
    return;                                                         \
  }

#endif
