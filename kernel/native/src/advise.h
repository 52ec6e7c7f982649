#pragma once
#include <stddef.h>

/* Asks the OS to back [data, data + bytes) with transparent huge pages (Linux MADV_HUGEPAGE), for the 2 MiB-aligned
 * part of the range. Returns the bytes advised: 0 when the range holds no aligned 2 MiB, the OS has no such advice,
 * or it refused (THP "never", an old kernel). Only ever a hint: nothing breaks when it is not taken. */
size_t hpair_advise_huge_pages(void *data, size_t bytes);

/* Makes glibc serve every allocation from 2 MiB up with a fresh mapping (mallopt M_MMAP_THRESHOLD), once per
 * process, unless HPAIR_NO_HUGE_PAGES is set. glibc raises that threshold by itself (up to 32 MiB) each time a
 * mapped chunk is freed, so in a long-lived process a big SharedArrayBuffer came from a heap arena that calloc
 * had to clear: its pages were touched, in 4 KiB pages, before the advice above could apply, and freeing it did
 * not return its memory to the OS. Fixing the threshold keeps both promises. No-op elsewhere (musl always maps
 * large blocks afresh). */
void hpair_pin_mmap_threshold(void);
