/* The write-bandwidth probe: the bench's limit for jobs whose time goes to writing H (few columns, a big H), as
 * fmaPeak is the limit for jobs whose time goes to arithmetic. A thread writes the whole of a caller's buffer over
 * and over for a given time; the bench gives each of several worker threads a slice of one buffer larger than the
 * caches and runs them at once, so the figure is what the memory system takes from that many threads together.
 *
 * Two kinds of store: ordinary ones, which first read each cache line they write (as H's stores do), and streaming
 * (non-temporal) ones, which write whole lines without reading them first and which only x86-64 has here (elsewhere
 * the streaming probe uses ordinary stores). The faster of the two is the machine's write bandwidth.
 *
 * One untimed pass comes first, so page faults of a fresh buffer are not timed. The value written changes per
 * pass and is never 0, so no compiler can turn a pass into a memset call (glibc's memset picks its own kind of
 * store by size) or drop a pass as a repeat of the one before. */
#include "bandwidth.h"

#include <stddef.h>
#include <stdint.h>

#include "peak_loop.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <emmintrin.h>
#define HPAIR_HAS_STREAM 1
#else
#define HPAIR_HAS_STREAM 0
#endif

#define ERROR_CODE "ERR_HPAIR_NATIVE"

static void store_pass(double *restrict p, size_t n, double v) {
  for (size_t i = 0; i < n; i++) p[i] = v;
}

#if HPAIR_HAS_STREAM
static void stream_pass(double *restrict p, size_t n, double v) {
  size_t i = 0;
  for (; i < n && ((uintptr_t)(p + i) & 15) != 0; i++) p[i] = v; /* up to the first 16-byte boundary */
  const __m128d x = _mm_set1_pd(v);
  for (; i + 8 <= n; i += 8) {
    _mm_stream_pd(p + i, x);
    _mm_stream_pd(p + i + 2, x);
    _mm_stream_pd(p + i + 4, x);
    _mm_stream_pd(p + i + 6, x);
  }
  for (; i < n; i++) p[i] = v;
  _mm_sfence(); /* the pass's lines are written before the clock is read */
}
#endif

static double write_bandwidth(double *p, size_t n, double seconds, int streaming) {
  void (*pass)(double *restrict, size_t, double) = store_pass;
#if HPAIR_HAS_STREAM
  if (streaming) pass = stream_pass;
#else
  (void)streaming;
#endif
  pass(p, n, 1.0);
  size_t passes = 0;
  const double start = hpair_now_seconds();
  double elapsed = 0;
  do {
    pass(p, n, (double)(passes + 2));
    passes++;
    elapsed = hpair_now_seconds() - start;
  } while (elapsed < seconds);
  return (double)passes * (double)n * sizeof(double) / elapsed;
}

static napi_value throw_with(napi_env env, int range, const char *message) {
  if (range) napi_throw_range_error(env, ERROR_CODE, message);
  else napi_throw_type_error(env, ERROR_CODE, message);
  return NULL;
}

napi_value hpair_write_bandwidth_fn(napi_env env, napi_callback_info cb) {
  napi_value argv[3];
  size_t argc = 3;
  if (napi_get_cb_info(env, cb, &argc, argv, NULL, NULL) != napi_ok || argc < 3)
    return throw_with(env, 0, "writeBandwidth(values, seconds, streaming) takes a Float64Array, a duration in seconds and a boolean");
  bool is = false;
  napi_typedarray_type type;
  size_t length = 0;
  void *data = NULL;
  if (napi_is_typedarray(env, argv[0], &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_float64_array)
    return throw_with(env, 0, "values must be a Float64Array");
  if (length == 0) return throw_with(env, 1, "values must hold at least one value");
  napi_valuetype t;
  double seconds = 0;
  if (napi_typeof(env, argv[1], &t) != napi_ok || t != napi_number || napi_get_value_double(env, argv[1], &seconds) != napi_ok)
    return throw_with(env, 0, "seconds must be a number");
  if (!(seconds > 0 && seconds <= 10)) return throw_with(env, 1, "seconds must be in (0, 10]");
  bool streaming = false;
  if (napi_typeof(env, argv[2], &t) != napi_ok || t != napi_boolean || napi_get_value_bool(env, argv[2], &streaming) != napi_ok)
    return throw_with(env, 0, "streaming must be a boolean");
  napi_value result;
  napi_create_double(env, write_bandwidth(data, length, seconds, streaming), &result);
  return result;
}
