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

/* Returns to the OS the free memory of every malloc arena of the process (glibc malloc_trim(0): free pages inside an
 * arena too, not only at its top). Buffers under the mmap threshold above come from arenas, and a burst of them, once
 * freed, stays resident for good when any live allocation sits above them: a service idle after a storm kept the
 * storm's memory. 1 if memory was released, 0 if none was or the C library has no such call. Process-wide: the
 * caller's thread pays for the walk over the arenas, whichever thread freed the memory. */
int hpair_trim_memory(void);
