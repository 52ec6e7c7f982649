import { MAX_TYPED_ARRAY_LENGTH, createSharedFloat64, isSharedView, toSharedFloat64, type ComplexMatrix } from '../shared/complex-matrix.js';
import { HpairError } from '../shared/errors.js';
import type { PreparedJob, StepPlan } from '../workers/job.js';
import { checkHermitianInputs, nonFiniteExppError } from './hermitian-inputs.js';
import { NO_BAD_VALUE, packRows } from './hermitian-pack.js';
import { microLayout, panelLength, planarLayout } from './panels.js';
import { hermitianFlops, hermitianJobBytes } from './hermitian-size.js';
import { WASM_MICRO_TILE, type KernelVariant } from './kernel-variant.js';

/** Rows per pack tile: enough to amortise the per-tile overhead, small enough to spread N rows. */
const PACK_TILE = 32;
/**
 * Tile edges and k blocks, per kernel. Measured on 2-core Zen 3 (512 KB L2) and Zen 4 (1 MB L2) hosts:
 * with the wasm kernel's 128 × 128 tile and kc = 128, the A block of a tile (128 × 128 × 3 × 8 B) fits L2
 * beside the B chunk the kernel sweeps; tiles of 32 and 64 measured no faster, even for N = 256.
 * A tile is also the cancellation grain: at M = 4096 one tile is 20–30 ms of work.
 */
const TILING = { js: { tile: 64, kc: 256 }, wasm: { tile: 128, kc: 128 } } as const;
/** wasm32 addresses 4 GiB; jobs whose panels do not fit run on the JavaScript kernel. */
const WASM_MAX_BYTES = 2 ** 32 - 2 ** 16;

/** What a pool lends an H job: its kernel, its thread count, and its reusable scratch memory. */
export interface HermitianPlanContext {
  readonly variant: KernelVariant;
  /** Jobs below this many useful flops run on the calling thread. */
  readonly inlineFlops: number;
  /** Threads that may compute tiles at once (each wasm thread needs its own tile scratch). */
  readonly threads: number;
  /** Largest memory the job may take beyond the caller's arrays (copied inputs, panels, H). */
  readonly maxBytes: number;
  /** Shared scratch of at least `length` float64 values for planar panels (reused across jobs). */
  planarPanels(length: number): Float64Array;
  /** The pool's shared wasm memory, grown to at least `bytes`, and the compiled kernel for it. */
  wasm(bytes: number): { memory: WebAssembly.Memory; module: WebAssembly.Module };
}

/**
 * Checks the inputs and lays out an H job: step 1 packs (and scans for non-finite values) over the
 * rows, step 2 computes the lower triangle of pairs, tile by tile, and mirrors it. Inputs already in
 * shared memory are used in place; others are copied once. `out`, when given, receives H.
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
  if (2 * n * n > MAX_TYPED_ARRAY_LENGTH) throw new HpairError('TOO_LARGE', `H would hold ${2 * n * n} values; typed arrays hold at most 2^32`);
  const variant = context.variant !== 'js' && wasmBytes(N, M, context.threads) > WASM_MAX_BYTES ? 'js' : context.variant;
  // Counted before anything is allocated, so an oversized request fails instead of taking the process down.
  const need = hermitianJobBytes(N, M, variant);
  const copies = (isSharedView(expp.data) ? 0 : expp.data.byteLength) + (isSharedView(distance) ? 0 : distance.byteLength);
  const total = (out === undefined ? need.h : 0) + need.panels + copies;
  if (total > context.maxBytes) {
    throw new HpairError('TOO_LARGE', `this job needs ${formatBytes(total)} (H, panels, copies) but maxBytes is ${formatBytes(context.maxBytes)}`);
  }
  if (variant === 'js' && need.panels / 8 > MAX_TYPED_ARRAY_LENGTH) {
    throw new HpairError('TOO_LARGE', `the packed panels would hold ${need.panels / 8} values; typed arrays hold at most 2^32`);
  }
  const sharedExpp = toSharedFloat64(expp.data);
  const sharedDistance = toSharedFloat64(distance);
  const copiedBytes = (sharedExpp.copied ? expp.data.byteLength : 0) + (sharedDistance.copied ? distance.byteLength : 0);
  const h = out?.data ?? createSharedFloat64(2 * n * n);
  const badValue = new BigInt64Array(new SharedArrayBuffer(8));
  badValue[0] = NO_BAD_VALUE;

  let pairs: StepPlan;
  let panels: Float64Array;
  let layout;
  if (variant === 'js') {
    layout = planarLayout(N, M);
    panels = context.planarPanels(panelLength(layout));
    pairs = {
      kernel: { kind: 'builtin', name: 'hermitian/pairs-js' },
      space: { kind: 'triangle', n, tile: TILING.js.tile },
      buffers: { panels, h },
      params: { layout, tile: TILING.js.tile, kc: TILING.js.kc },
    };
  } else {
    layout = microLayout(N, M, WASM_MICRO_TILE.mr, WASM_MICRO_TILE.nr);
    const { tile, kc } = TILING.wasm;
    const scratchBytes = context.threads * tile * tile * 16;
    const { memory, module } = context.wasm(wasmBytes(N, M, context.threads));
    panels = new Float64Array(memory.buffer, scratchBytes, panelLength(layout));
    pairs = {
      kernel: { kind: 'builtin', name: 'hermitian/pairs-wasm' },
      space: { kind: 'triangle', n, tile },
      buffers: { h },
      params: { layout, module, memory, tile, kc, panelsByte: scratchBytes, scratchByte: 0 },
    };
  }
  const pack: StepPlan = {
    kernel: { kind: 'builtin', name: 'hermitian/pack' },
    space: { kind: 'range', n: packRows(N, layout), tile: PACK_TILE },
    buffers: { expp: sharedExpp.view, distance: sharedDistance.view, panels, badValue },
    params: { N, M, layout },
  };
  return {
    steps: [pack, pairs],
    inline: hermitianFlops(N, M) < context.inlineFlops,
    copiedBytes,
    afterStep(step) {
      if (step === 0 && badValue[0] !== NO_BAD_VALUE) throw nonFiniteExppError(expp, Number(badValue[0]));
    },
    result: () => out ?? { rows: n, cols: n, data: h },
  };
}

/** The wasm memory an H job needs: every thread's tile scratch, then the panels. */
function wasmBytes(N: number, M: number, threads: number): number {
  const { tile } = TILING.wasm;
  return threads * tile * tile * 16 + hermitianJobBytes(N, M, 'wasm-simd').panels;
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

function formatBytes(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
