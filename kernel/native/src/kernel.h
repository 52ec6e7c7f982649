/* What every architecture path provides, and the per-thread scratch the driver works in. */
#ifndef HPAIR_KERNEL_H
#define HPAIR_KERNEL_H

#include <stddef.h>
#include <stdint.h>

/* The summation order of every element of P1..P3, a constant of the result's format (changing any of these
 * constants changes the bits, not the accuracy class): k is cut into blocks of HPAIR_KC columns; each block is summed
 * in sub-blocks of HPAIR_SUB columns, each from +0 in registers as one FMA chain in k order, joined in the fixed
 * binary tree of block_tree.h; the blocks of one chunk (HPAIR_CHUNK_BLOCKS consecutive blocks, the last chunk
 * possibly shorter) are added in order; the chunk sums are added in order, starting from the first chunk's sum.
 * Every path, tile grid and worker count follows this order, so all give the same bits, and a driver that split k
 * across threads at chunk boundaries could keep it by adding the threads' chunk sums in chunk order. The error of
 * an element then grows with the sub-block, the tree's depth, the chunk's blocks and the chunks, where one FMA
 * chain over all of k would make it grow with M.
 *
 * Why these values: kc sets the packed panels (the B micro-panel, nr·kc·8 bytes, stays in L1d next to the streaming
 * A panel on the widest path) and is not a path's choice, since all paths must give the same bits; the single-thread
 * tile bench (kernel/native/bench-tile.mjs) is where it was chosen. The sub-block is what makes the default at least
 * as accurate as numpy's zgemm at every M (bench/orders/ and `npm run bench:accuracy` measure it): 3M's imaginary
 * part sums three products, P3's terms up to twice the others, so its chains must be shorter than zgemm's; each
 * sub-block costs one addition per accumulator. Chunks of 16 blocks keep the in-order sum of blocks short at moderate
 * M, and cost one pass over a tile's sums per chunk (docs/kernels-and-accuracy.md). */
#define HPAIR_KC 192
#define HPAIR_SUB 32
#define HPAIR_CHUNK_BLOCKS 16
#if HPAIR_KC % HPAIR_SUB != 0
#error "HPAIR_KC must be a multiple of HPAIR_SUB"
#endif
#define HPAIR_CHUNK (HPAIR_KC * HPAIR_CHUNK_BLOCKS)

/* Compensated accuracy (driver.h): each entry's high products are summed on one power-of-two grid per
 * HPAIR_COMP_GRID consecutive columns of k, from k = 0, and the grid blocks' sums are added in k order by TwoSum.
 * The grid block is part of the summation order (a constant of the result's format): shorter blocks keep the grid
 * closer to the partial sums' own scale, for one grid and one fold per block. HPAIR_COMP_KC, the compensated
 * kernel's k block (the columns its packs hold), is a multiple of it and only a blocking: packs of both sides of
 * a tile fit L2 together. */
#define HPAIR_COMP_GRID 32
#define HPAIR_COMP_KC 64
#if HPAIR_COMP_KC % HPAIR_COMP_GRID != 0
#error "HPAIR_COMP_KC must be a multiple of HPAIR_COMP_GRID"
#endif

/* s(i, j) = Σ_k a[k·mr + i] · b[k·nr + j] over one k block (k ≤ HPAIR_KC), summed in the order above: FMA chains of
 * HPAIR_SUB columns from +0 in registers, joined by block_tree.h; then C[i, j] = C[i, j] + s(i, j) when accumulate
 * is non-zero, else C[i, j] = s(i, j) (C has row stride ldc). k may be 0 (s = +0). */
typedef void (*hpair_ukr_fn)(size_t k, const double *a, const double *b, double *c, size_t ldc, int accumulate);

/* Per-thread scratch, grown on demand, 64-byte aligned, never shared between threads. Capacities in doubles. */
typedef struct hpair_scratch {
  double *a, *b, *p;
  size_t a_cap, b_cap, p_cap;
} hpair_scratch;

/* Makes each buffer hold at least the given number of doubles (contents are not kept). 0, or -1 if out of memory. */
int hpair_scratch_reserve(hpair_scratch *s, size_t a, size_t b, size_t p);
void hpair_scratch_free(hpair_scratch *s);

typedef struct hpair_tile_args {
  const double *expp;     /* N×M complex, interleaved */
  const double *distance; /* M */
  size_t N, M;
  size_t i0, i1, j0, j1;  /* rows [i0, i1) × columns [j0, j1), inside [0, N−1] */
  /* Where H goes: rows [r0, r0 + rows) × columns [c0, c0 + cols) of H, complex interleaved, row stride cols
   * (the whole H is r0 = c0 = 0, rows = cols = N − 1). Entries outside this window are not stored. */
  double *h;
  size_t r0, c0, rows, cols;
} hpair_tile_args;

/* One architecture path, registered once: its file (path_*.c) defines `const hpair_path hpair_path_<name>` and
 * paths.h lists it. Everything the addon and TypeScript know of a path comes from this record (info()). */
typedef struct hpair_path {
  const char *name;
  /* Micro-tile rows and columns; kc is HPAIR_KC for every path (the summation order is the result's format). */
  int mr, nr, kc;
  /* The mc rule: rows per packed A block = one A plane (mc·kc doubles) in about half of L2, rounded down to a
   * multiple of mr, at least mr and at most mc_max_panels·mr (hpair_choose_mc). */
  int mc_max_panels;
  /* Rows × columns of one pass of the compensated kernel (scratch is padded to them). */
  int comp_rows, comp_cols;
  /* The tile edge TypeScript schedules for this path: the scheduling and cancellation grain, never a result. */
  int tile_edge;
  /* Doubles per FMA instruction of the peak probe (the probe's flop count, and an upper bound for its rate). */
  int lanes;
  /* 1 when this build's FMA is one instruction (the path's fma() or intrinsics are not a library call). */
  int fast_fma;
  /* NULL when this CPU and OS can run the path, else why not in a few words. */
  const char *(*why_not)(void);
  hpair_ukr_fn ukr;
  /* Computes the tile's entries with j ≤ i and stores those inside the window, and their mirrors inside it.
   * mc: rows per packed A block, a multiple of mr. *first_bad: −1 if every entry of the tile came out finite,
   * else (N−1)·i + j of the first one (row-major) that did not (an overflow from finite inputs).
   * Returns 0, or −1 if the scratch could not be allocated (then h is untouched). */
  int (*tile)(const hpair_tile_args *t, hpair_scratch *s, size_t mc, int64_t *first_bad);
  /* The same, with compensated accuracy (driver.h): each entry as if computed in twice the working precision. */
  int (*tile_compensated)(const hpair_tile_args *t, hpair_scratch *s, size_t mc, int64_t *first_bad);
  /* Flops per second one thread sustains on this path's FMA alone for `seconds` (the bench's peak). */
  double (*fma_peak)(double seconds);
  /* The tile's packing alone (driver.h's HP_PACK_TEST), for the addon's test export: rows [r0, r0 + rows) of expp
   * (rows of H), k block [kb, kb + kc), as B (divide 1: Br, Bi, Br − Bi in nr-wide micro-panels) or A (0: Ar, Ai,
   * Ar + Ai, mr-tall), padding rows zero, as three planes of ceil(rows / w)·w·kc doubles one after another from p;
   * or (2) both, as a tile on the diagonal packs a row block of those rows: A's planes, then B's. */
  void (*pack)(int divide, const double *expp, const double *distance, size_t N, size_t M, size_t r0, size_t rows,
               size_t kb, size_t kc, double *p);
} hpair_path;

/* Rows per packed A block for a path, from the L2 size (the rule above): the most any tile uses (info().mc). */
size_t hpair_choose_mc(const hpair_path *path, size_t l2_bytes);
/* Rows per packed A block for a tile of `cols` columns (before padding). The loops sweep every B micro-panel of
 * the tile for each row block. When the tile's packed B (three planes of pcol·kc doubles) fits in L2 it stays there
 * across the row blocks, so a row block needs only its A plane in L1d, where the micro-kernel rereads it for each
 * B micro-panel, and a block that small keeps the packed A out of L2, which B fills: mc = L1d / (kc·8) rounded down
 * to a multiple of mr, at least mr, at most hpair_choose_mc's. Otherwise B comes back from beyond L2 for every row
 * block, and the larger L2 block of hpair_choose_mc amortises it. For a tile on the diagonal whose columns are its
 * rows (`diagonal`), that rounded to a multiple of lcm(mr, nr) (at least one), so that each row block starts on a B
 * micro-panel and packs B with its A (driver.h, hp_pack_ab). A blocking only: no bit of H depends on mc. */
size_t hpair_choose_tile_mc(const hpair_path *path, size_t l1d_bytes, size_t l2_bytes, size_t cols, int diagonal);

#endif
