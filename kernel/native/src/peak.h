/* The FMA peak probe: how many double-precision flops per second this thread's core sustains on FMA alone. */
#ifndef HPAIR_PEAK_H
#define HPAIR_PEAK_H

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>

/* fmaPeak(path, seconds): the addon export (registered in addon.c). */
napi_value hpair_fma_peak_fn(napi_env env, napi_callback_info info);

#endif
