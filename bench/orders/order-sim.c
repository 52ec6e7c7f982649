/* Simulates a summation order of the native 3M default kernel in scalar C, operation for operation (the same
 * packing, fma() chains, block, chunk and 3M combination as kernel/native/src/driver.h), so that candidate orders
 * can be compared with the exact oracle and numpy (compare.mjs) before a micro-kernel is written. With
 * kc = HPAIR_KC, chains = HPAIR_SUB and HPAIR_CHUNK_BLOCKS it gives the native kernels' bits (compare.mjs --hpair
 * checks).
 *   order-sim N M expp.bin distance.bin out.bin kc chains(1|2|4) blocks_per_chunk seq|pair
 * chains: interleaved FMA chains per block (k mod chains, each from +0), joined at the block's end as c0 + c1 or
 * (c0 + c2) + (c1 + c3); a value of 8 or more is instead a sub-block length: the block's contiguous sub-blocks of
 * that many columns, one chain each, joined by the binary tree of kernel/native/src/block_tree.h (the native
 * kernels' order: kc = HPAIR_KC, chains = HPAIR_SUB, blocks_per_chunk = HPAIR_CHUNK_BLOCKS); seq|pair: a chunk's block sums added in order, or pairwise.
 * expp.bin: N×M complex interleaved doubles; distance.bin: M doubles; out.bin: (N−1)×(N−1) complex H.
 * Build: cc -O2 -ffp-contract=off bench/orders/order-sim.c -lm -o /tmp/order-sim */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t KC, CHAINS, CB;
static int PAIR;

static double block_sum(const double *x, const double *y, size_t k) {
  if (CHAINS >= 8) { /* contiguous sub-blocks of CHAINS columns, one chain each, joined by block_tree.h's tree */
    double level[8];
    unsigned n = 0;
    for (size_t t0 = 0; t0 < k || (k == 0 && n == 0); t0 += CHAINS, n++) {
      double c = 0;
      for (size_t t = t0; t < k && t < t0 + CHAINS; t++) c = fma(x[t], y[t], c);
      unsigned l = 0;
      for (; (n >> l) & 1; l++) c = level[l] + c;
      level[l] = c;
    }
    unsigned l = 0;
    while (!((n >> l) & 1)) l++;
    double r = level[l];
    for (l++; (n >> l) != 0; l++)
      if ((n >> l) & 1) r = level[l] + r;
    return r;
  }
  double c[8] = {0};
  for (size_t t = 0; t < k; t++) c[t % CHAINS] = fma(x[t], y[t], c[t % CHAINS]);
  if (CHAINS == 1) return c[0];
  if (CHAINS == 2) return c[0] + c[1];
  if (CHAINS == 4) return (c[0] + c[2]) + (c[1] + c[3]);
  abort();
}

static double pairwise(const double *v, size_t n) {
  if (n == 1) return v[0];
  const size_t h = (n + 1) / 2;
  return pairwise(v, h) + pairwise(v + h, n - h);
}

static double plane_sum(const double *x, const double *y, size_t K) {
  double total = 0, blocks[4096];
  const size_t chunk = KC * CB;
  for (size_t c0 = 0; c0 < K; c0 += chunk) {
    size_t nb = 0;
    for (size_t b0 = c0; b0 < K && b0 < c0 + chunk; b0 += KC) {
      const size_t k = K - b0 < KC ? K - b0 : KC;
      blocks[nb++] = block_sum(x + b0, y + b0, k);
    }
    double cs;
    if (PAIR) cs = pairwise(blocks, nb);
    else {
      cs = blocks[0];
      for (size_t b = 1; b < nb; b++) cs = cs + blocks[b];
    }
    total = c0 == 0 ? cs : total + cs;
  }
  return total;
}

int main(int argc, char **argv) {
  if (argc < 10) {
    fprintf(stderr, "usage: order-sim N M expp.bin distance.bin out.bin kc chains blocks_per_chunk seq|pair\n");
    return 2;
  }
  const size_t N = strtoul(argv[1], 0, 10), M = strtoul(argv[2], 0, 10), n = N - 1, K = M - 1;
  KC = strtoul(argv[6], 0, 10), CHAINS = strtoul(argv[7], 0, 10), CB = strtoul(argv[8], 0, 10);
  if (N < 2 || M < 2 || KC == 0 || CB == 0 || CB > 4096 || (CHAINS != 1 && CHAINS != 2 && CHAINS != 4 && (CHAINS < 8 || KC / CHAINS > 64))) {
    fprintf(stderr, "order-sim: bad N, M, kc, chains or blocks_per_chunk\n");
    return 2;
  }
  PAIR = strcmp(argv[9], "pair") == 0;
  double *e = malloc(16 * N * M), *d = malloc(8 * M);
  FILE *f = fopen(argv[3], "rb");
  if (!f || fread(e, 16, N * M, f) != N * M) return 3;
  fclose(f);
  f = fopen(argv[4], "rb");
  if (!f || fread(d, 8, M, f) != M) return 3;
  fclose(f);
  double *ar = malloc(8 * n * K), *ai = malloc(8 * n * K), *as = malloc(8 * n * K);
  double *br = malloc(8 * n * K), *bi = malloc(8 * n * K), *bs = malloc(8 * n * K);
  const double *ref = e + 2 * (N - 1) * M;
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < K; k++) {
      const size_t m = k + 1;
      const double xr = e[2 * (i * M + m)] - ref[2 * m], xi = e[2 * (i * M + m) + 1] - ref[2 * m + 1];
      ar[i * K + k] = xr, ai[i * K + k] = xi, as[i * K + k] = xr + xi;
      const double yr = xr / d[m], yi = xi / d[m];
      br[i * K + k] = yr, bi[i * K + k] = yi, bs[i * K + k] = yr - yi;
    }
  double *h = calloc(2 * n * n, 8);
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j <= i; j++) {
      const double p1 = plane_sum(ar + i * K, br + j * K, K), p2 = plane_sum(ai + i * K, bi + j * K, K),
                   p3 = plane_sum(as + i * K, bs + j * K, K);
      const double re = p1 + p2, im = i == j ? 0 : (p3 - p1) + p2;
      h[2 * (i * n + j)] = re, h[2 * (i * n + j) + 1] = im;
      h[2 * (j * n + i)] = re, h[2 * (j * n + i) + 1] = -im;
    }
  f = fopen(argv[5], "wb");
  if (!f || fwrite(h, 16, n * n, f) != n * n || fclose(f)) return 3;
  return 0;
}
