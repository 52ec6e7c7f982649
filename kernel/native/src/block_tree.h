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
 * HP_TREE_UKR below is the one implementation every path's micro-kernel runs; check/driver-12x16.c has an
 * independent one in memory, so the driver check compares the two. */
#ifndef HPAIR_BLOCK_TREE_H
#define HPAIR_BLOCK_TREE_H

#include <stddef.h>

#include "kernel.h"

/* Levels 0 … HP_TREE_LEVELS − 1 hold up to 2^HP_TREE_LEVELS − 1 sub-blocks, more than a block has. */
#define HP_TREE_LEVELS 5
#if (HPAIR_KC + HPAIR_SUB - 1) / HPAIR_SUB >= (1 << HP_TREE_LEVELS)
#error "a k block has more sub-blocks than the tree's levels hold"
#endif

/* The body of a micro-kernel (hpair_ukr_fn: k, a, b, c, ldc, accumulate in scope) that keeps a micro-tile's sums
 * in registers, over one k block in sub-blocks joined by the tree described above, merging in registers: X = T + X for each level
 * T the new sum completes, then a store to the first free level, or at the block's end the pending levels from the
 * lowest up and the block's sum to C. The path declares its accumulators and supplies, as statements on them (no
 * commas outside parentheses): ZERO zeroes them; STEP4 and STEP1 run 4 and 1 k of multiply-adds and advance a
 * and b; MERGE adds level T (const double *) into them; KEEP stores them at T (double *); END adds C when
 * accumulating and stores C.
 *
 * It also prefetches the C of the micro-tile the driver calls next, which driver.h keeps right after this one's LEN
 * doubles (its column panels, ldc = nr): one cache line per four k, so that the lines arrive during this call's
 * FMAs and their prefetches never wait for a free fill buffer together, as a burst of them before the call does
 * (the single-thread tile bench, kernel/native/bench-tile.mjs, at N = M = 4096). A prefetch never faults, so one
 * past the end of the sums (the tile's last micro-tile) or with another ldc (the addon's microKernel) is harmless. */
#define HP_TREE_UKR(LEN, ZERO, STEP4, STEP1, MERGE, KEEP, END)     \
  double tree[HP_TREE_LEVELS * (LEN)] __attribute__((aligned(64))); \
  const char *const next_c = (const char *)(c + (LEN));             \
  size_t next_line = 0;                                             \
  for (unsigned n = 0;; n++) {                                      \
    size_t ks = k < HPAIR_SUB ? k : HPAIR_SUB;                      \
    k -= ks;                                                        \
    ZERO                                                            \
    for (; ks >= 4; ks -= 4) {                                      \
      STEP4                                                         \
      if (next_line < (LEN) * sizeof(double)) {                     \
        __builtin_prefetch(next_c + next_line, 1, 3);               \
        next_line += 64;                                            \
      }                                                             \
    }                                                               \
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
