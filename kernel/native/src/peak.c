/* The FMA peak probe: the double-precision flop rate one thread sustains running nothing but independent FMA
 * chains on one ISA's widest vectors, for a given duration. It is the ceiling a kernel's executed flop rate is
 * set against (the bench runs it in one thread, and in every worker thread at once, since cores that share a
 * power budget or a host clock slower together).
 *
 * The chains: each accumulator runs c = c·m + a with m just below 1, so it converges to a/(1 − m) = 1 and never
 * overflows, underflows or turns subnormal (which would slow some cores). There are more chains than FMA latency
 * × FMA ports on current x86 cores (at most 4 cycles × 2 ports), so the ports, not the latency, bound the loop;
 * all of them fit the register file (16 of 32 zmm, 12 of 16 ymm) with the two operands. The clock is read between
 * batches only, so its cost is a negligible share of the time. The accumulators' sum goes to a volatile sink, so
 * no compiler can drop the loop. */
#include "peak.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "cpu.h"

#define MAX_SECONDS 10.0
#define BATCH 4096 /* iterations between clock reads */

static volatile double peak_sink;

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HPAIR_PEAK_X86 1
#include <immintrin.h>

#define M_FACTOR 0.9999999
#define A_TERM 1e-7

/* Returns flops per second; runs whole batches until `seconds` have passed. */
__attribute__((target("avx512f"))) static double run_avx512(double seconds) {
  const __m512d m = _mm512_set1_pd(M_FACTOR), a = _mm512_set1_pd(A_TERM);
  __m512d c0 = _mm512_set1_pd(1.00), c1 = _mm512_set1_pd(1.01), c2 = _mm512_set1_pd(1.02), c3 = _mm512_set1_pd(1.03);
  __m512d c4 = _mm512_set1_pd(1.04), c5 = _mm512_set1_pd(1.05), c6 = _mm512_set1_pd(1.06), c7 = _mm512_set1_pd(1.07);
  __m512d c8 = _mm512_set1_pd(1.08), c9 = _mm512_set1_pd(1.09), c10 = _mm512_set1_pd(1.10), c11 = _mm512_set1_pd(1.11);
  __m512d c12 = _mm512_set1_pd(1.12), c13 = _mm512_set1_pd(1.13), c14 = _mm512_set1_pd(1.14), c15 = _mm512_set1_pd(1.15);
  uint64_t iterations = 0;
  const double start = now_seconds();
  double elapsed;
  do {
    for (int i = 0; i < BATCH; i++) {
      c0 = _mm512_fmadd_pd(c0, m, a), c1 = _mm512_fmadd_pd(c1, m, a), c2 = _mm512_fmadd_pd(c2, m, a), c3 = _mm512_fmadd_pd(c3, m, a);
      c4 = _mm512_fmadd_pd(c4, m, a), c5 = _mm512_fmadd_pd(c5, m, a), c6 = _mm512_fmadd_pd(c6, m, a), c7 = _mm512_fmadd_pd(c7, m, a);
      c8 = _mm512_fmadd_pd(c8, m, a), c9 = _mm512_fmadd_pd(c9, m, a), c10 = _mm512_fmadd_pd(c10, m, a), c11 = _mm512_fmadd_pd(c11, m, a);
      c12 = _mm512_fmadd_pd(c12, m, a), c13 = _mm512_fmadd_pd(c13, m, a), c14 = _mm512_fmadd_pd(c14, m, a), c15 = _mm512_fmadd_pd(c15, m, a);
      /* Keeps the loop as written: no reassociation of the chains across iterations. */
      __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5), "+v"(c6), "+v"(c7));
      __asm__ volatile("" : "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11), "+v"(c12), "+v"(c13), "+v"(c14), "+v"(c15));
    }
    iterations += BATCH;
    elapsed = now_seconds() - start;
  } while (elapsed < seconds);
  __m512d s = _mm512_add_pd(_mm512_add_pd(_mm512_add_pd(c0, c1), _mm512_add_pd(c2, c3)), _mm512_add_pd(_mm512_add_pd(c4, c5), _mm512_add_pd(c6, c7)));
  s = _mm512_add_pd(s, _mm512_add_pd(_mm512_add_pd(_mm512_add_pd(c8, c9), _mm512_add_pd(c10, c11)), _mm512_add_pd(_mm512_add_pd(c12, c13), _mm512_add_pd(c14, c15))));
  double lanes[8];
  _mm512_storeu_pd(lanes, s);
  peak_sink = lanes[0] + lanes[7];
  return (double)iterations * 16 /* chains */ * 8 /* lanes */ * 2 /* flops per FMA */ / elapsed;
}

__attribute__((target("avx2,fma"))) static double run_avx2(double seconds) {
  const __m256d m = _mm256_set1_pd(M_FACTOR), a = _mm256_set1_pd(A_TERM);
  __m256d c0 = _mm256_set1_pd(1.00), c1 = _mm256_set1_pd(1.01), c2 = _mm256_set1_pd(1.02), c3 = _mm256_set1_pd(1.03);
  __m256d c4 = _mm256_set1_pd(1.04), c5 = _mm256_set1_pd(1.05), c6 = _mm256_set1_pd(1.06), c7 = _mm256_set1_pd(1.07);
  __m256d c8 = _mm256_set1_pd(1.08), c9 = _mm256_set1_pd(1.09), c10 = _mm256_set1_pd(1.10), c11 = _mm256_set1_pd(1.11);
  uint64_t iterations = 0;
  const double start = now_seconds();
  double elapsed;
  do {
    for (int i = 0; i < BATCH; i++) {
      c0 = _mm256_fmadd_pd(c0, m, a), c1 = _mm256_fmadd_pd(c1, m, a), c2 = _mm256_fmadd_pd(c2, m, a), c3 = _mm256_fmadd_pd(c3, m, a);
      c4 = _mm256_fmadd_pd(c4, m, a), c5 = _mm256_fmadd_pd(c5, m, a), c6 = _mm256_fmadd_pd(c6, m, a), c7 = _mm256_fmadd_pd(c7, m, a);
      c8 = _mm256_fmadd_pd(c8, m, a), c9 = _mm256_fmadd_pd(c9, m, a), c10 = _mm256_fmadd_pd(c10, m, a), c11 = _mm256_fmadd_pd(c11, m, a);
      __asm__ volatile("" : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3), "+x"(c4), "+x"(c5));
      __asm__ volatile("" : "+x"(c6), "+x"(c7), "+x"(c8), "+x"(c9), "+x"(c10), "+x"(c11));
    }
    iterations += BATCH;
    elapsed = now_seconds() - start;
  } while (elapsed < seconds);
  __m256d s = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(c0, c1), _mm256_add_pd(c2, c3)), _mm256_add_pd(_mm256_add_pd(c4, c5), _mm256_add_pd(c6, c7)));
  s = _mm256_add_pd(s, _mm256_add_pd(_mm256_add_pd(c8, c9), _mm256_add_pd(c10, c11)));
  double lanes[4];
  _mm256_storeu_pd(lanes, s);
  peak_sink = lanes[0] + lanes[3];
  return (double)iterations * 12 /* chains */ * 4 /* lanes */ * 2 /* flops per FMA */ / elapsed;
}
#endif

static napi_value throw_error(napi_env env, int range, const char *message) {
  napi_value code, text, error;
  if (napi_create_string_utf8(env, "ERR_HPAIR_NATIVE", NAPI_AUTO_LENGTH, &code) == napi_ok &&
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text) == napi_ok &&
      (range ? napi_create_range_error(env, code, text, &error) : napi_create_error(env, code, text, &error)) == napi_ok)
    napi_throw(env, error);
  return NULL;
}

static napi_value throw_type_error(napi_env env, const char *message) {
  napi_value code, text, error;
  if (napi_create_string_utf8(env, "ERR_HPAIR_NATIVE", NAPI_AUTO_LENGTH, &code) == napi_ok &&
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text) == napi_ok &&
      napi_create_type_error(env, code, text, &error) == napi_ok)
    napi_throw(env, error);
  return NULL;
}

/* fmaPeak(path, seconds): flops per second of this thread on that path's FMA, measured for `seconds`
 * (0 < seconds ≤ 10). Throws for an unknown path, one this CPU or OS cannot run, or a bad duration. */
napi_value hpair_fma_peak_fn(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t argc = 2;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return throw_error(env, 0, "could not read the arguments");
  if (argc < 2) return throw_type_error(env, "fmaPeak(path, seconds) takes a path ('avx512' or 'avx2') and a duration in seconds");
  char name[16];
  size_t len = 0;
  napi_valuetype t;
  if (napi_typeof(env, argv[0], &t) != napi_ok || t != napi_string || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok)
    return throw_type_error(env, "path must be a string ('avx512' or 'avx2')");
  double seconds;
  if (napi_typeof(env, argv[1], &t) != napi_ok || t != napi_number || napi_get_value_double(env, argv[1], &seconds) != napi_ok)
    return throw_type_error(env, "seconds must be a number");
  if (!(seconds > 0 && seconds <= MAX_SECONDS)) return throw_error(env, 1, "seconds must be in (0, 10]");
  const hpair_cpu *cpu = hpair_cpu_get();
  double rate;
  if (len == 6 && memcmp(name, "avx512", 6) == 0) {
    if (!cpu->avx512f) return throw_error(env, 0, cpu->avx512_reason ? cpu->avx512_reason : "AVX-512 is not usable here");
#ifdef HPAIR_PEAK_X86
    rate = run_avx512(seconds);
#else
    return throw_error(env, 0, "this build has no code for it");
#endif
  } else if (len == 4 && memcmp(name, "avx2", 4) == 0) {
    if (!cpu->avx2_fma) return throw_error(env, 0, cpu->avx2_reason ? cpu->avx2_reason : "AVX2 and FMA are not usable here");
#ifdef HPAIR_PEAK_X86
    rate = run_avx2(seconds);
#else
    return throw_error(env, 0, "this build has no code for it");
#endif
  } else {
    return throw_type_error(env, "path must be 'avx512' or 'avx2'");
  }
  napi_value result;
  if (napi_create_double(env, rate, &result) != napi_ok) return throw_error(env, 0, "could not return the rate");
  return result;
}
