import { createSharedFloat64, toSharedFloat64, type ComplexMatrix } from '../shared/complex-matrix.js';
import { HpairError } from '../shared/errors.js';
import type { PreparedJob, StepPlan } from '../workers/job.js';
import { checkHermitianInputs, nonFiniteExppError } from './hermitian-inputs.js';
import { NO_BAD_VALUE } from './hermitian-pack.js';
import { panelLayout, panelLength } from './panels.js';

/** Rows per pack tile: enough to amortise the per-tile overhead, small enough to spread N rows. */
const PACK_TILE = 32;
/** Pairs per tile edge for the JavaScript pair kernel. */
export const JS_PAIR_TILE = 64;
/** k block of the JavaScript pair kernel: 2 × 64 rows × 256 × 16 B of panels stay within L2. */
export const JS_KC = 256;

/** Useful floating-point operations of one H: 8 per complex multiply-add, over the lower triangle. */
export function hermitianFlops(N: number, M: number): number {
  return (8 * (N - 1) * N * Math.max(0, M - 1)) / 2;
}

export interface HermitianPlanContext {
  /** Shared scratch of at least `length` float64 values for the packed panels (reused across jobs). */
  panels(length: number): Float64Array;
  /** Jobs below this many useful flops run on the calling thread. */
  inlineFlops: number;
}

/**
 * Checks the inputs and lays out an H job: step 1 packs (and scans for non-finite values) over the N
 * rows, step 2 computes the lower triangle of pairs and mirrors it. Inputs already in shared memory
 * are used in place; others are copied once. `out`, when given, receives H (nothing else is allocated
 * for it).
 */
export function prepareHermitian(
  expp: ComplexMatrix,
  distance: Float64Array,
  out: ComplexMatrix | undefined,
  context: HermitianPlanContext,
): PreparedJob<ComplexMatrix> {
  const { N, M } = checkHermitianInputs(expp, distance);
  const n = N - 1;
  if (out !== undefined) checkOut(out, n, expp, distance);
  const sharedExpp = toSharedFloat64(expp.data);
  const sharedDistance = toSharedFloat64(distance);
  const copiedBytes = (sharedExpp.copied ? expp.data.byteLength : 0) + (sharedDistance.copied ? distance.byteLength : 0);
  const h = out?.data ?? createSharedFloat64(2 * n * n);
  const layout = panelLayout(N, M, 4);
  const panels = context.panels(panelLength(layout));
  const badValue = new BigInt64Array(new SharedArrayBuffer(8));
  badValue[0] = NO_BAD_VALUE;

  const steps: StepPlan[] = [
    {
      kernel: { kind: 'builtin', name: 'hermitian/pack' },
      space: { kind: 'range', n: N, tile: PACK_TILE },
      buffers: { expp: sharedExpp.view, distance: sharedDistance.view, panels, badValue },
      params: { N, M, layout },
    },
    {
      kernel: { kind: 'builtin', name: 'hermitian/pairs-js' },
      space: { kind: 'triangle', n, tile: JS_PAIR_TILE },
      buffers: { panels, h },
      params: { layout, tile: JS_PAIR_TILE, kc: JS_KC },
    },
  ];
  return {
    steps,
    inline: hermitianFlops(N, M) < context.inlineFlops,
    copiedBytes,
    afterStep(step) {
      if (step === 0 && badValue[0] !== NO_BAD_VALUE) throw nonFiniteExppError(expp, Number(badValue[0]));
    },
    result: () => out ?? { rows: n, cols: n, data: h },
  };
}

function checkOut(out: ComplexMatrix, n: number, expp: ComplexMatrix, distance: Float64Array): void {
  if (typeof out !== 'object' || out === null || !(out.data instanceof Float64Array)) {
    throw new HpairError('INVALID_ARGUMENT', 'out must be a ComplexMatrix { rows, cols, data: Float64Array }');
  }
  if (out.rows !== n || out.cols !== n || out.data.length !== 2 * n * n) {
    throw new HpairError('SHAPE_MISMATCH', `out must be ${n}×${n} with ${2 * n * n} values, got ${out.rows}×${out.cols} with ${out.data.length}`);
  }
  if (!(out.data.buffer instanceof SharedArrayBuffer)) {
    throw new HpairError('INVALID_ARGUMENT', 'out.data must live in a SharedArrayBuffer (see createComplexMatrix)');
  }
  for (const [name, input] of [['expp', expp.data], ['distance', distance]] as const) {
    if (overlaps(out.data, input)) throw new HpairError('INVALID_ARGUMENT', `out overlaps ${name}; inputs are never written to`);
  }
}

function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}
