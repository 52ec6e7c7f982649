#ifndef HPAIR_SCAN_H
#define HPAIR_SCAN_H
#include <stddef.h>
#include <stdint.h>
/* Index of the first NaN or ±Infinity in values[start, end), or −1. */
int64_t hpair_scan_non_finite(const double *values, size_t start, size_t end);
#endif
