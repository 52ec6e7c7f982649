#include "kernel.h"

#include <stdlib.h>

static int grow(double **buf, size_t *cap, size_t need) {
  if (need <= *cap) return 0;
  if (need > ((size_t)-1) / sizeof(double)) return -1;
  void *mem = NULL;
  if (posix_memalign(&mem, 64, need * sizeof(double)) != 0) return -1;
  free(*buf);
  *buf = mem;
  *cap = need;
  return 0;
}

int hpair_scratch_reserve(hpair_scratch *s, size_t a, size_t b, size_t p) {
  if (grow(&s->a, &s->a_cap, a) || grow(&s->b, &s->b_cap, b) || grow(&s->p, &s->p_cap, p)) return -1;
  return 0;
}

void hpair_scratch_free(hpair_scratch *s) {
  free(s->a);
  free(s->b);
  free(s->p);
  s->a = s->b = s->p = NULL;
  s->a_cap = s->b_cap = s->p_cap = 0;
}

/* Rows of one A plane (kc doubles each) in `bytes`: a multiple of mr, at least mr and at most `most`. */
static size_t mc_for(const hpair_path *path, size_t bytes, size_t most) {
  const size_t mr = (size_t)path->mr;
  size_t mc = bytes / ((size_t)path->kc * sizeof(double));
  mc -= mc % mr;
  if (mc < mr) mc = mr;
  return mc > most ? most : mc;
}

size_t hpair_choose_mc(const hpair_path *path, size_t l2_bytes) {
  return mc_for(path, l2_bytes / 2, (size_t)path->mc_max_panels * (size_t)path->mr);
}

static size_t gcd(size_t a, size_t b) { return b ? gcd(b, a % b) : a; }

size_t hpair_choose_tile_mc(const hpair_path *path, size_t l1d_bytes, size_t l2_bytes, size_t cols, int diagonal) {
  const size_t nr = (size_t)path->nr, kc = (size_t)path->kc, pcol = (cols + nr - 1) / nr * nr;
  const size_t mr = (size_t)path->mr, most = hpair_choose_mc(path, l2_bytes);
  size_t mc = 3 * pcol * kc * sizeof(double) <= l2_bytes ? mc_for(path, l1d_bytes, most) : most;
  if (diagonal) {
    const size_t step = mr / gcd(mr, nr) * nr; /* row blocks that start on B panels */
    mc = mc < step ? step : mc - mc % step;
  }
  return mc;
}
