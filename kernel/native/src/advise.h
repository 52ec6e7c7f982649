#pragma once
#include <stddef.h>

/* Asks the OS to back [data, data + bytes) with transparent huge pages (Linux MADV_HUGEPAGE), for the 2 MiB-aligned
 * part of the range. Returns the bytes advised: 0 when the range holds no aligned 2 MiB, the OS has no such advice,
 * or it refused (THP "never", an old kernel). Only ever a hint: nothing breaks when it is not taken. */
size_t hpair_advise_huge_pages(void *data, size_t bytes);
