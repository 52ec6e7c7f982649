/* How a tile's finished entries go into H (driver.h, hp_combine). An H far larger than the caches is not read back
 * from them: each ordinary store first reads its cache line from memory (a read for ownership), so writing H costs
 * twice its bytes of memory traffic, and jobs with few columns and a big H are bound by it (the bench's write-
 * bandwidth probe, src/bandwidth.c, compares the two kinds of store). Streaming (non-temporal) stores write whole
 * lines without reading them. They are used only for such an H: a small one is better left in the cache for the
 * caller, who reads it next. A stored value is the same bits either way.
 *
 * Streaming stores are weakly ordered: hp_store_end fences them, so a tile's entries are in memory before the
 * worker tells anyone the tile is done. */
#ifndef HPAIR_STORE_H
#define HPAIR_STORE_H

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <emmintrin.h>
#define HP_CAN_STREAM 1
#else
#define HP_CAN_STREAM 0
#endif

/* From this many bytes of H window, H is streamed: more than the last-level cache a job's cores share holds on
 * current machines (a virtual machine's reported L3 can be the whole host's, so it is not read from the CPU). */
#define HP_STREAM_MIN_BYTES ((size_t)64 << 20)

/* Whether to stream into h, a window of rows × cols complex values: big enough, and every entry 16-byte aligned. */
static inline int hp_stream_wanted(const double *h, size_t rows, size_t cols) {
#if HP_CAN_STREAM
  return ((uintptr_t)h & 15) == 0 && rows * cols * 16 >= HP_STREAM_MIN_BYTES;
#else
  (void)h;
  (void)rows;
  (void)cols;
  return 0;
#endif
}

/* One complex entry (re, im) at out (16-byte aligned when streaming). */
static inline __attribute__((always_inline)) void hp_store_entry(double *out, double re, double im, int stream) {
#if HP_CAN_STREAM
  if (stream) {
    _mm_stream_pd(out, _mm_set_pd(im, re));
    return;
  }
#endif
  out[0] = re;
  out[1] = im;
}

static inline void hp_store_end(int stream) {
#if HP_CAN_STREAM
  if (stream) _mm_sfence();
#else
  (void)stream;
#endif
}

#endif
