// The out-of-core planner at every scale, without computing: for many (N, M, budget, kernel, threads) the job
// shape it picks keeps every buffer a job hands to the workers within what survives the trip (a view's
// byteOffset and byteLength cross postMessage as 32-bit numbers) and within its budget, for every budget from
// the least that holds one block up to far past this machine's memory; and computeToNpy, driven by a pool that
// only records what it is handed (and posts it to a real worker thread to see what arrives), allocates exactly
// such buffers at the scale that used to fail (H past 4 GiB, the default budget).
import { closeSync, openSync, rmSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  chooseBlockSize,
  chooseJobShape,
  computeToNpy,
  encodeFloat64VectorNpy,
  HpairError,
  hermitianJobBytes,
  jobBuffers,
  jobMemory,
  kernelTile,
  MAX_WORKER_VIEW_BYTES,
  type BlockCostOptions,
  type ComplexMatrix,
  type HermitianResult,
  type JobShape,
  type KernelVariant,
} from 'hpair';
import { outOfCoreReason } from '../cli/compute-out-of-core.js';
import { KERNEL_VARIANTS } from '../kernel/kernel-names.js';
import { NATIVE_VARIANTS, seeded } from './helpers/support.js';
import { workDir } from './helpers/out-of-core.js';

const test = suite('planner');

/** What V8's serializer can carry: byteOffset and byteLength each below 2^32. */
const VIEW_BYTES = 2 ** 32 - 1;
/** wasm32 memory, less the one page the engine keeps back. */
const WASM_BYTES = 2 ** 32 - 2 ** 16;
const KERNELS: readonly KernelVariant[] = KERNEL_VARIANTS;

/** The buffers of a job of this shape, computed here from the driver's layout (not from the planner's code). */
function buffersOf(N: number, M: number, shape: JobShape): { R: number; rows: number; h: number } {
  const n = N - 1;
  const b = Math.min(shape.blockSize, n);
  const width = Math.min(shape.group * b, n);
  const R = Math.min(b + width, n) + 1; // the blocks' rows, their columns' rows, the reference row
  return { R, rows: 16 * R * M, h: 16 * b * width };
}

function assertRunnable(N: number, M: number, budget: number, shape: JobShape, cost: Required<BlockCostOptions>, what: string): void {
  const n = N - 1;
  assert.ok(Number.isSafeInteger(shape.blockSize) && shape.blockSize >= 1, `${what}: block size ${shape.blockSize}`);
  assert.ok(Number.isSafeInteger(shape.group) && shape.group >= 1, `${what}: group ${shape.group}`);
  if (n <= 1) return;
  const { R, rows, h } = buffersOf(N, M, shape);
  assert.ok(rows <= VIEW_BYTES, `${what}: the row buffer takes ${rows} bytes`);
  assert.ok(h <= VIEW_BYTES, `${what}: the H buffer takes ${h} bytes`);
  assert.ok(rows / 8 <= 2 ** 32 && h / 8 <= 2 ** 32, `${what}: typed array lengths`);
  // The kernel's scratch for the job's R rows, as the pool counts it: within wasm32 memory for a wasm kernel
  // (else the job falls back to another kernel, which the driver refuses), within one view for js's panels.
  const panels = hermitianJobBytes(R, M, cost.kernel, cost.threads).panels;
  if (cost.kernel.startsWith('wasm')) assert.ok(panels <= WASM_BYTES, `${what}: wasm memory ${panels}`);
  if (cost.kernel === 'js') assert.ok(panels <= VIEW_BYTES, `${what}: js panels ${panels}`);
  const memory = jobMemory(N, M, shape, cost).total;
  assert.ok(memory <= budget, `${what}: the job takes ${memory} bytes of a ${budget}-byte budget`);
  // The planner's own account of the buffers agrees with the layout above.
  const listed = Object.fromEntries(jobBuffers(N, M, shape, cost).map((buffer) => [buffer.name, buffer.bytes]));
  assert.is(listed.rows, rows, `${what}: rows bytes`);
  assert.is(listed.h, h, `${what}: h bytes`);
}

/** The least budget that holds one block: one 1×1 block, no read-ahead. */
function leastBudget(N: number, M: number, cost: BlockCostOptions): number {
  return jobMemory(N, M, { blockSize: 1, group: 1, prefetch: false }, cost).total;
}

/** Shapes: the scale of the reported failure, H just under and over 4 GiB and 2^32 values, and random ones. */
function shapes(): Array<[number, number]> {
  const fixed: Array<[number, number]> = [
    [46400, 64], [16385, 8], [16386, 8], [46342, 2], [46341, 2], [100_000, 16], [1_000_000, 4], [20_000, 2048],
    [3000, 200_000], [2, 1], [3, 1], [4, 7], [129, 128], [257, 4096], [8193, 8192], [65537, 1],
  ];
  const next = seeded(17);
  const random: Array<[number, number]> = [];
  for (let k = 0; k < 30; k++) {
    const N = 2 + Math.floor(10 ** (1 + 4.7 * Math.abs(next())));
    const M = 1 + Math.floor(10 ** (4.5 * Math.abs(next())));
    random.push([N, M]);
  }
  return [...fixed, ...random];
}

/** Budgets from the least up to ones no machine has, by factors of about 4, and half this machine's memory. */
function budgets(least: number): number[] {
  const list = [least, least + 1, Math.ceil(least * 1.01), totalmem() / 2, 12 * 2 ** 30, 2 ** 40];
  for (let b = least * 3; b < 2 ** 42; b *= 4.3) list.push(Math.floor(b));
  return list.filter((b) => b >= least);
}

test('every budget from the least that holds one block up: a shape whose buffers all cross to a worker whole', () => {
  let checked = 0;
  for (const [N, M] of shapes()) {
    for (const kernel of KERNELS) {
      for (const threads of [1, 2, 16]) {
        if (threads === 16 && kernel !== 'wasm-simd' && kernel !== NATIVE_VARIANTS[0]) continue;
        const cost = { kernel, threads, accuracy: 'default' as const };
        const tile = kernelTile(kernel);
        const least = leastBudget(N, M, cost);
        const smallest = buffersOf(N, M, { blockSize: 1, group: 1, prefetch: false });
        const smallestFits = smallest.rows <= VIEW_BYTES && (!kernel.startsWith('wasm') || hermitianJobBytes(smallest.R, M, kernel, threads).panels <= WASM_BYTES);
        for (const budget of budgets(least)) {
          const what = `N = ${N}, M = ${M}, ${kernel} × ${threads}, budget ${budget}`;
          let shape: JobShape;
          try {
            shape = chooseJobShape(N, M, budget, tile, cost);
          } catch (error) {
            // Only a row too wide for one buffer may leave no shape at all.
            assert.instance(error, HpairError, what);
            assert.is((error as HpairError).code, 'TOO_LARGE', what);
            assert.not.ok(smallestFits, `${what}: refused (${(error as Error).message}) though one block fits`);
            continue;
          }
          assertRunnable(N, M, budget, shape, cost, what);
          // chooseBlockSize fits one block with its rows read ahead: from that least budget up.
          if (N > 2 && budget >= jobMemory(N, M, { blockSize: 1, group: 1, prefetch: true }, cost).total) {
            const b = chooseBlockSize(N, M, budget, tile, cost);
            assertRunnable(N, M, budget, { blockSize: b, group: 1, prefetch: true }, cost, `${what} (chooseBlockSize)`);
          }
          checked++;
        }
        // Below the least budget: TOO_LARGE, never a shape past the budget.
        if (least > 1 && N > 2) {
          assert.throws(() => chooseJobShape(N, M, least - 1, tile, cost), (error: HpairError) => error.code === 'TOO_LARGE');
        }
      }
    }
  }
  assert.ok(checked > 2000, `${checked} combinations`);
});

test('a fixed block size: a runnable shape or TOO_LARGE naming what does not fit, never a buffer cut short', () => {
  const cost = { kernel: 'native-avx512' as const, threads: 2, accuracy: 'default' as const };
  for (const blockSize of [1, 1000, 16383, 16384, 20_000, 46_399]) {
    for (const budget of [2 ** 30, 2 ** 36, 2 ** 44]) {
      const what = `blocks of ${blockSize}, budget ${budget}`;
      try {
        const shape = chooseJobShape(46400, 64, budget, 1, { ...cost, blockSize });
        assert.is(shape.blockSize, blockSize, what);
        assertRunnable(46400, 64, budget, shape, cost, what);
      } catch (error) {
        assert.is((error as HpairError).code, 'TOO_LARGE', `${what}: ${String(error)}`);
        if (budget === 2 ** 44) assert.match((error as Error).message, /one buffer may span/, what);
      }
    }
  }
  // 16384 × 16384 complex values are exactly 4 GiB: one byte past what a view can carry.
  assert.throws(() => chooseJobShape(46400, 64, 2 ** 44, 1, { ...cost, blockSize: 16384 }), (error: HpairError) => error.code === 'TOO_LARGE');
  assert.is(MAX_WORKER_VIEW_BYTES, VIEW_BYTES);
});

/** A sparse N×M complex128 .npy of zeros (a header, then a hole) and a distance of ones. */
function sparseProblem(dir: string, N: number, M: number): { expp: string; distance: string } {
  const expp = join(dir, 'E.npy');
  const dict = `{'descr': '<c16', 'fortran_order': False, 'shape': (${N}, ${M}), }`;
  const length = Math.ceil((10 + dict.length + 1) / 64) * 64;
  const header = Buffer.alloc(length, 0x20);
  header.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  header.writeUInt16LE(length - 10, 8);
  header.write(dict, 10, 'latin1');
  header[length - 1] = 0x0a;
  const fd = openSync(expp, 'w');
  try {
    writeSync(fd, header, 0, length, 0);
  } finally {
    closeSync(fd);
  }
  // Grow to the full size without writing data: a hole reads as zeros.
  const grow = openSync(expp, 'r+');
  try {
    writeSync(grow, Buffer.alloc(1), 0, 1, length + 16 * N * M - 1);
  } finally {
    closeSync(grow);
  }
  const distance = join(dir, 'D.npy');
  writeFileSync(distance, encodeFloat64VectorNpy(new Float64Array(M).fill(1)));
  return { expp, distance };
}

/** Posts the views to a worker thread and returns their lengths and offsets as they arrive there. */
async function asSeenByAWorker(views: Float64Array[]): Promise<Array<[number, number]>> {
  const worker = new Worker(
    "const { parentPort } = require('node:worker_threads'); parentPort.once('message', (views) => parentPort.postMessage(views.map((v) => [v.length, v.byteOffset])));",
    { eval: true },
  );
  try {
    return await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.postMessage(views);
    });
  } finally {
    await worker.terminate();
  }
}

test('computeToNpy at H past 4 GiB with a large budget hands the pool only views that reach a worker whole', async () => {
  const N = 20_000;
  const M = 8;
  const dir = workDir('planner');
  try {
    const outBytes = 16 * (N - 1) ** 2 + 128;
    const free = (() => {
      const fs = statfsSync(dir);
      return fs.bavail * fs.bsize;
    })();
    if (free < outBytes * 1.2) {
      console.log(`  skipped: computeToNpy at N = ${N} needs ${outBytes} bytes free for its (sparse) output; ${dir} has ${free}`);
      return;
    }
    const { expp, distance } = sparseProblem(dir, N, M);
    const seen: Array<{ data: Float64Array; out: ComplexMatrix; distance: Float64Array; request: { rows: [number, number]; cols: [number, number] } }> = [];
    const stop = new HpairError('IO_ERROR', 'the recording pool stops here');
    const pool = {
      kernel: 'native-avx512' as const,
      size: 2,
      async hermitianBlock(input: ComplexMatrix, dist: Float64Array, request: { rows: [number, number]; cols: [number, number] }, options: { out?: ComplexMatrix }): Promise<HermitianResult> {
        seen.push({ data: input.data, out: options.out!, distance: dist, request });
        throw stop;
      },
    };
    for (const maxMemory of [2 ** 34, 2 ** 40]) {
      seen.length = 0;
      rmSync(join(dir, 'H.npy.partial'), { force: true });
      rmSync(join(dir, 'H.npy.journal'), { force: true });
      const error = await computeToNpy(pool as never, { expp, distance, out: join(dir, 'H.npy'), maxMemory }).then(
        () => assert.unreachable('the recording pool never computes'),
        (e: unknown) => e,
      );
      assert.is((error as HpairError).code, 'IO_ERROR', String(error));
      assert.is(seen.length, 1);
      const [job] = seen;
      const views = [job.data, job.out.data, job.distance];
      for (const view of views) assert.ok(view.byteLength <= VIEW_BYTES && view.byteOffset + view.byteLength <= VIEW_BYTES + 1, `a view of ${view.byteLength} bytes at ${view.byteOffset}`);
      assert.is(job.out.data.length, 2 * job.out.rows * job.out.cols, 'out holds exactly the block');
      assert.is(job.data.length, 2 * (job.request.rows[1] + 1) * M, 'the rows of the job and the reference row');
      const arrived = await asSeenByAWorker(views);
      assert.equal(arrived, views.map((view) => [view.length, view.byteOffset]), 'every view arrives whole');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hpair compute goes out of core by itself once H would pass one buffer a worker can be handed (4 GiB)', async () => {
  const dir = workDir('planner-reason');
  try {
    // 16 383² complex values are just under 4 GiB, 16 384² exactly 4 GiB: in memory only while H fits one view
    // (and half this machine's memory, which decides on small machines).
    const under = sparseProblem(dir, 16_384, 1);
    const fitsHalf = 16 * 16_383 ** 2 + 16 * 16_384 < totalmem() / 2;
    const reasonUnder = await outOfCoreReason(under.expp, undefined, 'js', 1);
    if (fitsHalf) assert.is(reasonUnder, undefined, 'H of 16383² in memory');
    else assert.match(String(reasonUnder), /over half of this machine's/);
    rmSync(under.expp);
    const over = sparseProblem(dir, 16_385, 1);
    assert.match(String(await outOfCoreReason(over.expp, undefined, 'js', 1)), /^H \(16384×16384, 4\.0 GiB\) is larger than one buffer a worker can be handed/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
