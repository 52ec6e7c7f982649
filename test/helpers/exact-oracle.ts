// An oracle for H from float64 inputs that uses no floating-point arithmetic on the way: every input double becomes
// an exact BigInt in fixed point, the differences and products are exact, and only the reciprocal of each distance
// is rounded, to FRAC bits (so each term is off by at most |term|·2^−FRAC·2, far below a double's ulp even after
// 10^7 terms cancel by 10^20). The final sum is rounded once to the nearest double (ties to even), so where the
// exact H is a double the oracle returns it exactly.
//
// Shared by test/accuracy.test.ts and bench/accuracy.ts (bundled into both).

/** Bits below the binary point of every input; an input that is not a multiple of 2^−SCALE is refused. */
const SCALE = 200n;
/** Bits of the reciprocal of each distance below its leading bit's scale. */
const FRAC = 160n;

const view = new DataView(new ArrayBuffer(8));

/** x·2^SCALE as an exact BigInt; throws when x is not finite or not a multiple of 2^−SCALE. */
export function toFixed(x: number): bigint {
  if (!Number.isFinite(x)) throw new RangeError(`exact oracle: ${x} is not finite`);
  if (x === 0) return 0n;
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const negative = bits >> 63n === 1n;
  const biased = Number((bits >> 52n) & 0x7ffn);
  let mantissa = bits & ((1n << 52n) - 1n);
  let exponent: number;
  if (biased === 0) exponent = -1074;
  else {
    mantissa |= 1n << 52n;
    exponent = biased - 1075;
  }
  // x = mantissa · 2^exponent
  const shift = BigInt(exponent) + SCALE;
  let value: bigint;
  if (shift >= 0n) value = mantissa << shift;
  else {
    if (mantissa & ((1n << -shift) - 1n)) throw new RangeError(`exact oracle: ${x} is finer than 2^-${SCALE}`);
    value = mantissa >> -shift;
  }
  return negative ? -value : value;
}

function bitLength(x: bigint): number {
  return x === 0n ? 0 : x.toString(2).length;
}

/** The double nearest to x·2^−scale (ties to even), for |result| in the normal range. */
export function roundToDouble(x: bigint, scale: bigint): number {
  if (x === 0n) return 0;
  const negative = x < 0n;
  let m = negative ? -x : x;
  const length = bitLength(m);
  let exponent = -scale;
  if (length > 53) {
    const drop = BigInt(length - 53);
    const q = m >> drop;
    const rest = m - (q << drop);
    const half = 1n << (drop - 1n);
    m = rest > half || (rest === half && (q & 1n) === 1n) ? q + 1n : q;
    exponent += drop;
  }
  // m < 2^54 is exact as a Number; scaling by powers of two is exact in the normal range.
  let value = Number(m);
  let e = Number(exponent);
  while (e > 0) {
    const step = Math.min(e, 1000);
    value *= 2 ** step;
    e -= step;
  }
  while (e < 0) {
    const step = Math.min(-e, 1000);
    value *= 2 ** -step;
    e += step;
  }
  return negative ? -value : value;
}

export interface ExactH {
  /** (N−1)×(N−1) complex interleaved, each entry the exact H rounded once. */
  readonly data: Float64Array;
  /** Per entry (N−1)×(N−1): Σ_m |a_i,m|·|a_j,m| / |d_m|, the scale of the terms, for error bounds. */
  readonly absSum: Float64Array;
}

/** Columns of k converted to BigInts at a time: memory stays bounded by N · K_CHUNK BigInts whatever M is (at
 * M = 10^7 all columns at once would not fit V8's default heap). */
const K_CHUNK = 1 << 16;

/**
 * H[i, j] = Σ_{m=1}^{M−1} (e[i,m] − e[N−1,m]) · conj(e[j,m] − e[N−1,m]) / d[m], exactly up to the rounding of
 * the reciprocals (see FRAC), then rounded once. `expp` is N×M complex interleaved.
 */
export function exactHermitian(expp: Float64Array, distance: Float64Array, N: number, M: number): ExactH {
  const n = N - 1;
  const K = Math.max(0, M - 1);
  // Per entry of the lower triangle (i ≥ j, at i·n + j): the exact sums so far and the magnitudes' sum, in k order.
  const sumRe: bigint[] = new Array(n * n).fill(0n);
  const sumIm: bigint[] = new Array(n * n).fill(0n);
  const abs = new Float64Array(n * n);
  const top = 1n << (2n * SCALE + FRAC);
  for (let k0 = 0; k0 < K; k0 += K_CHUNK) {
    const len = Math.min(K_CHUNK, K - k0);
    const ar: bigint[][] = [];
    const ai: bigint[][] = [];
    const mag: Float64Array[] = [];
    for (let i = 0; i < n; i++) {
      const r: bigint[] = new Array(len);
      const s: bigint[] = new Array(len);
      const g = new Float64Array(len);
      for (let k = 0; k < len; k++) {
        const m = k0 + k + 1;
        r[k] = toFixed(expp[2 * (i * M + m)]) - toFixed(expp[2 * ((N - 1) * M + m)]);
        s[k] = toFixed(expp[2 * (i * M + m) + 1]) - toFixed(expp[2 * ((N - 1) * M + m) + 1]);
        g[k] = Math.hypot(expp[2 * (i * M + m)] - expp[2 * ((N - 1) * M + m)], expp[2 * (i * M + m) + 1] - expp[2 * ((N - 1) * M + m) + 1]);
      }
      ar.push(r);
      ai.push(s);
      mag.push(g);
    }
    // 1/d in fixed point with SCALE + FRAC bits: round(2^(2·SCALE + FRAC) / D), D = d·2^SCALE.
    const recip: bigint[] = new Array(len);
    const inv = new Float64Array(len);
    for (let k = 0; k < len; k++) {
      const D = toFixed(distance[k0 + k + 1]);
      if (D === 0n) throw new RangeError('exact oracle: a distance is zero');
      const neg = D < 0n;
      const a = neg ? -D : D;
      const q = (top + a / 2n) / a;
      recip[k] = neg ? -q : q;
      inv[k] = 1 / Math.abs(distance[k0 + k + 1]);
    }
    // Products: a (SCALE) · a (SCALE) · 1/d (SCALE + FRAC).
    for (let j = 0; j < n; j++) {
      const cr: bigint[] = new Array(len);
      const ci: bigint[] = new Array(len);
      for (let k = 0; k < len; k++) {
        cr[k] = ar[j][k] * recip[k];
        ci[k] = ai[j][k] * recip[k];
      }
      for (let i = j; i < n; i++) {
        const at = i * n + j;
        let re = sumRe[at];
        let im = sumIm[at];
        let a = abs[at];
        const xr = ar[i];
        const xi = ai[i];
        const gi = mag[i];
        const gj = mag[j];
        for (let k = 0; k < len; k++) {
          re += xr[k] * cr[k] + xi[k] * ci[k];
          im += xi[k] * cr[k] - xr[k] * ci[k];
          a += gi[k] * gj[k] * inv[k];
        }
        sumRe[at] = re;
        sumIm[at] = im;
        abs[at] = a;
      }
    }
  }
  const data = new Float64Array(2 * n * n);
  const absSum = new Float64Array(n * n);
  const scale = 3n * SCALE + FRAC;
  for (let j = 0; j < n; j++) {
    for (let i = j; i < n; i++) {
      const at = i * n + j;
      const hr = roundToDouble(sumRe[at], scale);
      const hi = i === j ? 0 : roundToDouble(sumIm[at], scale);
      data[2 * (i * n + j)] = hr;
      data[2 * (i * n + j) + 1] = hi;
      data[2 * (j * n + i)] = hr;
      data[2 * (j * n + i) + 1] = i === j ? 0 : -hi;
      absSum[i * n + j] = absSum[j * n + i] = abs[at] * (1 + 1e-12);
    }
  }
  return { data, absSum };
}
