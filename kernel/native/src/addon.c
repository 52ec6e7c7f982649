/* Node-API entry points of the native kernel. Every argument is validated before any memory is touched, and a
 * path runs only if cpu.c found it usable on this CPU and OS: a bad call throws (code ERR_HPAIR_NATIVE), it never
 * crashes the process or executes an unsupported instruction.
 *
 * Context-aware (NAPI_MODULE_INIT), so it loads in every worker thread. Each environment (the main thread and
 * each worker) keeps its own scratch (packed panels, P buffers) as instance data, freed when that environment
 * is torn down; nothing mutable is shared between threads.
 *
 * Data pointers come from napi_get_typedarray_info, which already adds the view's byteOffset. Its arraybuffer
 * out-parameter is passed NULL: the inputs are views over SharedArrayBuffers and WebAssembly.Memory buffers,
 * which Node-API does not treat as ArrayBuffers. */
#define NAPI_VERSION 8
#include <node_api.h>

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "advise.h"
#include "bandwidth.h"
#include "cpu.h"
#include "kernel.h"
#include "paths_table.h"
#include "scan.h"

#define ERROR_CODE "ERR_HPAIR_NATIVE"
#define MAX_SAFE 9007199254740991.0 /* 2^53 − 1 */

typedef enum { KIND_ERROR, KIND_TYPE, KIND_RANGE } error_kind;

typedef struct instance {
  hpair_scratch scratch;
} instance;

static int path_supported(const hpair_path *p, const char **reason) {
  const char *why = p->why_not();
  if (!why && (!p->ukr || !p->tile || !p->tile_compensated || !p->fma_peak || !p->pack)) why = "this build has no code for it";
  if (reason) *reason = why;
  return why == NULL;
}

/* "'avx512', 'avx2' or 'portable'": every path's name, for messages. */
static const char *path_names(void) {
  static char text[256];
  if (!text[0]) {
    char buf[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < HPAIR_PATH_COUNT; i++) {
      const char *sep = i == 0 ? "" : i + 1 == HPAIR_PATH_COUNT ? " or " : ", ";
      int w = snprintf(buf + used, sizeof buf - used, "%s'%s'", sep, hpair_paths[i]->name);
      if (w > 0 && (size_t)w < sizeof buf - used) used += (size_t)w;
    }
    memcpy(text, buf, sizeof text); /* every thread writes the same bytes */
  }
  return text;
}

/* Throws and returns NULL, so callers can `return fail(...)`. */
static napi_value fail(napi_env env, error_kind kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static napi_value fail(napi_env env, error_kind kind, const char *fmt, ...) {
  char text[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  napi_value code, message, error;
  if (napi_create_string_utf8(env, ERROR_CODE, NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message) != napi_ok)
    return NULL;
  napi_status s = kind == KIND_TYPE    ? napi_create_type_error(env, code, message, &error)
                  : kind == KIND_RANGE ? napi_create_range_error(env, code, message, &error)
                                       : napi_create_error(env, code, message, &error);
  if (s == napi_ok) napi_throw(env, error);
  return NULL;
}

static int pending(napi_env env) {
  bool p = false;
  napi_is_exception_pending(env, &p);
  return p;
}

/* Arguments: exactly `want` are read; missing ones are `undefined` and fail their type check. */
static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    fail(env, KIND_ERROR, "could not read the arguments");
    return -1;
  }
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  for (size_t i = argc; i < want; i++) argv[i] = undefined;
  return 0;
}

static int get_f64_array(napi_env env, napi_value v, const char *name, double **data, size_t *length) {
  bool is = false;
  napi_typedarray_type type;
  size_t len = 0;
  void *ptr = NULL;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &type, &len, &ptr, NULL, NULL) != napi_ok || type != napi_float64_array) {
    fail(env, KIND_TYPE, "%s must be a Float64Array", name);
    return -1;
  }
  *data = ptr;
  *length = len;
  return 0;
}

/* A non-negative integer number no larger than 2^53 − 1. */
static int get_size(napi_env env, napi_value v, const char *name, size_t *out) {
  napi_valuetype t;
  double x;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number || napi_get_value_double(env, v, &x) != napi_ok) {
    fail(env, KIND_TYPE, "%s must be a number", name);
    return -1;
  }
  if (!(x >= 0 && x <= MAX_SAFE) || x != floor(x)) {
    fail(env, KIND_RANGE, "%s must be a non-negative integer (got %g)", name, x);
    return -1;
  }
  *out = (size_t)x;
  return 0;
}

/* The path named by v; one this CPU cannot run throws unless `any` is set. */
static int get_path_checked(napi_env env, napi_value v, const hpair_path **out, int any) {
  char name[16];
  size_t len = 0;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string ||
      napi_get_value_string_utf8(env, v, name, sizeof name, &len) != napi_ok) {
    fail(env, KIND_TYPE, "path must be a string (%s)", path_names());
    return -1;
  }
  for (size_t i = 0; i < HPAIR_PATH_COUNT; i++) {
    if (len == strlen(hpair_paths[i]->name) && memcmp(name, hpair_paths[i]->name, len) == 0) {
      const char *reason;
      if (!any && !path_supported(hpair_paths[i], &reason)) {
        fail(env, KIND_ERROR, "path '%s' is not supported here: %s", hpair_paths[i]->name, reason);
        return -1;
      }
      *out = hpair_paths[i];
      return 0;
    }
  }
  fail(env, KIND_TYPE, "path must be %s (got '%s')", path_names(), name);
  return -1;
}

static int get_path(napi_env env, napi_value v, const hpair_path **out) { return get_path_checked(env, v, out, 0); }

static instance *get_instance(napi_env env) {
  instance *inst = NULL;
  if (napi_get_instance_data(env, (void **)&inst) != napi_ok || !inst) {
    fail(env, KIND_ERROR, "the addon's per-thread data is missing");
    return NULL;
  }
  return inst;
}

/* ---- info() ---- */

static int set_number(napi_env env, napi_value obj, const char *key, double x) {
  napi_value v;
  return napi_create_double(env, x, &v) != napi_ok || napi_set_named_property(env, obj, key, v) != napi_ok;
}

static int set_string(napi_env env, napi_value obj, const char *key, const char *s) {
  napi_value v;
  return napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v) != napi_ok ||
         napi_set_named_property(env, obj, key, v) != napi_ok;
}

static napi_value info_fn(napi_env env, napi_callback_info cb) {
  (void)cb;
  const hpair_cpu *cpu = hpair_cpu_get();
  napi_value result, list, cache;
  int bad = napi_create_object(env, &result) != napi_ok || napi_create_array_with_length(env, HPAIR_PATH_COUNT, &list) != napi_ok;
  for (size_t i = 0; !bad && i < HPAIR_PATH_COUNT; i++) {
    const hpair_path *p = hpair_paths[i];
    const char *reason;
    int ok = path_supported(p, &reason);
    napi_value entry, flag, fast;
    bad = napi_create_object(env, &entry) != napi_ok || set_string(env, entry, "name", p->name) ||
          napi_get_boolean(env, ok, &flag) != napi_ok || napi_set_named_property(env, entry, "supported", flag) != napi_ok ||
          (!ok && set_string(env, entry, "reason", reason)) || set_number(env, entry, "mr", p->mr) ||
          set_number(env, entry, "nr", p->nr) || set_number(env, entry, "kc", p->kc) ||
          set_number(env, entry, "mc", (double)hpair_choose_mc(p, cpu->l2)) || set_number(env, entry, "mcMaxPanels", p->mc_max_panels) ||
          set_number(env, entry, "compRows", p->comp_rows) || set_number(env, entry, "compCols", p->comp_cols) ||
          set_number(env, entry, "tile", p->tile_edge) || set_number(env, entry, "chunk", HPAIR_CHUNK) ||
          set_number(env, entry, "compKc", HPAIR_COMP_KC) ||
          set_number(env, entry, "lanes", p->lanes) || napi_get_boolean(env, p->fast_fma, &fast) != napi_ok ||
          napi_set_named_property(env, entry, "fastFma", fast) != napi_ok ||
          napi_set_element(env, list, (uint32_t)i, entry) != napi_ok;
  }
  bad = bad || napi_set_named_property(env, result, "paths", list) != napi_ok || napi_create_object(env, &cache) != napi_ok ||
        set_number(env, cache, "l1d", (double)cpu->l1d) || set_number(env, cache, "l2", (double)cpu->l2) ||
        set_number(env, cache, "l3", (double)cpu->l3) || napi_set_named_property(env, result, "cache", cache) != napi_ok;
#if defined(__clang__)
  const char *compiler = "clang " __clang_version__;
#elif defined(__GNUC__)
  const char *compiler = "gcc " __VERSION__;
#else
  const char *compiler = "unknown";
#endif
  bad = bad || set_string(env, result, "compiler", compiler);
  if (bad) return pending(env) ? NULL : fail(env, KIND_ERROR, "could not build the info object");
  return result;
}

/* ---- scanNonFinite(values, start, end) ---- */

static napi_value scan_fn(napi_env env, napi_callback_info cb) {
  napi_value argv[3];
  double *values;
  size_t length, start, end;
  if (get_args(env, cb, 3, argv) || get_f64_array(env, argv[0], "values", &values, &length) ||
      get_size(env, argv[1], "start", &start) || get_size(env, argv[2], "end", &end))
    return NULL;
  if (start > end || end > length)
    return fail(env, KIND_RANGE, "need 0 ≤ start ≤ end ≤ values.length (got start %zu, end %zu, length %zu)", start, end, length);
  napi_value result;
  napi_create_double(env, start == end ? -1.0 : (double)hpair_scan_non_finite(values, start, end), &result);
  return result;
}

/* ---- hermitianTile(path, expp, distance, h, N, M, i0, i1, j0, j1[, r0, c0, rows, cols]) ---- */

static napi_value tile_impl(napi_env env, napi_callback_info cb, int compensated) {
  napi_value argv[14];
  const hpair_path *path;
  double *expp, *distance, *h;
  size_t lexpp, ldist, lh, N, M, i0, i1, j0, j1, r0 = 0, c0 = 0, rows, cols;
  if (get_args(env, cb, 14, argv) || get_path(env, argv[0], &path) ||
      get_f64_array(env, argv[1], "expp", &expp, &lexpp) || get_f64_array(env, argv[2], "distance", &distance, &ldist) ||
      get_f64_array(env, argv[3], "h", &h, &lh) || get_size(env, argv[4], "N", &N) || get_size(env, argv[5], "M", &M) ||
      get_size(env, argv[6], "i0", &i0) || get_size(env, argv[7], "i1", &i1) || get_size(env, argv[8], "j0", &j0) ||
      get_size(env, argv[9], "j1", &j1))
    return NULL;
  /* M = 0 is an empty sum (H = 0), as M = 1 is: the driver writes zeros for both. */
  if (N < 1) return fail(env, KIND_RANGE, "N must be at least 1 (got %zu)", N);
  const size_t n = N - 1;
  rows = cols = n;
  /* The optional window: all four or none. */
  napi_valuetype w[4];
  for (int k = 0; k < 4; k++)
    if (napi_typeof(env, argv[10 + k], &w[k]) != napi_ok) return fail(env, KIND_ERROR, "could not read the arguments");
  if (w[0] != napi_undefined || w[1] != napi_undefined || w[2] != napi_undefined || w[3] != napi_undefined) {
    if (get_size(env, argv[10], "r0", &r0) || get_size(env, argv[11], "c0", &c0) || get_size(env, argv[12], "rows", &rows) ||
        get_size(env, argv[13], "cols", &cols))
      return NULL;
  }
  size_t need, hneed;
  if (__builtin_mul_overflow(N, M, &need) || __builtin_mul_overflow(need, (size_t)2, &need) || need > lexpp)
    return fail(env, KIND_RANGE, "expp has %zu values; N×M complex needs 2·%zu·%zu", lexpp, N, M);
  if (M > ldist) return fail(env, KIND_RANGE, "distance has %zu values; M is %zu", ldist, M);
  if (r0 > n || rows > n - r0 || c0 > n || cols > n - c0)
    return fail(env, KIND_RANGE, "the window, rows [%zu, %zu + %zu) and columns [%zu, %zu + %zu), must lie in [0, N−1 = %zu]", r0, r0, rows, c0, c0, cols, n);
  if (__builtin_mul_overflow(rows, cols, &hneed) || __builtin_mul_overflow(hneed, (size_t)2, &hneed) || hneed > lh)
    return fail(env, KIND_RANGE, "h has %zu values; its %zu×%zu complex window needs 2·%zu·%zu", lh, rows, cols, rows, cols);
  if (i0 > i1 || i1 > n || j0 > j1 || j1 > n)
    return fail(env, KIND_RANGE, "tile rows [%zu, %zu) and columns [%zu, %zu) must lie in [0, N−1 = %zu]", i0, i1, j0, j1, n);
  instance *inst = get_instance(env);
  if (!inst) return NULL;
  hpair_tile_args t = {expp, distance, N, M, i0, i1, j0, j1, h, r0, c0, rows, cols};
  const hpair_cpu *cpu = hpair_cpu_get();
  /* the columns the tile computes (the driver's: none from i1 on) */
  const size_t tile_cols = (j1 < i1 ? j1 : i1) > j0 ? (j1 < i1 ? j1 : i1) - j0 : 0;
  /* on the diagonal with its columns its rows (the driver's i0 = j0 and i1 = j1) */
  const int diagonal = i0 <= j0 && i1 <= j1;
  size_t mc = hpair_choose_tile_mc(path, cpu->l1d, cpu->l2, tile_cols, diagonal);
  int64_t first_bad = -1;
  if ((compensated ? path->tile_compensated : path->tile)(&t, &inst->scratch, mc, &first_bad) != 0)
    return fail(env, KIND_ERROR, "out of memory for the scratch of a %zu×%zu tile", i1 - i0, j1 - j0);
  napi_value result;
  napi_create_double(env, (double)first_bad, &result);
  return result;
}

static napi_value tile_fn(napi_env env, napi_callback_info cb) { return tile_impl(env, cb, 0); }

/* ---- hermitianTileCompensated(…the same arguments) ---- */

static napi_value tile_comp_fn(napi_env env, napi_callback_info cb) { return tile_impl(env, cb, 1); }

/* ---- microKernel(path, k, a, b, c, accumulate) ---- */

static napi_value ukr_fn(napi_env env, napi_callback_info cb) {
  napi_value argv[6];
  const hpair_path *path;
  double *a, *b, *c;
  size_t k, la, lb, lc, need;
  bool accumulate;
  napi_valuetype t;
  if (get_args(env, cb, 6, argv) || get_path(env, argv[0], &path) || get_size(env, argv[1], "k", &k) ||
      get_f64_array(env, argv[2], "a", &a, &la) || get_f64_array(env, argv[3], "b", &b, &lb) ||
      get_f64_array(env, argv[4], "c", &c, &lc))
    return NULL;
  if (napi_typeof(env, argv[5], &t) != napi_ok || t != napi_boolean || napi_get_value_bool(env, argv[5], &accumulate) != napi_ok)
    return fail(env, KIND_TYPE, "accumulate must be a boolean");
  if (k > HPAIR_KC) /* one k block: the micro-kernel's summation tree holds a block's sub-blocks, no more */
    return fail(env, KIND_RANGE, "k is %zu; a micro-kernel call sums one k block of at most %d", k, HPAIR_KC);
  if (__builtin_mul_overflow(k, (size_t)path->mr, &need) || need > la)
    return fail(env, KIND_RANGE, "a has %zu values; k·mr needs %zu·%d", la, k, path->mr);
  if (__builtin_mul_overflow(k, (size_t)path->nr, &need) || need > lb)
    return fail(env, KIND_RANGE, "b has %zu values; k·nr needs %zu·%d", lb, k, path->nr);
  if ((size_t)path->mr * path->nr > lc)
    return fail(env, KIND_RANGE, "c has %zu values; mr·nr needs %d", lc, path->mr * path->nr);
  path->ukr(k, a, b, c, (size_t)path->nr, accumulate);
  return NULL;
}

/* ---- packPanels(path, side, expp, distance, N, M, r0, rows, kb, kc, out) ---- */

static napi_value pack_fn(napi_env env, napi_callback_info cb) {
  napi_value argv[11];
  const hpair_path *path;
  double *expp, *distance, *out;
  size_t lexpp, ldist, lout, N, M, r0, rows, kb, kc, need;
  char side[4] = "";
  size_t sidelen = 0;
  if (get_args(env, cb, 11, argv) || get_path(env, argv[0], &path)) return NULL;
  if (napi_get_value_string_utf8(env, argv[1], side, sizeof side, &sidelen) != napi_ok ||
      (strcmp(side, "a") != 0 && strcmp(side, "b") != 0 && strcmp(side, "ab") != 0))
    return fail(env, KIND_TYPE, "side must be 'a', 'b' or 'ab'");
  if (get_f64_array(env, argv[2], "expp", &expp, &lexpp) || get_f64_array(env, argv[3], "distance", &distance, &ldist) ||
      get_size(env, argv[4], "N", &N) || get_size(env, argv[5], "M", &M) || get_size(env, argv[6], "r0", &r0) ||
      get_size(env, argv[7], "rows", &rows) || get_size(env, argv[8], "kb", &kb) || get_size(env, argv[9], "kc", &kc) ||
      get_f64_array(env, argv[10], "out", &out, &lout))
    return NULL;
  const int divide = strcmp(side, "ab") == 0 ? 2 : side[0] == 'b';
  const size_t w = (size_t)(divide == 1 ? path->nr : path->mr);
  if (N < 2 || M < 2) return fail(env, KIND_RANGE, "N and M must be at least 2 (got %zu, %zu)", N, M);
  if (__builtin_mul_overflow(N, M, &need) || __builtin_mul_overflow(need, (size_t)2, &need) || need > lexpp)
    return fail(env, KIND_RANGE, "expp has %zu values; N×M complex needs 2·%zu·%zu", lexpp, N, M);
  if (M > ldist) return fail(env, KIND_RANGE, "distance has %zu values; M is %zu", ldist, M);
  if (rows < 1 || r0 > N - 1 || rows > N - 1 - r0)
    return fail(env, KIND_RANGE, "rows [%zu, %zu + %zu) must be non-empty and lie in [0, N−1 = %zu]", r0, r0, rows, N - 1);
  if (kc < 1 || kc > (size_t)path->kc || kb > M - 1 || kc > M - 1 - kb)
    return fail(env, KIND_RANGE, "the k block [%zu, %zu + %zu) must hold 1 to %d columns inside [0, M−1 = %zu]", kb, kb, kc, path->kc, M - 1);
  /* three planes of ceil(rows / w)·w·kc doubles (and B's after A's for 'ab'): no overflow, rows < N, kc ≤ path->kc */
  need = 3 * ((rows + w - 1) / w) * w * kc;
  if (divide == 2) need += 3 * ((rows + path->nr - 1) / path->nr) * path->nr * kc;
  if (need > lout) return fail(env, KIND_RANGE, "out has %zu values; the packs need %zu", lout, need);
  path->pack(divide, expp, distance, N, M, r0, rows, kb, kc, out);
  return NULL;
}

/* ---- adviseHugePages(view) ---- */

static napi_value advise_fn(napi_env env, napi_callback_info cb) {
  napi_value argv[1];
  bool is = false;
  napi_typedarray_type type;
  size_t len = 0;
  void *ptr = NULL;
  if (get_args(env, cb, 1, argv)) return NULL;
  if (napi_is_typedarray(env, argv[0], &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, argv[0], &type, &len, &ptr, NULL, NULL) != napi_ok ||
      (type != napi_float64_array && type != napi_uint8_array))
    return fail(env, KIND_TYPE, "view must be a Float64Array or a Uint8Array");
  size_t bytes = type == napi_float64_array ? len * sizeof(double) : len;
  napi_value result;
  napi_create_double(env, ptr == NULL ? 0.0 : (double)hpair_advise_huge_pages(ptr, bytes), &result);
  return result;
}

/* ---- adjustExternalMemory(bytes) ---- */

static napi_value external_fn(napi_env env, napi_callback_info cb) {
  napi_value argv[1];
  double bytes = 0;
  if (get_args(env, cb, 1, argv)) return NULL;
  if (napi_get_value_double(env, argv[0], &bytes) != napi_ok || !(bytes == bytes) || bytes > 9007199254740991.0 || bytes < -9007199254740991.0 ||
      bytes != (double)(int64_t)bytes)
    return fail(env, KIND_TYPE, "bytes must be a safe integer");
  int64_t total = 0;
  if (napi_adjust_external_memory(env, (int64_t)bytes, &total) != napi_ok) return fail(env, KIND_ERROR, "napi_adjust_external_memory failed");
  napi_value result;
  napi_create_double(env, (double)total, &result);
  return result;
}

/* ---- trimMemory() ---- */

static napi_value trim_fn(napi_env env, napi_callback_info cb) {
  (void)cb;
  napi_value result;
  napi_get_boolean(env, hpair_trim_memory() != 0, &result);
  return result;
}

/* ---- fmaPeak(path, seconds) ---- */

/* Flops per second of this thread on that path's FMA alone, measured for `seconds` (0 < seconds ≤ 10): the bench's
 * peak. Throws for an unknown path, one this CPU or OS cannot run, or a bad duration. */
static napi_value peak_fn(napi_env env, napi_callback_info cb) {
  napi_value argv[2];
  size_t argc = 2;
  if (napi_get_cb_info(env, cb, &argc, argv, NULL, NULL) != napi_ok) return fail(env, KIND_ERROR, "could not read the arguments");
  if (argc < 2) return fail(env, KIND_TYPE, "fmaPeak(path, seconds) takes a path (%s) and a duration in seconds", path_names());
  const hpair_path *path;
  double seconds;
  napi_valuetype t;
  const char *reason;
  if (get_path_checked(env, argv[0], &path, 1)) return NULL;
  if (napi_typeof(env, argv[1], &t) != napi_ok || t != napi_number || napi_get_value_double(env, argv[1], &seconds) != napi_ok)
    return fail(env, KIND_TYPE, "seconds must be a number");
  if (!(seconds > 0 && seconds <= 10)) return fail(env, KIND_RANGE, "seconds must be in (0, 10]");
  if (!path_supported(path, &reason)) return fail(env, KIND_ERROR, "%s", reason);
  napi_value result;
  napi_create_double(env, path->fma_peak(seconds), &result);
  return result;
}

/* ---- module ---- */

static void free_instance(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  instance *inst = data;
  hpair_scratch_free(&inst->scratch);
  free(inst);
}

NAPI_MODULE_INIT() {
  hpair_pin_mmap_threshold();
  instance *inst = calloc(1, sizeof *inst);
  if (!inst || napi_set_instance_data(env, inst, free_instance, NULL) != napi_ok) {
    free(inst);
    fail(env, KIND_ERROR, "could not allocate the addon's per-thread data");
    return NULL;
  }
  const napi_property_descriptor props[] = {
      {"info", NULL, info_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"scanNonFinite", NULL, scan_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"hermitianTile", NULL, tile_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"hermitianTileCompensated", NULL, tile_comp_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"microKernel", NULL, ukr_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"packPanels", NULL, pack_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"adviseHugePages", NULL, advise_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"adjustExternalMemory", NULL, external_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"trimMemory", NULL, trim_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fmaPeak", NULL, peak_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeBandwidth", NULL, hpair_write_bandwidth_fn, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) {
    if (!pending(env)) fail(env, KIND_ERROR, "could not define the exports");
    return NULL;
  }
  return exports;
}
