/* CPU feature detection and cache sizes.
 *
 * A feature is usable only if the CPU has it (CPUID) AND the OS saves its register state on context switches
 * (XCR0, read with XGETBV, which itself exists only when CPUID.1:ECX.OSXSAVE is set). Checking CPUID alone
 * would run AVX code on an OS that does not save YMM/ZMM registers (or with AVX disabled by a hypervisor),
 * which faults or corrupts state. */
#include "cpu.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(_M_X64)
#define HPAIR_X86 1
#include <cpuid.h>
#endif

#ifdef HPAIR_X86
static void cpuid(unsigned leaf, unsigned subleaf, unsigned r[4]) {
  r[0] = r[1] = r[2] = r[3] = 0;
  __cpuid_count(leaf, subleaf, r[0], r[1], r[2], r[3]);
}

static unsigned long long xgetbv0(void) {
  unsigned lo, hi;
  /* The instruction's bytes, so this file needs no -mxsave (the build must not require any ISA extension). */
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((unsigned long long)hi << 32) | lo;
}

/* Bytes of the data or unified cache of `level` from the deterministic cache leaf (Intel 4, AMD 0x8000001D),
 * and how many logical CPUs share it; 0 if the leaf does not describe it. */
static size_t cache_leaf(unsigned leaf, unsigned level, unsigned *sharing) {
  for (unsigned sub = 0; sub < 32; sub++) {
    unsigned r[4];
    cpuid(leaf, sub, r);
    unsigned type = r[0] & 0x1f; /* 0: no more caches, 1: data, 2: instruction, 3: unified */
    if (type == 0) break;
    if (type == 2 || ((r[0] >> 5) & 0x7) != level) continue;
    size_t ways = ((r[1] >> 22) & 0x3ff) + 1, partitions = ((r[1] >> 12) & 0x3ff) + 1;
    size_t line = (r[1] & 0xfff) + 1, sets = (size_t)r[2] + 1;
    if (sharing) *sharing = ((r[0] >> 14) & 0xfff) + 1;
    return ways * partitions * line * sets;
  }
  return 0;
}
#endif

static size_t sysconf_bytes(int name) {
  long v = sysconf(name);
  return v > 0 ? (size_t)v : 0;
}

static void detect(hpair_cpu *c) {
  memset(c, 0, sizeof *c);
#ifdef HPAIR_X86
  unsigned r[4];
  cpuid(0, 0, r);
  unsigned max_leaf = r[0];
  char vendor[13];
  memcpy(vendor, &r[1], 4);
  memcpy(vendor + 4, &r[3], 4);
  memcpy(vendor + 8, &r[2], 4);
  vendor[12] = 0;
  unsigned ecx1 = 0, ebx7 = 0;
  if (max_leaf >= 1) {
    cpuid(1, 0, r);
    ecx1 = r[2];
  }
  if (max_leaf >= 7) {
    cpuid(7, 0, r);
    ebx7 = r[1];
  }
  int fma = (ecx1 >> 12) & 1, osxsave = (ecx1 >> 27) & 1, avx = (ecx1 >> 28) & 1;
  int avx2 = (ebx7 >> 5) & 1, avx512f = (ebx7 >> 16) & 1;
  unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
  int ymm_state = (xcr0 & 0x6) == 0x6;    /* SSE and AVX (upper YMM) state */
  int zmm_state = (xcr0 & 0xe6) == 0xe6;  /* plus opmask, ZMM_Hi256 and Hi16_ZMM state */

  if (!avx || !avx2 || !fma) c->avx2_reason = "this CPU has no AVX2 and FMA";
  else if (!osxsave || !ymm_state) c->avx2_reason = "the OS does not enable AVX (YMM) state";
  else c->avx2_fma = 1;

  if (!avx512f) c->avx512_reason = "this CPU has no AVX-512F";
  else if (!c->avx2_fma) c->avx512_reason = c->avx2_reason; /* the path's packing uses AVX2 and FMA too */
  else if (!zmm_state) c->avx512_reason = "the OS does not enable AVX-512 (ZMM and opmask) state";
  else c->avx512f = 1;
#else
  c->avx2_reason = "not an x86-64 build";
  c->avx512_reason = "not an x86-64 build";
#endif

  /* Cache sizes. L1d and L2: glibc's sysconf, else CPUID's deterministic cache leaf (Intel 4, AMD 0x8000001D).
   * L3: that leaf first, since only it says how many logical CPUs share the cache, and glibc derives the L3
   * total from legacy leaves that hypervisors fill inconsistently (a KVM guest can report the host's whole L3 in
   * leaf 0x80000006 while 0x8000001D says how few CPUs share a much smaller one); sysconf (the whole L3) only when
   * the leaf is missing. */
#ifdef _SC_LEVEL1_DCACHE_SIZE
  c->l1d = sysconf_bytes(_SC_LEVEL1_DCACHE_SIZE);
  c->l2 = sysconf_bytes(_SC_LEVEL2_CACHE_SIZE);
#endif
#ifdef HPAIR_X86
  unsigned leaf = 0;
  if (strcmp(vendor, "GenuineIntel") == 0 && max_leaf >= 4) {
    leaf = 4;
  } else if (strcmp(vendor, "AuthenticAMD") == 0 || strcmp(vendor, "HygonGenuine") == 0) {
    cpuid(0x80000000u, 0, r);
    unsigned max_ext = r[0];
    if (max_ext >= 0x8000001du) {
      cpuid(0x80000001u, 0, r);
      if ((r[2] >> 22) & 1) leaf = 0x8000001du; /* TOPOEXT: the leaf is valid */
    }
  }
  if (leaf) {
    if (!c->l1d) c->l1d = cache_leaf(leaf, 1, NULL);
    if (!c->l2) c->l2 = cache_leaf(leaf, 2, NULL);
    unsigned sharing = 1;
    size_t l3 = cache_leaf(leaf, 3, &sharing);
    if (l3) c->l3 = l3 / (sharing ? sharing : 1);
  }
#endif
#ifdef _SC_LEVEL3_CACHE_SIZE
  if (!c->l3) c->l3 = sysconf_bytes(_SC_LEVEL3_CACHE_SIZE);
#endif
  /* Sane defaults when nothing could be read, and against absurd values from virtual CPUs. */
  if (c->l1d < 4096 || c->l1d > (1u << 20)) c->l1d = 32 * 1024;
  if (c->l2 < 65536 || c->l2 > (64u << 20)) c->l2 = 256 * 1024;
  if (c->l3 > (size_t)1 << 31) c->l3 = 0;
  if (c->l3 == 0) c->l3 = 1024 * 1024;
}

static hpair_cpu cpu_info;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static void detect_once(void) { detect(&cpu_info); }

const hpair_cpu *hpair_cpu_get(void) {
  pthread_once(&cpu_once, detect_once);
  return &cpu_info;
}
