#pragma once
#define NAPI_VERSION 8
#include <node_api.h>

/* writeBandwidth(values, seconds, streaming): bytes/s this thread writes into `values` (bandwidth.c). */
napi_value hpair_write_bandwidth_fn(napi_env env, napi_callback_info cb);
