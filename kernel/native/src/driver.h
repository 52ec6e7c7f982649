/* The loop framework (BLIS style), shared by every architecture path: packing, blocking, the triangle, the
 * 3M combination and the mirrored store. A path file includes this once, after enabling its ISA with a target
 * pragma and defining:
 *
 *   HP_MR, HP_NR   the micro-tile (HP_MR even; HP_NR a multiple of 4)
 *   HP_UKR         its micro-kernel, an hpair_ukr_fn
 *   HP_TILE        the name to give this path's tile function
 *   HP_TILE_COMP   the name to give this path's compensated tile function
 *   HP_COMP_RB, HP_COMP_CW  rows (1 to 4) × columns (a power of two: one vector) of one pass of the
 *                  compensated kernel; optionally HP_VFMA, HP_VFNMA, HP_VSPLAT (its intrinsics on that vector)
 *   optionally HP_PACK_PANEL, HP_PACK_PANEL_AB  its packing kernels (below), and HP_PACK_TEST, the name of a
 *                  test export of the packing
 *
 * and nothing else differs between paths. Every floating-point operation here (differences, the division by
 * distance, Ar + Ai, Br − Bi, adding block and chunk sums, the combination) is an exactly rounded IEEE operation
 * whatever the vector width, and each element of P1..P3 is summed in the order kernel.h fixes (sub-blocks of FMA
 * chains joined by block_tree.h's tree in each kc-block, blocks added in order within a chunk, chunks added in
 * order), so all paths give the same bits.
 *
 * Math (3M, as zgemm3m): A[r,k] = expp[r,k+1] − expp[N−1,k+1], B = A / distance[k+1] (true division),
 *   P1 = Ar·Brᵀ, P2 = Ai·Biᵀ, P3 = (Ar + Ai)·(Br − Bi)ᵀ,  H = (P1 + P2) + i·((P3 − P1) + P2).
 *
 * Loops for one tile (rows [i0, i1), columns [j0, j1) of H, lower triangle only):
 *   for each k block of length ≤ kc:
 *     for each block of mc rows:
 *       for each plane q: for each nr column panel: for each mr row panel reaching the lower triangle:
 *         micro-kernel: the block's sums, stored into the chunk's Pq by its first block, added by the others
 *         in the last k block: Pq(total) += Pq(chunk) for this micro-tile (a later chunk), and after its P3:
 *           combine P1..P3 into H and its mirror, with an exactly real diagonal (hp_finish_micro; for an H streamed past
 *           the caches, hp_combine after the loops instead, store.h)
 *     at the end of each chunk but the first and the last: Pq(total) += Pq(chunk)  (the first chunk sums into the
 *     total)
 * Combining each micro-tile as soon as its sums are final reads them while they are in L1, where a pass over the
 * tile's planes after the loops would read them back from L2 or beyond; every entry still goes through the same
 * operations on the same values.
 * B (the tile's columns × k block; planes Br, Bi, Br − Bi; nr-wide micro-panels) is packed at the start of each
 * k block, A (the block's rows × k block; planes Ar, Ai, Ar + Ai; mr-tall micro-panels) at the start of each row
 * block (packing each micro-panel just before its first use instead buys nothing: a block's packs fit L2); on a
 * diagonal tile, where a path has the fused kernel, B is packed a row block at a time together with its A
 * (hp_pack_ab).
 * Packs are padded with zero rows to mr / nr multiples, so the micro-kernel has no edge cases. The sums Pq are kept in
 * column panels of nr (hp_at), so that each micro-tile's C is contiguous and each k block's pass over them streams. */
#ifndef HP_MR
#error "define HP_MR, HP_NR, HP_UKR, HP_TILE, HP_TILE_COMP, HP_COMP_RB and HP_COMP_CW before including driver.h"
#endif

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernel.h"
#include "store.h"

#define HP_MIN(a, b) ((a) < (b) ? (a) : (b))
#define HP_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Packs micro-panels [pb, pe) of expp rows r0, r0 + 1, … (rows from r0 + `rows` on become zeros), k block
 * [kb, kb + kc), into three planes of micro-panels of width w: panel p, k, row jj at p·kc·w + k·w + jj. DIVIDE
 * packs B (Br, Bi, Br − Bi), otherwise A (Ar, Ai, Ar + Ai).
 *
 * A path may define HP_PACK_PANEL(rows, live, ref, dist, kc, w, DIVIDE, FULL, q0, q1, q2), its packing kernel for one
 * micro-panel: rows[jj] points at row jj's element m0 (complex, interleaved; rows from `live` on, padding, point at
 * a live row and must come out as zeros), ref at the reference row's element m0, dist at distance[m0] (B only);
 * FULL is 1 when the panel has no padding row (live = w), so that the kernel, inlined with a constant FULL, masks
 * nothing; it packs the panel's k [0, k') for some k' ≤ kc of its choice (its vector step) and returns k'. The loop below
 * packs the rest, and every k of a path without one. A row's k run is contiguous in expp, so such a kernel reads
 * each row's run as vectors and transposes them in registers, where the loop below gathers one value per row and k.
 *
 * The loop below is plain C, in no ISA's intrinsics: for one k the w rows of a panel are independent, so the
 * compiler vectorises the row loop with whatever the including path enabled. Every value is one IEEE subtraction,
 * division, addition or subtraction of the same operands whatever the vector width or the kernel, so all paths
 * pack the same bits. */
static inline __attribute__((always_inline)) void hp_pack(const double *expp, const double *distance, size_t N,
                                                         size_t M, size_t r0, size_t rows, size_t pb, size_t pe,
                                                         size_t kb, size_t kc, size_t w, const int DIVIDE, double *p0,
                                                         double *p1, double *p2) {
  const double *ref = expp + 2 * (N - 1) * M;
  const size_t m0 = kb + 1; /* the k block's first column of expp */
  for (size_t p = pb; p < pe; p++) {
    double *restrict q0 = p0 + p * kc * w, *restrict q1 = p1 + p * kc * w, *restrict q2 = p2 + p * kc * w;
    const double *row0 = expp + 2 * (r0 + p * w) * M;
    const size_t live = p * w >= rows ? 0 : HP_MIN(w, rows - p * w); /* rows of this panel that are not padding */
    size_t k0 = 0;
#ifdef HP_PACK_PANEL
    if (live > 0) {
      const double *rp[HP_MAX(HP_MR, HP_NR)];
      for (size_t jj = 0; jj < w; jj++) rp[jj] = row0 + 2 * (HP_MIN(jj, live - 1) * M + m0);
      k0 = live == w ? HP_PACK_PANEL(rp, live, ref + 2 * m0, DIVIDE ? distance + m0 : NULL, kc, w, DIVIDE, 1, q0, q1, q2)
                     : HP_PACK_PANEL(rp, live, ref + 2 * m0, DIVIDE ? distance + m0 : NULL, kc, w, DIVIDE, 0, q0, q1, q2);
    }
#endif
    for (size_t k = k0; k < kc; k++) {
      const size_t m = m0 + k;
      const double rr = ref[2 * m], ri = ref[2 * m + 1];
      const double d = DIVIDE ? distance[m] : 1;
      double *restrict o0 = q0 + k * w, *restrict o1 = q1 + k * w, *restrict o2 = q2 + k * w;
      for (size_t jj = 0; jj < live; jj++) {
        const double *e = row0 + 2 * (jj * M + m);
        double xr = e[0] - rr, xi = e[1] - ri;
        if (DIVIDE) {
          xr = xr / d;
          xi = xi / d;
        }
        o0[jj] = xr;
        o1[jj] = xi;
        o2[jj] = DIVIDE ? xr - xi : xr + xi;
      }
      for (size_t jj = live; jj < w; jj++) o0[jj] = o1[jj] = o2[jj] = 0;
    }
  }
}

static void hp_pack_a(const double *expp, size_t N, size_t M, size_t r0, size_t rows, size_t pb, size_t pe, size_t kb,
                      size_t kc, double *p0, double *p1, double *p2) {
  hp_pack(expp, NULL, N, M, r0, rows, pb, pe, kb, kc, HP_MR, 0, p0, p1, p2);
}

static void hp_pack_b(const double *expp, const double *distance, size_t N, size_t M, size_t r0, size_t rows,
                      size_t pb, size_t pe, size_t kb, size_t kc, double *p0, double *p1, double *p2) {
  hp_pack(expp, distance, N, M, r0, rows, pb, pe, kb, kc, HP_NR, 1, p0, p1, p2);
}

#ifdef HP_PACK_PANEL_AB
/* Packs B micro-panels [pb, pe) of a tile on the diagonal, whose rows are its columns (expp rows r0, r0 + 1, …; rows
 * from r0 + `rows` on are padding), k block [kb, kb + kc), as hp_pack_b does, and from the same values the current A
 * block: the tile's row a0 + y (y < arows) goes where hp_pack_a puts the block's row y (panel y / mr, lane y % mr,
 * planes a0p…a2p). The block starts on the first of these panels (a0 = pb·nr); its rows past them are padding, and
 * are zeroed. Each row is read once for both packs, where hp_pack_b then hp_pack_a read and subtract it twice; every
 * value is the same IEEE operation on the same operands as theirs.
 *
 * Only for a path that defines HP_PACK_PANEL_AB(rows, live, aoff, ref, dist, kc, FULL, q0, q1, q2, a0p, a1p, a2p),
 * its fused kernel of one B micro-panel, as HP_PACK_PANEL with aoff[jj]: where row jj's A values go in an A plane at
 * k = 0 (k adds k·mr), or SIZE_MAX for a row outside the block; the loop below packs the k it leaves. A path without
 * such a kernel packs B then A: this loop alone, one value per row and k, is no faster than those two passes. */
static void hp_pack_ab(const double *expp, const double *distance, size_t N, size_t M, size_t r0, size_t rows,
                       size_t pb, size_t pe, size_t kb, size_t kc, size_t a0, size_t arows, double *b0, double *b1,
                       double *b2, double *a0p, double *a1p, double *a2p) {
  const double *ref = expp + 2 * (N - 1) * M;
  const size_t m0 = kb + 1, w = HP_NR;
  for (size_t p = pb; p < pe; p++) {
    double *restrict q0 = b0 + p * kc * w, *restrict q1 = b1 + p * kc * w, *restrict q2 = b2 + p * kc * w;
    const double *row0 = expp + 2 * (r0 + p * w) * M;
    const size_t live = p * w >= rows ? 0 : HP_MIN(w, rows - p * w);
    size_t aoff[HP_NR];
    for (size_t jj = 0; jj < w; jj++) {
      const size_t y = p * w + jj - a0;
      aoff[jj] = y < arows ? y / HP_MR * kc * HP_MR + y % HP_MR : SIZE_MAX;
    }
    size_t k0 = 0;
    if (live > 0) {
      const double *rp[HP_NR];
      for (size_t jj = 0; jj < w; jj++) rp[jj] = row0 + 2 * (HP_MIN(jj, live - 1) * M + m0);
      k0 = live == w ? HP_PACK_PANEL_AB(rp, live, aoff, ref + 2 * m0, distance + m0, kc, 1, q0, q1, q2, a0p, a1p, a2p)
                     : HP_PACK_PANEL_AB(rp, live, aoff, ref + 2 * m0, distance + m0, kc, 0, q0, q1, q2, a0p, a1p, a2p);
    }
    for (size_t k = k0; k < kc; k++) {
      const size_t m = m0 + k;
      const double rr = ref[2 * m], ri = ref[2 * m + 1], d = distance[m];
      for (size_t jj = 0; jj < w; jj++) {
        double xr = 0, xi = 0, br = 0, bi = 0, as = 0, bs = 0;
        if (jj < live) {
          const double *e = row0 + 2 * (jj * M + m);
          xr = e[0] - rr, xi = e[1] - ri;
          br = xr / d, bi = xi / d;
          as = xr + xi, bs = br - bi;
        }
        q0[k * w + jj] = br;
        q1[k * w + jj] = bi;
        q2[k * w + jj] = bs;
        if (aoff[jj] != SIZE_MAX) {
          a0p[aoff[jj] + k * HP_MR] = xr;
          a1p[aoff[jj] + k * HP_MR] = xi;
          a2p[aoff[jj] + k * HP_MR] = as;
        }
      }
    }
  }
  for (size_t y = pe * w - a0; y < arows; y++) {
    const size_t o = y / HP_MR * kc * HP_MR + y % HP_MR;
    for (size_t k = 0; k < kc; k++) a0p[o + k * HP_MR] = a1p[o + k * HP_MR] = a2p[o + k * HP_MR] = 0;
  }
}
#endif

#ifdef HP_PACK_TEST
/* The packing alone (kernel.h's hpair_path.pack, the addon's packPanels test export): rows [r0, r0 + rows) of H's
 * rows, k block [kb, kb + kc), as B (divide 1) or A (0), with hp_pack_b / hp_pack_a exactly as HP_TILE calls them,
 * into three planes of ceil(rows / w) panels each, one after another from p; or both (2), as a tile on the
 * diagonal packs one row block of those rows: A's three planes (mr-padded), then B's (nr-padded). */
static void HP_PACK_TEST(int divide, const double *expp, const double *distance, size_t N, size_t M, size_t r0,
                         size_t rows, size_t kb, size_t kc, double *p) {
  if (divide == 2) {
    /* a diagonal tile's rows as one row block: its A (prow rows), then its B, as HP_TILE packs them */
    const size_t prow = (rows + HP_MR - 1) / HP_MR * HP_MR, pcol = (rows + HP_NR - 1) / HP_NR * HP_NR;
    double *const a = p, *const b = p + 3 * prow * kc;
#ifdef HP_PACK_PANEL_AB
    hp_pack_ab(expp, distance, N, M, r0, rows, 0, pcol / HP_NR, kb, kc, 0, prow, b, b + pcol * kc, b + 2 * pcol * kc, a,
               a + prow * kc, a + 2 * prow * kc);
#else
    hp_pack_b(expp, distance, N, M, r0, rows, 0, pcol / HP_NR, kb, kc, b, b + pcol * kc, b + 2 * pcol * kc);
    hp_pack_a(expp, N, M, r0, rows, 0, prow / HP_MR, kb, kc, a, a + prow * kc, a + 2 * prow * kc);
#endif
    return;
  }
  const size_t w = divide ? HP_NR : HP_MR, panels = (rows + w - 1) / w, plane = panels * w * kc;
  if (divide) hp_pack_b(expp, distance, N, M, r0, rows, 0, panels, kb, kc, p, p + plane, p + 2 * plane);
  else hp_pack_a(expp, N, M, r0, rows, 0, panels, kb, kc, p, p + plane, p + 2 * plane);
}
#endif

/* 1 when re and im are both finite (x − x is 0 for a finite x, NaN otherwise), as an integer: a running `&=` of
 * it has no chain of floating-point additions through the combination, which a running sum of the differences
 * had, and lets the compiler vectorise the loop (an integer AND may be reassociated, a floating sum may not). */
static inline __attribute__((always_inline)) int hp_finite2(double re, double im) {
  return (re - re == 0) & (im - im == 0);
}

/* Where a tile's plane of sums keeps the tile's entry (r, c) (both from 0). PANEL: the 3M sums, in column panels of
 * HP_NR, each panel's rows one after another (prow rows per panel), so that a micro-tile's sums are one contiguous
 * run of HP_MR·HP_NR doubles and the micro-tiles of one column panel follow each other in the order the loops visit
 * them: every pass over a tile's sums (one per k block) is then a forward stream the hardware prefetcher follows,
 * where rows of the whole tile's width put each micro-tile row a page apart. Otherwise row-major with stride ld
 * (the compensated sums). A layout only: no bit depends on it. */
#if HP_NR & (HP_NR - 1)
#error "HP_NR must be a power of two (the panel layout's index)"
#endif
static inline __attribute__((always_inline)) size_t hp_at(const int PANEL, size_t ld, size_t prow, size_t r, size_t c) {
  return PANEL ? (c / HP_NR) * prow * HP_NR + r * HP_NR + c % HP_NR : r * ld + c;
}

/* Columns [c, c + run) of a tile's row lie in one panel (hp_at): the run starting at c, at most `left` long. */
static inline __attribute__((always_inline)) size_t hp_run(const int PANEL, size_t c, size_t left) {
  return PANEL ? HP_MIN(HP_NR - c % HP_NR, left) : left;
}

/* (N − 1)·i + j of the first entry (row-major) of rows [i0, i1) × columns [j0, min(j1, i + 1)) whose Re (in P1) or Im
 * (in P2, laid out as hp_at says) is not finite, or −1. */
static int64_t hp_first_bad(size_t n, const double *P1, const double *P2, const int PANEL, size_t ld, size_t prow,
                            size_t i0, size_t i1, size_t j0, size_t j1) {
  for (size_t i = i0; i < i1; i++) {
    for (size_t j = j0; j < HP_MIN(j1, i + 1); j++) {
      const size_t at = hp_at(PANEL, ld, prow, i - i0, j - j0);
      const double re = P1[at], im = P2[at];
      if (!hp_finite2(re, im)) return (int64_t)(n * i + j);
    }
  }
  return -1;
}

/* Finishes a tile from P1..P3 (laid out as hp_at says, origin (r0, c0) of H): H[i, j] = (P1 + P2) + i·((P3 − P1) + P2)
 * (or, with P4, (P1 + P2) + i·(P3 + P4)) for j ≤ i, an exactly real diagonal, and the mirror H[j, i] = conj(H[i, j]),
 * each stored if it lies inside the window. Re and Im overwrite P1 and P2 (scratch) first, so the mirror reads them
 * there, not back from h. Returns −1, or n·i + j of the first entry (row-major) that is not finite. Always inlined,
 * so that each caller's layout is a constant. */
static inline __attribute__((always_inline)) int64_t hp_combine(const hpair_tile_args *t, size_t n, double *P1,
                                                                double *P2, const double *P3, const double *P4,
                                                                const int PANEL, size_t ld, size_t prow, size_t r0,
                                                                size_t r1, size_t c0, size_t c1) {
  int finite = 1;
  for (size_t i = r0; i < r1; i++) {
    const size_t cend = HP_MIN(c1, i + 1) - c0; /* columns c0 … c0 + cend − 1 of row i are j ≤ i */
    for (size_t jb = 0, run; jb < cend; jb += run) {
      run = hp_run(PANEL, jb, cend - jb);
      const size_t at = hp_at(PANEL, ld, prow, i - r0, jb);
      double *x1 = P1 + at, *x2 = P2 + at;
      const double *x3 = P3 + at, *x4 = P4 ? P4 + at : NULL;
      for (size_t j = 0; j < run; j++) {
        /* 3M: P1..P3; compensated (P4 given): Re = P1 + P2 and Im = P3 + P4, each a sum and its correction */
        const double re = x1[j] + x2[j], im = x4 ? x3[j] + x4[j] : (x3[j] - x1[j]) + x2[j];
        x1[j] = re;
        x2[j] = im;
        finite &= hp_finite2(re, im);
      }
    }
    if (c0 + cend == i + 1) P2[hp_at(PANEL, ld, prow, i - r0, i - c0)] = 0; /* the diagonal */
  }
  const int64_t first_bad = finite ? -1 : hp_first_bad(n, P1, P2, PANEL, ld, prow, r0, r1, c0, c1);
  /* Lower entries: rows of the tile inside the window's rows, columns inside its columns. */
  const int stream = hp_stream_wanted(t->h, t->rows, t->cols); /* store.h */
  const size_t wr1 = t->r0 + t->rows, wc1 = t->c0 + t->cols;
  for (size_t i = HP_MAX(r0, t->r0); i < HP_MIN(r1, wr1); i++) {
    const size_t jb = HP_MAX(c0, t->c0), je = HP_MIN(HP_MIN(c1, i + 1), wc1);
    double *out = t->h + 2 * (i - t->r0) * t->cols;
    for (size_t j = jb; j < je; j++) {
      const size_t at = hp_at(PANEL, ld, prow, i - r0, j - c0);
      hp_store_entry(out + 2 * (j - t->c0), P1[at], P2[at], stream);
    }
  }
  /* Mirrors H[j, i], i > j: output row j inside the window's rows, column i inside its columns. Rows i go in
   * blocks, so one output row gets consecutive complex values at a time: 8 (two cache lines) for ordinary stores;
   * 64 when streaming, so that few of the lines a streamed run touches are partly written. */
  const size_t ib0 = HP_MAX(r0, t->c0), ib1 = HP_MIN(r1, wc1), block = stream ? 64 : 8;
  for (size_t ib = ib0; ib < ib1; ib += block) {
    const size_t ie = HP_MIN(ib + block, ib1);
    for (size_t j = HP_MAX(c0, t->r0); j < HP_MIN(HP_MIN(c1, ie - 1), wr1); j++) {
      double *out = t->h + 2 * (j - t->r0) * t->cols;
      for (size_t i = HP_MAX(ib, j + 1); i < ie; i++) {
        const size_t at = hp_at(PANEL, ld, prow, i - r0, j - c0);
        hp_store_entry(out + 2 * (i - t->c0), P1[at], -P2[at], stream);
      }
    }
  }
  hp_store_end(stream);
  return first_bad;
}

/* P += Pc as the end of a chunk, over the sums the micro-kernel computed (hp_at's panels, prow rows each): in each
 * column panel, every row from the first that reaches the lower triangle on, one contiguous run (those rows' micro-tiles
 * are whole, so the entries above the diagonal beside them are computed sums too, never read by the combination). */
static void hp_add_chunk(double *const P[3], double *const Pc[3], size_t prow, size_t pcol, size_t i0, size_t j0) {
  for (int q = 0; q < 3; q++) {
    for (size_t jr = 0; jr < pcol; jr += HP_NR) {
      const size_t first = j0 + jr > i0 ? j0 + jr - i0 : 0; /* the panel's first row with an entry j ≤ i */
      double *restrict x = P[q] + jr * prow;
      const double *restrict y = Pc[q] + jr * prow;
      for (size_t e = first * HP_NR; e < prow * HP_NR; e++) x[e] += y[e];
    }
  }
}

/* hp_combine for one micro-tile, called by the tile's last k block as soon as the micro-tile's P1..P3 hold their
 * totals, so the combination reads them from L1 instead of a pass over the tile's planes after the loops: rows
 * [ia, ib) × columns [ja, jb) of H (inside the tile), P1..P3 pointing at H's entry (i0, j0), row stride ld. The same operations as
 * hp_combine on the same values, so the same bits. Re and Im overwrite P1 and P2, where hp_first_bad finds the
 * tile's first non-finite entry when there is one. Returns 0 when an entry is not finite, else 1. */
static int hp_finish_micro(const hpair_tile_args *t, double *P1, double *P2, const double *P3, size_t ld, size_t i0,
                           size_t j0, size_t ia, size_t ib, size_t ja, size_t jb) {
  int finite = 1;
  for (size_t i = HP_MAX(ia, ja); i < ib; i++) {
    const size_t cend = HP_MIN(jb, i + 1);
    double *x1 = P1 + (i - i0) * ld - j0, *x2 = P2 + (i - i0) * ld - j0;
    const double *x3 = P3 + (i - i0) * ld - j0;
    for (size_t j = ja; j < cend; j++) {
      const double re = x1[j] + x2[j], im = (x3[j] - x1[j]) + x2[j];
      x1[j] = re;
      x2[j] = im;
      finite &= hp_finite2(re, im);
    }
    if (cend == i + 1) x2[i] = 0; /* the diagonal */
  }
  /* Lower entries inside the window, then their mirrors H[j, i] (i > j): output row j gets the micro-tile's
   * column j as consecutive complex values. */
  const size_t wr1 = t->r0 + t->rows, wc1 = t->c0 + t->cols;
  for (size_t i = HP_MAX(ia, t->r0); i < HP_MIN(ib, wr1); i++) {
    const size_t jl = HP_MAX(ja, t->c0), je = HP_MIN(HP_MIN(jb, i + 1), wc1);
    const double *x1 = P1 + (i - i0) * ld - j0, *x2 = P2 + (i - i0) * ld - j0;
    double *out = t->h + 2 * (i - t->r0) * t->cols - 2 * t->c0;
    for (size_t j = jl; j < je; j++) {
      out[2 * j] = x1[j];
      out[2 * j + 1] = x2[j];
    }
  }
  for (size_t j = HP_MAX(ja, t->r0); j < HP_MIN(jb, wr1); j++) {
    const size_t il = HP_MAX(HP_MAX(ia, j + 1), t->c0), ie = HP_MIN(ib, wc1);
    double *out = t->h + 2 * (j - t->r0) * t->cols - 2 * t->c0;
    for (size_t i = il; i < ie; i++) {
      out[2 * i] = P1[(i - i0) * ld + (j - j0)];
      out[2 * i + 1] = -P2[(i - i0) * ld + (j - j0)];
    }
  }
  return finite;
}

static int HP_TILE(const hpair_tile_args *t, hpair_scratch *s, size_t mc, int64_t *first_bad) {
  const size_t N = t->N, M = t->M, n = N - 1, K = M > 0 ? M - 1 : 0;
  /* Rows above j0 and columns from i1 on hold no lower-triangle entry of this tile. */
  const size_t i0 = HP_MAX(t->i0, t->j0), i1 = t->i1, j0 = t->j0, j1 = HP_MIN(t->j1, t->i1);
  *first_bad = -1;
  if (i0 >= i1 || j0 >= j1) return 0;
  const size_t rows = i1 - i0, cols = j1 - j0;
  const size_t prow = (rows + HP_MR - 1) / HP_MR * HP_MR, pcol = (cols + HP_NR - 1) / HP_NR * HP_NR;
  mc = HP_MIN(mc, prow);
  const size_t kcmax = HP_MAX((size_t)1, HP_MIN((size_t)HPAIR_KC, K));
  /* A second set of P planes for the chunk sums, only when k has more than one chunk. */
  const size_t planes = K > HPAIR_CHUNK ? 6 : 3;
  if (hpair_scratch_reserve(s, 3 * mc * kcmax, 3 * pcol * kcmax, planes * prow * pcol)) return -1;
  double *const P[3] = {s->p, s->p + prow * pcol, s->p + 2 * prow * pcol};
  double *const Pc[3] = {s->p + 3 * prow * pcol, s->p + 4 * prow * pcol, s->p + 5 * prow * pcol};
  if (K == 0) memset(s->p, 0, 3 * prow * pcol * sizeof(double));
  int finite = 1;
  /* An H streamed past the caches (store.h) is stored by hp_combine after the loops, whose mirror goes in runs of
   * whole cache lines; a micro-tile's mirror is a dozen entries per output row, which would leave most streamed
   * lines partly written. Either way the same operations on the same values, so the same bits. */
  const int stream = hp_stream_wanted(t->h, t->rows, t->cols);

  /* A tile on the diagonal whose columns are its rows (i0 = j0, i1 = j1), in row blocks that start on B panels: a
   * row block reads no B panel past its last row, so B is packed a row block at a time with that block's A in one
   * pass over its rows (hp_pack_ab, where the path has its kernel). Elsewhere all of B first, then each block's A. */
#ifdef HP_PACK_PANEL_AB
  const int fused = i0 == j0 && rows == cols && mc % HP_NR == 0;
#else
  const int fused = 0;
#endif

  for (size_t kb = 0; kb < K; kb += HPAIR_KC) {
    const size_t kc = HP_MIN((size_t)HPAIR_KC, K - kb);
    const int accumulate = kb % HPAIR_CHUNK != 0, last = kb + kc == K;
    double *const *const Pt = kb < HPAIR_CHUNK ? P : Pc; /* where this chunk's sums go */
    double *const Bq[3] = {s->b, s->b + pcol * kc, s->b + 2 * pcol * kc};
    if (!fused) hp_pack_b(t->expp, t->distance, N, M, j0, cols, 0, pcol / HP_NR, kb, kc, Bq[0], Bq[1], Bq[2]);
    for (size_t ic = 0; ic < prow; ic += mc) {
      const size_t mcur = HP_MIN(mc, prow - ic);
      const size_t top = i0 + ic; /* the block's first row of H */
      double *const Aq[3] = {s->a, s->a + mcur * kc, s->a + 2 * mcur * kc};
#ifdef HP_PACK_PANEL_AB
      if (fused) {
        const size_t pe = (HP_MIN(pcol, ic + mcur) + HP_NR - 1) / HP_NR; /* the B panels up to the block's last row */
        hp_pack_ab(t->expp, t->distance, N, M, j0, cols, ic / HP_NR, pe, kb, kc, ic, mcur, Bq[0], Bq[1], Bq[2], Aq[0],
                   Aq[1], Aq[2]);
      }
#endif
      if (!fused) hp_pack_a(t->expp, N, M, top, rows - ic, 0, mcur / HP_MR, kb, kc, Aq[0], Aq[1], Aq[2]);
      for (int q = 0; q < 3; q++) {
        for (size_t jr = 0; jr < pcol; jr += HP_NR) {
          /* Micro-tiles reaching the lower triangle: rows [top + ir, top + ir + HP_MR) with j0 + jr < top + ir + HP_MR. */
          const size_t gj = j0 + jr;
          size_t ir = 0;
          if (gj + 1 > top + HP_MR) ir = (gj + 1 - HP_MR - top + HP_MR - 1) / HP_MR * HP_MR;
          const double *b = Bq[q] + jr * kc;
          const size_t panel = jr * prow; /* the column panel's first sum (hp_at) */
          double *c = Pt[q] + panel + (ic + ir) * HP_NR;
          for (; ir < mcur; ir += HP_MR, c += HP_MR * HP_NR) {
            if (last && Pt != P && ir + HP_MR < mcur) {
              /* In the last block of a later chunk, the next micro-tile's totals, which the join below reads and no
               * pass has touched since the first chunk (its C the micro-kernel prefetches: block_tree.h). */
              const char *total = (const char *)(P[q] + panel + (ic + ir + HP_MR) * HP_NR);
              for (int x = 0; x < HP_MR * HP_NR * 8; x += 64) __builtin_prefetch(total + x, 1, 3);
            }
            HP_UKR(kc, Aq[q] + ir * kc, b, c, HP_NR, accumulate);
            if (last) {
              /* The micro-tile's totals are final: its chunk sum joins P (as hp_add_chunk would), and once its
               * third plane is done it is combined and stored while it is in L1. */
              const size_t at = panel + (ic + ir) * HP_NR;
              if (Pt != P) {
                double *restrict x = P[q] + at;
                const double *restrict y = c;
                for (int e = 0; e < HP_MR * HP_NR; e++) x[e] += y[e];
              }
              if (q == 2 && !stream) {
                const size_t ia = top + ir, ja = j0 + jr;
                finite &= hp_finish_micro(t, P[0] + at, P[1] + at, P[2] + at, HP_NR, ia, ja, ia,
                                          HP_MIN(ia + HP_MR, i1), ja, HP_MIN(ja + HP_NR, j1));
              }
            }
          }
        }
      }
    }
    if (kb >= HPAIR_CHUNK && !last && (kb + kc) % HPAIR_CHUNK == 0) hp_add_chunk(P, Pc, prow, pcol, i0, j0);
  }
  if (K == 0 || stream) *first_bad = hp_combine(t, n, P[0], P[1], P[2], NULL, 1, 0, prow, i0, i1, j0, j1);
  else if (!finite) *first_bad = hp_first_bad(n, P[0], P[1], 1, 0, prow, i0, i1, j0, j1);
  return 0;
}

/* ---- compensated accuracy (hpair_path.tile_compensated) ----
 *
 * Each entry as if computed in twice the working precision and rounded once. The pairs are those of Ogita, Rump
 * and Oishi's Dot2 (4M): every difference a = e − e_ref is kept exactly as a pair (ah, al) (TwoSum); each quotient
 * b = a / d as a pair (bh, bl) accurate to O(u²) (the remainder of ah / d is exact by FMA). Re sums ar·br + ai·bi,
 * Im sums ai·br − ar·bi, one pair of sums (s, c) per part and entry.
 *
 * The high products are summed error-free on a fixed grid instead of by TwoSum. Per grid block (HPAIR_COMP_GRID
 * columns of k) and entry, T = Σ_k (|arh| + |aih|)·(|brh| + |bih|) bounds the sum of the magnitudes of the block's high
 * products of either part, and the block's sum S starts at σ, a power of two with 4T < σ ≤ 8T (rounded T). S then
 * stays within [σ/2, 2σ) for the whole block, so for each high product x·y:
 *   S' = fl(S + x·y)      one FMA
 *   q  = S' − S           exact: both are multiples of ulp(σ/2) and |S' − S| < σ
 *   w  = fl(x·y − q)      one FMA: the rounding error of S' (TwoProduct's residue included), rounded once
 * and w, with the cross terms xh·yl + xl·yh, goes to the block's correction c. Each product costs these three
 * operations, two FMAs for the cross terms and one addition, where TwoProduct + TwoSum cost twelve. At the
 * block's end S − σ is exact (Sterbenz), and is added to the entry's running sum by TwoSum (its error and the
 * block's c to the running correction); H = fl(s + c). The grid's spacing is u·σ = O(u·T), the block's own
 * scale, so the error of c stays O(g·u²·T) per block of g columns: short blocks keep the grid close to the
 * partial sums' own scale, as Dot2's running sum is, for one grid and one fold per block.
 *
 * Each row of a pass is one vector of columns (C vector extensions); every operation is an IEEE operation or a
 * fused multiply-add lane by lane, so the vector width cannot change a bit, and every path gives the same H. */

/* A pass of the compensated kernel covers HP_COMP_RB rows × HP_COMP_CW columns (a path may set both; the order
 * of each entry's sum does not depend on them): enough independent chains to hide their latency. */
#if !defined(HP_COMP_CW) || !defined(HP_COMP_RB)
#error "define HP_COMP_RB and HP_COMP_CW (the path's compensated pass) before including driver.h"
#endif

/* One row of a compensated pass: HP_COMP_CW doubles in GCC/clang vector extensions, whose + and − are IEEE
 * operations lane by lane. A path may define HP_VFMA and HP_VFNMA (c + a·b and c − a·b) as its fused multiply-add
 * intrinsics on this type, and HP_VSPLAT as its broadcast; otherwise fma() lane by lane: the same rounding. */
typedef double hp_v __attribute__((vector_size(HP_COMP_CW * 8)));
typedef double hp_v_u __attribute__((vector_size(HP_COMP_CW * 8), aligned(8)));
typedef uint64_t hp_vu __attribute__((vector_size(HP_COMP_CW * 8)));
#ifdef HP_VFMA
#define hp_vfma(a, b, c) ((hp_v)HP_VFMA((a), (b), (c)))
#define hp_vfnma(a, b, c) ((hp_v)HP_VFNMA((a), (b), (c)))
#else
static inline __attribute__((always_inline)) hp_v hp_vfma(hp_v a, hp_v b, hp_v c) {
  hp_v r;
  for (int x = 0; x < HP_COMP_CW; x++) r[x] = fma(a[x], b[x], c[x]);
  return r;
}
/* fl(c − a·b): a negated operand is exact, so this is fma(−a, b, c) */
static inline __attribute__((always_inline)) hp_v hp_vfnma(hp_v a, hp_v b, hp_v c) {
  hp_v r;
  for (int x = 0; x < HP_COMP_CW; x++) r[x] = fma(-a[x], b[x], c[x]);
  return r;
}
#endif
static inline __attribute__((always_inline)) hp_v hp_vload(const double *p) { return *(const hp_v_u *)p; }
static inline __attribute__((always_inline)) void hp_vstore(double *p, hp_v v) { *(hp_v_u *)p = v; }
#ifdef HP_VSPLAT
#define hp_vsplat(x) ((hp_v)HP_VSPLAT(x))
#else
static inline __attribute__((always_inline)) hp_v hp_vsplat(double x) {
  hp_v v;
  for (int i = 0; i < HP_COMP_CW; i++) v[i] = x;
  return v;
}
#endif
/* The rows of a pass, unrolled by name so that every accumulator stays in a register. */
#if HP_COMP_RB == 1
#define HP_ROWS(X) X(0)
#elif HP_COMP_RB == 2
#define HP_ROWS(X) X(0) X(1)
#elif HP_COMP_RB == 3
#define HP_ROWS(X) X(0) X(1) X(2)
#elif HP_COMP_RB == 4
#define HP_ROWS(X) X(0) X(1) X(2) X(3)
#else
#error "HP_COMP_RB must be 1 to 4"
#endif

/* The grid of a block whose rounded magnitude sum is t ≥ 0, lane by lane: the power of two in (4t, 8t], which is
 * above 4t as the exactness argument needs; 2^−1019 where t is zero or subnormal; +inf where 8t overflows, which
 * makes the entry NaN and fails the job with OVERFLOW through the final check instead of returning a wrong H. */
static inline __attribute__((always_inline)) hp_v hp_grid(hp_v t) {
  const hp_vu inf = (hp_vu){0} + 0x7ff0000000000000ull;
  hp_vu e = (hp_vu)t & inf;
  e += (hp_vu)(e == 0) & (1ull << 52);
  e += 3ull << 52;
  e ^= (e ^ inf) & (hp_vu)(e >= inf);
  return (hp_v)e;
}

/* Packs rows [r0, r0 + rows) (A) or columns (B, divided by distance) of k block [kb, kb + kc) as pairs, zeros up to
 * `padded`, in strips of w rows or columns (a pass's rows, HP_COMP_RB, or columns, HP_COMP_CW), so that a pass reads
 * its strip of both packs as two forward streams: strip s at s·5·kc·w, then k·5·w, then plane q·w, then the lane.
 * Planes: the real part's high and low parts, the imaginary part's, and |re high| + |im high| (rounded; the block's
 * magnitude sums T are formed from it). Like hp_pack, the lanes of one k are independent, so the compiler
 * vectorises the lane loop, and every value is the same IEEE operations whatever the vector width. */
static inline __attribute__((always_inline)) void hp_pack_comp(const double *expp, const double *distance, size_t N,
                                                              size_t M, size_t r0, size_t rows, size_t padded,
                                                              size_t kb, size_t kc, const int DIVIDE, const size_t w,
                                                              double *out) {
  const double *ref = expp + 2 * (N - 1) * M;
  for (size_t s0 = 0; s0 < padded; s0 += w) {
    double *restrict o = out + s0 * 5 * kc;
    const double *row0 = expp + 2 * (r0 + s0) * M;
    const size_t live = s0 >= rows ? 0 : HP_MIN(w, rows - s0); /* lanes of this strip that are not padding */
    for (size_t k = 0; k < kc; k++, o += 5 * w) {
      const size_t m = kb + 1 + k;
      const double fr = -ref[2 * m], fi = -ref[2 * m + 1];
      const double d = DIVIDE ? distance[m] : 1;
      for (size_t x = 0; x < live; x++) {
        const double *e = row0 + 2 * (x * M + m);
        /* TwoSum: the difference exactly, as h + l */
        const double er = e[0], ei = e[1];
        const double hr = er + fr, zr = hr - er, lr = (er - (hr - zr)) + (fr - zr);
        const double hi = ei + fi, zi = hi - ei, li = (ei - (hi - zi)) + (fi - zi);
        double vr = hr, wr = lr, vi = hi, wi = li;
        if (DIVIDE) {
          /* the quotient's remainder h − q·d is exact by FMA */
          vr = hr / d, wr = (fma(-vr, d, hr) + lr) / d;
          vi = hi / d, wi = (fma(-vi, d, hi) + li) / d;
        }
        o[x] = vr;
        o[w + x] = wr;
        o[2 * w + x] = vi;
        o[3 * w + x] = wi;
        o[4 * w + x] = fabs(vr) + fabs(vi);
      }
      for (size_t x = live; x < w; x++) o[x] = o[w + x] = o[2 * w + x] = o[3 * w + x] = o[4 * w + x] = 0;
    }
  }
}

static int HP_TILE_COMP(const hpair_tile_args *t, hpair_scratch *s, size_t mc, int64_t *first_bad) {
  (void)mc;
  enum { CW = HP_COMP_CW, RB = HP_COMP_RB };
  const size_t N = t->N, M = t->M, n = N - 1, K = M > 0 ? M - 1 : 0;
  const size_t i0 = HP_MAX(t->i0, t->j0), i1 = t->i1, j0 = t->j0, j1 = HP_MIN(t->j1, t->i1);
  *first_bad = -1;
  if (i0 >= i1 || j0 >= j1) return 0;
  const size_t rows = i1 - i0, cols = j1 - j0, pcol = (cols + CW - 1) / CW * CW, prow = (rows + RB - 1) / RB * RB;
  const size_t kcmax = HP_MAX((size_t)1, HP_MIN((size_t)HPAIR_COMP_KC, K));
  if (hpair_scratch_reserve(s, 5 * prow * kcmax, 5 * pcol * kcmax, 4 * prow * pcol)) return -1;
  /* Per entry (row stride pcol): Re's sum and correction, Im's sum and correction, over the blocks so far. */
  double *const Sre = s->p, *const Cre = s->p + prow * pcol, *const Sim = s->p + 2 * prow * pcol,
                *const Cim = s->p + 3 * prow * pcol;
  memset(s->p, 0, 4 * prow * pcol * sizeof(double));

  for (size_t kb = 0; kb < K; kb += HPAIR_COMP_KC) {
    const size_t kc = HP_MIN((size_t)HPAIR_COMP_KC, K - kb);
    hp_pack_comp(t->expp, NULL, N, M, i0, rows, prow, kb, kc, 0, RB, s->a);
    hp_pack_comp(t->expp, t->distance, N, M, j0, cols, pcol, kb, kc, 1, CW, s->b);
    for (size_t r = 0; r < prow; r += RB) {
      const double *const as = s->a + r * 5 * kc; /* this pass's strip of A */
      /* columns j ≤ i of the pass's last row (the others compute a few entries above the diagonal, unused) */
      const size_t cend = HP_MIN(cols, i0 + r + RB - j0);
      for (size_t cb = 0; cb < cend; cb += CW) {
        const double *const bs = s->b + cb * 5 * kc; /* and of B */
        /* Grid blocks of HPAIR_COMP_GRID columns (HPAIR_COMP_KC is a multiple: the same blocks whatever the k block) */
        for (size_t g0 = 0; g0 < kc; g0 += HPAIR_COMP_GRID) {
          const size_t g1 = HP_MIN(kc, g0 + HPAIR_COMP_GRID);
          /* The grid block's magnitude sums, as two chains (even and odd k) for latency, then its grids. */
  #define HP_DECL(y) hp_v te##y = {0}, to##y = {0}, sg##y, sr##y, cr##y = {0}, si##y, ci##y = {0};
          HP_ROWS(HP_DECL)
          size_t k = g0;
          for (; k + 1 < g1; k += 2) {
            const hp_v b0 = hp_vload(bs + k * 5 * CW + 4 * CW), b1 = hp_vload(bs + (k + 1) * 5 * CW + 4 * CW);
            const double *const a0 = as + k * 5 * RB + 4 * RB, *const a1 = a0 + 5 * RB;
  #define HP_ABS(y)                                 \
    te##y = hp_vfma(hp_vsplat(a0[y]), b0, te##y);    \
    to##y = hp_vfma(hp_vsplat(a1[y]), b1, to##y);
            HP_ROWS(HP_ABS)
          }
          if (k < g1) {
            const hp_v b0 = hp_vload(bs + k * 5 * CW + 4 * CW);
            const double *const a0 = as + k * 5 * RB + 4 * RB;
  #define HP_ABS_LAST(y) te##y = hp_vfma(hp_vsplat(a0[y]), b0, te##y);
            HP_ROWS(HP_ABS_LAST)
          }
  #define HP_GRID(y) sg##y = hp_grid(te##y + to##y), sr##y = si##y = sg##y;
          HP_ROWS(HP_GRID)
          for (k = g0; k < g1; k++) {
            const double *const ak = as + k * 5 * RB, *const bk = bs + k * 5 * CW;
            const hp_v ph = hp_vload(bk), pl = hp_vload(bk + CW), qh = hp_vload(bk + 2 * CW), ql = hp_vload(bk + 3 * CW);
            /* S' = fl(S ± x·y); w = fl(±x·y − (S' − S)), the exact S − S' as the addend; the cross terms after it. */
  #define HP_TERM(FMA, s, c, xh, xl, yh, yl)                       \
    {                                                              \
      const hp_v S = FMA(xh, yh, s);                               \
      const hp_v w = FMA(xh, yh, s - S);                           \
      c += FMA(xl, yh, FMA(xh, yl, w));                            \
      s = S;                                                       \
    }
  #define HP_STEP(y)                                                                                       \
    {                                                                                                      \
      const hp_v xh = hp_vsplat(ak[y]), xl = hp_vsplat(ak[RB + y]), yh = hp_vsplat(ak[2 * RB + y]),         \
                 yl = hp_vsplat(ak[3 * RB + y]);                                                           \
      HP_TERM(hp_vfma, sr##y, cr##y, xh, xl, ph, pl)  /* + ar·br */                                        \
      HP_TERM(hp_vfma, sr##y, cr##y, yh, yl, qh, ql)  /* + ai·bi */                                        \
      HP_TERM(hp_vfma, si##y, ci##y, yh, yl, ph, pl)  /* + ai·br */                                        \
      HP_TERM(hp_vfnma, si##y, ci##y, xh, xl, qh, ql) /* − ar·bi */                                        \
    }
            HP_ROWS(HP_STEP)
          }
          /* The grid block's sums S − σ (exact) into the running sums by TwoSum, errors and corrections into theirs. */
  #define HP_FOLD(S, C, s, c, y)                                                             \
    {                                                                                        \
      double *const ps = S + (r + y) * pcol + cb, *const pc = C + (r + y) * pcol + cb;       \
      const hp_v a = hp_vload(ps), b = s - sg##y, sum = a + b, z = sum - a;                 \
      hp_vstore(pc, hp_vload(pc) + (((a - (sum - z)) + (b - z)) + c));                      \
      hp_vstore(ps, sum);                                                                    \
    }
  #define HP_END(y) HP_FOLD(Sre, Cre, sr##y, cr##y, y) HP_FOLD(Sim, Cim, si##y, ci##y, y)
          HP_ROWS(HP_END)
        }
#undef HP_DECL
#undef HP_ABS
#undef HP_ABS_LAST
#undef HP_GRID
#undef HP_TERM
#undef HP_STEP
#undef HP_FOLD
#undef HP_END
      }
    }
  }
  *first_bad = hp_combine(t, n, Sre, Cre, Sim, Cim, 0, pcol, prow, i0, i1, j0, j1);
  return 0;
}
