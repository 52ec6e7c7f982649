/* What every path's FMA peak probe shares (each path file writes its own loop on its own vectors).
 *
 * The chains: each accumulator runs c = c·m + a with m just below 1, so it converges to a/(1 − m) = 1 and never
 * overflows, underflows or turns subnormal (which would slow some cores). A probe runs more chains than FMA latency
 * × FMA ports on current cores, so the ports, not the latency, bound the loop, and all of them fit the register
 * file with the two operands. The clock is read between batches only, so its cost is a negligible share of the
 * time. The accumulators' sum goes to a volatile sink, so no compiler can drop the loop. */
#ifndef HPAIR_PEAK_LOOP_H
#define HPAIR_PEAK_LOOP_H

#include <time.h>

#define HPAIR_PEAK_M 0.9999999
#define HPAIR_PEAK_A 1e-7
#define HPAIR_PEAK_BATCH 4096 /* iterations between clock reads */

static inline double hpair_now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
