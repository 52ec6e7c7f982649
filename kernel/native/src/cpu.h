/* CPU features and cache sizes, detected at run time (never assumed from the build machine). */
#ifndef HPAIR_CPU_H
#define HPAIR_CPU_H

#include <stddef.h>

/* The x86-64 ISA facts the x86 paths' checks read (why_not in path_avx2.c, path_avx512.c; elsewhere they say
 * "not an x86-64 build"), and the cache sizes every path's mc rule reads. */
typedef struct hpair_cpu {
  int avx2_fma;            /* AVX2 and FMA in CPUID, and the OS saves YMM state (XCR0 bits 1, 2) */
  int avx512f;             /* avx2_fma, AVX-512F in CPUID, and the OS saves opmask and ZMM state (XCR0 bits 5, 6, 7) */
  const char *avx2_reason;   /* why avx2_fma is 0, or NULL */
  const char *avx512_reason; /* why avx512f is 0, or NULL */
  size_t l1d;              /* bytes of L1 data cache per core */
  size_t l2;               /* bytes of L2 per core */
  size_t l3;               /* bytes of L3 per core: the L3 size divided by the logical CPUs that share it */
} hpair_cpu;

/* Detected once per process (idempotent and thread-safe: every caller computes the same values). */
const hpair_cpu *hpair_cpu_get(void);

#endif
