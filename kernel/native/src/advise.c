/* Why: an H or a scratch buffer is a fresh mapping that the workers first touch while they compute, one page fault
 * per 4 KiB. On a virtual machine a fault is dear (the host backs the page too), and a big H has a great many
 * pages, so faulting can be a large share of a job (`npm run bench:release` measures it). Huge pages take one
 * fault per 2 MiB instead, and fewer TLB misses when tiles write H's mirror column by column. The advice must come
 * before the first touch: the buffers are zero-filled lazily (calloc over a fresh mmap), so a new SharedArrayBuffer
 * has no page yet. */
#include "advise.h"

#include <stdint.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(__GLIBC__)
#include <malloc.h>
#include <stdlib.h>
#endif

#define HUGE_PAGE ((uintptr_t)2 << 20)

size_t hpair_advise_huge_pages(void *data, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  uintptr_t start = ((uintptr_t)data + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
  uintptr_t end = ((uintptr_t)data + bytes) & ~(HUGE_PAGE - 1);
  if ((uintptr_t)data + bytes < (uintptr_t)data || end <= start) return 0;
  return madvise((void *)start, end - start, MADV_HUGEPAGE) == 0 ? (size_t)(end - start) : 0;
#else
  (void)data;
  (void)bytes;
  return 0;
#endif
}

void hpair_pin_mmap_threshold(void) {
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD)
  static volatile int pinned = 0; /* each thread that loads the addon may get here; mallopt is itself thread-safe */
  if (pinned) return;
  pinned = 1;
  const char *off = getenv("HPAIR_NO_HUGE_PAGES");
  if (off != NULL && off[0] != '\0' && !(off[0] == '0' && off[1] == '\0')) return;
  mallopt(M_MMAP_THRESHOLD, (int)HUGE_PAGE);
#endif
}

int hpair_trim_memory(void) {
#if defined(__GLIBC__)
  return malloc_trim(0);
#else
  return 0;
#endif
}
