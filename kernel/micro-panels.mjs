// The micro-panel layout of the WebAssembly kernels, in one place: the packer (kernel/hermitian-pack.ts)
// writes it and the build-time kernel generator (kernel/wasm/generate-wat.mjs) reads it. Plain JavaScript
// so that build.mjs can import it without compiling TypeScript; types in micro-panels.d.mts.
//
// As BLIS packs: K is zero-padded to an even Kp; rows are grouped by `group` (mr on the A side, nr on the
// B side). In group g, k-pair p holds, for plane q ∈ {0: re, 1: im, 2: re ± im} and row m of the group, the
// two values [X[g·group + m, 2p], X[g·group + m, 2p + 1]], so a micro-kernel streams a panel strictly
// forwards, one 16-byte f64x2 at a time. Offsets are in float64 values.

/** Planes per micro-panel: re, im, and re + im (A side) or re − im (B side), for the 3M method. */
export const MICRO_PLANES = 3;

/** float64 values of one k-pair chunk (every plane and row of a group). */
export function pairChunk(group) {
  return group * MICRO_PLANES * 2;
}

/** float64 values from plane q to plane q + 1 within a chunk. */
export function planeStride(group) {
  return group * 2;
}

/** Offset of value (row r, column k) of plane 0 in a side whose groups have `group` rows and K is padded to kp. */
export function microOffset(kp, group, r, k) {
  return Math.floor(r / group) * (kp / 2) * pairChunk(group) + (k >> 1) * pairChunk(group) + (r % group) * 2 + (k & 1);
}
