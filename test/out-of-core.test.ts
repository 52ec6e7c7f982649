// Out of core, as a library: the block plan and its budget, positioned reads of every .npy layout, the sparse
// output written block + mirror, the journal, and computeToNpy bit for bit against the in-memory H, with its
// resumes after an abort and a full disk.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync, utimesSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  blockMemory,
  chooseBlockSize,
  chooseJobShape,
  jobMemory,
  computeToNpy,
  createComplexMatrix,
  createNpyOutput,
  createPool,
  kernelTile,
  openJournal,
  openNpyInput,
  openNpyOutput,
  parseComplexMatrixNpy,
  planBlocks,
  readNpyVector,
  type Block,
  type ComplexMatrix,
  type JobFingerprint,
  type OutOfCoreProgress,
  type Pool,
} from 'hpair';
import { assertBitIdentical, fixture, fixturesDir, NATIVE_VARIANTS, randomProblem, rejectionCode } from './helpers/support.js';
import { asStored, encodeMatrixNpy, journalIds, problemOnDisk, workDir, type NpyLayout } from './helpers/out-of-core.js';

const test = suite('out-of-core');
const work = workDir('ooc');
let pool: Pool;
test.before(() => {
  pool = createPool({ workers: 2, inlineFlops: 0 });
});
test.after(async () => {
  await pool.close();
});

/** H from the file, bit for bit against the whole H computed in memory from the same values. */
async function assertSameAsInMemory(out: string, values: { expp: ComplexMatrix; distance: Float64Array }, what: string): Promise<void> {
  const whole = await pool.hermitian(values.expp, values.distance);
  const written = parseComplexMatrixNpy(readFileSync(out));
  assert.equal([written.rows, written.cols], [whole.rows, whole.cols], `${what}: shape`);
  assertBitIdentical(written.data, whole.data, what);
}

test('planBlocks: the lower triangle in squares, each entry once, ids in order, consecutive blocks share rows', () => {
  for (const [n, b] of [[0, 4], [1, 1], [7, 3], [10, 5], [300, 128], [301, 37], [5, 100]] as const) {
    const plan = planBlocks(n, b);
    assert.is(plan.n, n);
    assert.is(plan.blockSize, b);
    const count = Math.ceil(n / b);
    assert.is(plan.blocks.length, (count * (count + 1)) / 2, `${n}/${b}: count`);
    const seen = new Uint8Array(n * n);
    plan.blocks.forEach((block, index) => {
      assert.is(block.id, index);
      const [i0, i1] = block.rows;
      const [j0, j1] = block.cols;
      assert.ok(j0 <= i0 && i1 <= n && j1 <= n && i1 - i0 <= b && j1 - j0 <= b, `${n}/${b}: block ${index}`);
      for (let i = i0; i < i1; i++) {
        for (let j = j0; j < j1; j++) {
          seen[i * n + j]++;
          if (i0 !== j0) seen[j * n + i]++; // the mirror of a block below the diagonal
        }
      }
    });
    // Every entry of H is written exactly once by a block or its mirror (diagonal blocks are their own mirror).
    assert.ok(seen.every((times) => times === 1), `${n}/${b}: coverage`);
    for (let k = 1; k < plan.blocks.length; k++) {
      const [a, c] = [plan.blocks[k - 1], plan.blocks[k]];
      assert.ok(a.rows[0] < c.rows[0] || (a.rows[0] === c.rows[0] && a.cols[0] < c.cols[0]), 'row of blocks by row, left to right');
    }
  }
  assert.equal(planBlocks(10, 4), planBlocks(10, 4), 'the same plan every time');
  for (const [n, b] of [[-1, 4], [4, 0], [1.5, 2], [4, Number.NaN]] as const) {
    assert.throws(() => planBlocks(n, b), (error: { code?: string }) => error.code === 'INVALID_ARGUMENT');
  }
});

test('chooseBlockSize: the largest tile multiple that fits, the whole H when it fits, smaller than a tile when it must', () => {
  // The wasm kernels' tile; the native ones cut a block into tiles of its own, so any block size wastes nothing.
  assert.equal([kernelTile('wasm-simd'), kernelTile('js'), ...NATIVE_VARIANTS.map(kernelTile)], [128, 64, ...NATIVE_VARIANTS.map(() => 1)]);
  const tile = 128;
  const cost = { kernel: pool.kernel, threads: 2 };
  const N = 8193;
  const M = 8192;
  const H = 16 * (N - 1) ** 2;
  const b = chooseBlockSize(N, M, H / 4, tile, cost);
  assert.ok(b % tile === 0 && b > 0, `multiple of the tile: ${b}`);
  assert.ok(blockMemory(N, M, b, cost).total <= H / 4, 'fits');
  assert.ok(blockMemory(N, M, b + tile, cost).total > H / 4, 'the next multiple does not');
  assert.ok(chooseBlockSize(N, M, H, tile, cost) >= b, 'more memory, no smaller block');
  assert.is(chooseBlockSize(301, 97, 2 ** 40, tile, cost), 300, 'the whole H in one block');
  const tight = blockMemory(301, 97, 50, cost).total;
  const small = chooseBlockSize(301, 97, tight, tile, cost);
  assert.ok(small >= 50 && small < tile, `below one tile: ${small}`);
  assert.is(chooseBlockSize(301, 97, blockMemory(301, 97, 1, cost).total, tile, cost), 1);
  try {
    chooseBlockSize(301, 97, 1000, tile, cost);
    assert.unreachable('expected TOO_LARGE');
  } catch (error) {
    assert.is((error as { code?: string }).code, 'TOO_LARGE');
    assert.match((error as Error).message, /cannot hold even a 1×1 block/);
  }
  for (const [N0, M0, bytes, edge] of [[0, 5, 1e6, 128], [5, 5, -1, 128], [5, 5, 1e6, 0]]) {
    assert.throws(() => chooseBlockSize(N0, M0, bytes, edge), (error: { code?: string }) => error.code === 'INVALID_ARGUMENT');
  }
});

const layouts: Array<[string, NpyLayout]> = [
  ['complex128 C', {}],
  ['complex128 big-endian', { bigEndian: true }],
  ['complex128 Fortran', { fortran: true }],
  ['complex64', { kind: 'c8' }],
  ['complex64 big-endian Fortran', { kind: 'c8', bigEndian: true, fortran: true }],
  ['float64 Fortran', { kind: 'f8', fortran: true }],
];

test('openNpyInput: numpy fixtures of every layout read row by row as the buffered reader reads them', async () => {
  const expected = parseComplexMatrixNpy(fixture('expp_c16.npy'));
  for (const name of ['expp_c16.npy', 'expp_c16_bigendian.npy', 'expp_c16_fortran.npy', 'expp_c8.npy']) {
    const input = await openNpyInput(join(fixturesDir, name));
    assert.equal([input.rows, input.cols], [5, 4]);
    const out = new Float64Array(2 * 3 * 4);
    await input.readRows(1, 4, out, 0);
    assertBitIdentical(out, expected.data.subarray(2 * 4, 2 * 16), name);
    await input.close();
  }
});

test('openNpyInput: any rows of every dtype, byte order and order, through staging buffers of any size', async () => {
  const { expp } = randomProblem(37, 23, 5);
  for (const [what, layout] of layouts) {
    const path = join(work, `layout-${what.replace(/ /g, '-')}.npy`);
    writeFileSync(path, encodeMatrixNpy(expp, layout));
    const stored = asStored(expp, layout);
    for (const chunkBytes of [16, 40, 100, 1000, 1 << 20]) {
      const input = await openNpyInput(path, { chunkBytes });
      assert.is(input.dtype, layout.kind === 'c8' ? 'complex64' : layout.kind === 'f8' ? 'float64' : 'complex128');
      for (const [r0, r1, at] of [[0, 37, 0], [5, 30, 2], [36, 37, 1], [10, 10, 0]] as const) {
        const out = new Float64Array(new SharedArrayBuffer(8 * 2 * (at + 37) * 23)).fill(-7);
        await input.readRows(r0, r1, out, at);
        assertBitIdentical(out.subarray(2 * at * 23, 2 * (at + r1 - r0) * 23), stored.data.subarray(2 * r0 * 23, 2 * r1 * 23), `${what}, chunks of ${chunkBytes}, rows ${r0}…${r1}`);
        assert.ok(out.subarray(0, 2 * at * 23).every((v) => v === -7), 'nothing written before row `at`');
      }
      await input.close();
    }
  }
});

test('openNpyInput: tall Fortran-order files read run by run, or in spans, or in pieces', async () => {
  const { expp } = randomProblem(3000, 5, 12);
  for (const layout of [{ fortran: true }, { fortran: true, kind: 'c8', bigEndian: true }] as NpyLayout[]) {
    const path = join(work, `tall-${layout.kind ?? 'c16'}.npy`);
    writeFileSync(path, encodeMatrixNpy(expp, layout));
    const stored = asStored(expp, layout);
    for (const chunkBytes of [1000, 1 << 20]) {
      const input = await openNpyInput(path, { chunkBytes });
      for (const [r0, r1] of [[100, 140], [0, 3000], [2990, 3000], [1000, 2900]] as const) {
        const out = new Float64Array(2 * (r1 - r0) * 5);
        await input.readRows(r0, r1, out, 0);
        assertBitIdentical(out, stored.data.subarray(2 * r0 * 5, 2 * r1 * 5), `${JSON.stringify(layout)}, chunks of ${chunkBytes}, rows ${r0}…${r1}`);
      }
      await input.close();
    }
  }
});

test('openNpyInput and readNpyVector refuse what is not a matching .npy, naming the file', async () => {
  const code = (promise: Promise<unknown>): Promise<string> => rejectionCode(promise);
  assert.is(await code(openNpyInput(join(work, 'missing.npy'), { name: '--expp' })), 'IO_ERROR');
  try {
    await openNpyInput(join(work, 'missing.npy'), { name: '--expp' });
  } catch (error) {
    assert.match((error as Error).message, /--expp .*missing\.npy: no such file/);
  }
  assert.is(await code(openNpyInput(work)), 'IO_ERROR');
  writeFileSync(join(work, 'text.npy'), 'hello, not numpy');
  assert.is(await code(openNpyInput(join(work, 'text.npy'))), 'BAD_NPY');
  const good = encodeMatrixNpy(randomProblem(4, 3, 1).expp);
  writeFileSync(join(work, 'short.npy'), good.subarray(0, good.length - 1));
  assert.is(await code(openNpyInput(join(work, 'short.npy'))), 'BAD_NPY');
  writeFileSync(join(work, 'long.npy'), Buffer.concat([good, Buffer.alloc(16)]));
  assert.is(await code(openNpyInput(join(work, 'long.npy'))), 'BAD_NPY');
  for (const name of ['bad_3d.npy', 'bad_int64.npy', 'bad_object.npy', 'distance_f8.npy', 'distance_f4.npy']) {
    assert.is(await code(openNpyInput(join(fixturesDir, name))), 'BAD_NPY', name);
  }
  assert.is(await code(readNpyVector(join(fixturesDir, 'expp_c16.npy'))), 'BAD_NPY');
  assert.is(await code(readNpyVector(join(fixturesDir, 'distance_f8.npy'), { expectedLength: 5 })), 'SHAPE_MISMATCH');
  const d = await readNpyVector(join(fixturesDir, 'distance_f8_bigendian.npy'), { expectedLength: 4 });
  assert.instance(d.buffer, SharedArrayBuffer);
  const input = await openNpyInput(join(fixturesDir, 'expp_c16.npy'));
  assert.is(await code(input.readRows(3, 6, new Float64Array(100), 0)), 'INVALID_ARGUMENT');
  assert.is(await code(input.readRows(0, 5, new Float64Array(10), 0)), 'INVALID_ARGUMENT');
  await input.close();
});

test('createNpyOutput: header then a sparse file; blocks and mirrors land at their offsets, idempotently', async () => {
  const { expp, distance } = randomProblem(41, 13, 9);
  const whole = await pool.hermitian(expp, distance);
  const n = 40;
  const path = join(work, 'blocks.npy');
  const output = await createNpyOutput(path, n);
  const before = statSync(path);
  assert.is(before.size, output.fileBytes);
  assert.is(output.fileBytes, output.dataOffset + 16 * n * n);
  assert.ok(before.blocks * 512 < output.fileBytes, 'sparse: not allocated before it is written');
  const plan = planBlocks(n, 9);
  // In reverse, and the first block twice: order and repetition do not matter.
  for (const block of [...plan.blocks].reverse().concat(plan.blocks[0])) {
    const h = await pool.hermitianBlock(expp, distance, block);
    await output.writeBlock(block, h);
  }
  await output.sync();
  await output.close();
  const written = parseComplexMatrixNpy(readFileSync(path));
  assert.equal([written.rows, written.cols], [n, n]);
  assertBitIdentical(written.data, whole.data, 'blocks + mirrors');
  // Reopened: accepted for the same n, refused for another or for a file of the wrong size.
  await (await openNpyOutput(path, n)).close();
  assert.is(await rejectionCode(openNpyOutput(path, n + 1)), 'BAD_NPY');
  writeFileSync(join(work, 'cut.npy'), readFileSync(path).subarray(0, 500));
  assert.is(await rejectionCode(openNpyOutput(join(work, 'cut.npy'), n)), 'BAD_NPY');
  const again = await openNpyOutput(path, n);
  assert.is(await rejectionCode(again.writeBlock({ rows: [0, 5], cols: [0, 5] }, createComplexMatrix(5, 4))), 'SHAPE_MISMATCH');
  assert.is(await rejectionCode(again.writeBlock({ rows: [0, 41], cols: [0, 5] }, createComplexMatrix(41, 5))), 'INVALID_ARGUMENT');
  await again.close();
});

const fingerprint: JobFingerprint = {
  N: 100,
  M: 50,
  blockSize: 16,
  kernel: 'wasm-simd',
  expp: { bytes: 80128, mtimeMs: 1, layout: '<complex128 C (100, 50)', sha256: 'a'.repeat(64) },
  distance: { bytes: 528, mtimeMs: 2, layout: 'vector', sha256: 'b'.repeat(64) },
};

test('openJournal: records are durable lines; a torn last line is dropped; another job or a damaged journal is refused', async () => {
  const out = join(work, 'journal-h.npy');
  const journal = await openJournal(out, fingerprint, { blockCount: 28 });
  assert.ok(journal.created);
  assert.is(journal.done.size, 0);
  const sum = (id: number): { id: number; checksum: string } => ({ id, checksum: id.toString(16).padStart(64, '0') });
  await journal.record(sum(3));
  await journal.record([0, 1, 27].map(sum));
  assert.is(await rejectionCode(journal.record(sum(28))), 'INVALID_ARGUMENT');
  await journal.close();
  assert.equal(journalIds(`${out}.journal`), [3, 0, 1, 27]);
  writeFileSync(`${out}.journal`, `${readFileSync(`${out}.journal`, 'utf8')}1`); // a crash mid-line
  const reopened = await openJournal(out, fingerprint, { blockCount: 28 });
  assert.not.ok(reopened.created);
  assert.equal([...reopened.done].sort((a, b) => a - b), [0, 1, 3, 27]);
  await reopened.record(sum(14));
  await reopened.close();
  assert.equal(journalIds(`${out}.journal`), [3, 0, 1, 27, 14], 'the torn line is gone, the next record is a line of its own');
  for (const [what, other] of [
    ['blockSize', { ...fingerprint, blockSize: 32 }],
    ['kernel', { ...fingerprint, kernel: 'js' }],
    ['was modified', { ...fingerprint, expp: { ...fingerprint.expp, mtimeMs: 5 } }],
    ['size', { ...fingerprint, distance: { ...fingerprint.distance, bytes: 1 } }],
    ['content differs', { ...fingerprint, expp: { ...fingerprint.expp, sha256: 'c'.repeat(64) } }],
  ] as const) {
    try {
      await openJournal(out, other as JobFingerprint);
      assert.unreachable('expected a refusal');
    } catch (error) {
      assert.is((error as { code?: string }).code, 'INVALID_ARGUMENT');
      assert.match((error as Error).message, /belongs to a different job/);
      assert.match((error as Error).message, new RegExp(what));
    }
  }
  writeFileSync(`${out}.journal`, `${readFileSync(`${out}.journal`, 'utf8')}seven\n`);
  assert.is(await rejectionCode(openJournal(out, fingerprint)), 'IO_ERROR');
  writeFileSync(`${out}.journal`, 'not a journal\n');
  assert.is(await rejectionCode(openJournal(out, fingerprint)), 'IO_ERROR');
});

test('chooseJobShape: jobs of several blocks when one block is one tile, read-ahead when it costs no tile, always within the budget', () => {
  const tile = kernelTile(pool.kernel);
  const cost = { kernel: pool.kernel, threads: 2 };
  const N = 8193;
  const quarter = (16 * (N - 1) ** 2) / 4;
  const shape = chooseJobShape(N, 8192, quarter, tile, cost);
  assert.ok(jobMemory(N, 8192, shape, cost).total <= quarter);
  if (pool.kernel.startsWith('wasm')) assert.equal(shape, { blockSize: 128, group: 2, prefetch: false }, 'two tiles a job beat one tile with read-ahead');
  for (const budget of [2 ** 22, 2 ** 24, 2 ** 28, 2 ** 31]) {
    const s = chooseJobShape(2001, 700, budget, tile, cost);
    assert.ok(jobMemory(2001, 700, s, cost).total <= budget, `within ${budget}`);
    assert.ok(s.group >= 1 && s.blockSize >= 1);
  }
  assert.equal(chooseJobShape(301, 97, 2 ** 40, tile, cost), { blockSize: 300, group: 1, prefetch: true }, 'the whole H at once');
  assert.is(chooseJobShape(301, 97, 2 ** 30, tile, { ...cost, blockSize: 37 }).blockSize, 37);
  const tight = jobMemory(301, 97, { blockSize: 37, group: 1, prefetch: false }, cost).total;
  assert.equal(chooseJobShape(301, 97, tight, tile, { ...cost, blockSize: 37 }), { blockSize: 37, group: 1, prefetch: false });
  assert.throws(() => chooseJobShape(301, 97, tight - 1, tile, { ...cost, blockSize: 37 }), (error: { code?: string }) => error.code === 'TOO_LARGE');
});

// N − 1 = 300 against 128-wide wasm tiles (and 64-wide js ones): blocks of 37, 100 and 128 rows straddle tile
// edges, end in partial blocks, or align; jobs of one block (a tight budget, no read-ahead) or of several.
for (const blockSize of [37, 100, 128, 300]) {
  for (const budget of ['tight', 'ample'] as const) {
    test(`computeToNpy with blocks of ${blockSize}, ${budget} memory, equals the in-memory H bit for bit`, async () => {
      const dir = workDir(`ooc-b${blockSize}`);
      const problem = problemOnDisk(dir, 301, 97, 21);
      const out = join(dir, 'H.npy');
      const cost = { kernel: pool.kernel, threads: pool.size };
      const maxMemory = budget === 'tight' ? jobMemory(301, 97, { blockSize, group: 1, prefetch: false }, cost).total : 2 ** 30;
      const summary = await computeToNpy(pool, { expp: problem.expp, distance: problem.distance, out, blockSize, maxMemory });
      const count = Math.ceil(300 / blockSize);
      assert.equal([summary.blocks, summary.computed, summary.skipped, summary.blockSize, summary.n], [(count * (count + 1)) / 2, (count * (count + 1)) / 2, 0, blockSize, 300]);
      if (budget === 'tight') assert.equal([summary.group, summary.prefetch], [1, false]);
      else if (count > 1) assert.ok(summary.group > 1, `group ${summary.group}`);
      assert.not.ok(existsSync(`${out}.partial`), 'renamed onto out');
      assert.not.ok(existsSync(`${out}.journal`), 'journal removed');
      assert.is(statSync(out).size, summary.outBytes);
      await assertSameAsInMemory(out, problem.values, `blocks of ${blockSize}`);
    });
  }
}

test('computeToNpy within a small memory budget (blocks below one tile), and for N = 1, 2 and M = 1', async () => {
  const dir = workDir('ooc-budget');
  const problem = problemOnDisk(dir, 211, 64, 3);
  const maxMemory = blockMemory(211, 64, 24, { kernel: pool.kernel, threads: pool.size }).total;
  const summary = await computeToNpy(pool, { expp: problem.expp, distance: problem.distance, out: join(dir, 'H.npy'), maxMemory });
  assert.ok(summary.blockSize >= 24 && summary.blockSize < 128, `block ${summary.blockSize}: below a wasm tile`);
  assert.ok(summary.memory.total <= maxMemory);
  assert.ok(summary.blocks > 20);
  await assertSameAsInMemory(join(dir, 'H.npy'), problem.values, 'small budget');
  for (const [N, M] of [[1, 5], [2, 5], [9, 1], [9, 2]] as const) {
    const small = problemOnDisk(dir, N, M, N * 10 + M, {}, `n${N}m${M}`);
    const out = join(dir, `H-${N}-${M}.npy`);
    await computeToNpy(pool, { expp: small.expp, distance: small.distance, out, blockSize: 4 });
    await assertSameAsInMemory(out, small.values, `N = ${N}, M = ${M}`);
  }
});

for (const [what, layout] of layouts.slice(1)) {
  test(`computeToNpy reads a ${what} expp by positioned reads, as in memory`, async () => {
    const dir = workDir('ooc-layout');
    const problem = problemOnDisk(dir, 150, 41, 8, layout);
    await computeToNpy(pool, { expp: problem.expp, distance: problem.distance, out: join(dir, 'H.npy'), blockSize: 33 });
    await assertSameAsInMemory(join(dir, 'H.npy'), problem.values, what);
  });
}

test('an abort leaves the journal and the partial output; the same call resumes without recomputing journaled blocks', async () => {
  const dir = workDir('ooc-abort');
  const problem = problemOnDisk(dir, 301, 97, 4);
  const out = join(dir, 'H.npy');
  const controller = new AbortController();
  let written = 0;
  const first = computeToNpy(pool, {
    expp: problem.expp,
    distance: problem.distance,
    out,
    blockSize: 20,
    signal: controller.signal,
    commitIntervalMs: 0,
    onProgress: (p) => {
      if (p.blocksDone >= 30 && written === 0) {
        written = p.blocksDone;
        controller.abort(new Error('enough'));
      }
    },
  });
  try {
    await first;
    assert.unreachable('expected ABORTED');
  } catch (error) {
    assert.is((error as { code?: string }).code, 'ABORTED');
    assert.is((error as Error).name, 'AbortError');
    assert.match((error as Error).message, /interrupted: \d+ of 120 blocks are in .*H\.npy\.journal; run the same command again to resume/);
  }
  assert.not.ok(existsSync(out), 'no output before every block is in');
  assert.ok(existsSync(`${out}.partial`));
  assert.not.ok(existsSync(`${out}.lock`), 'the lock is released on abort');
  const journaled = journalIds(`${out}.journal`);
  assert.ok(journaled.length >= 30 && journaled.length < 120, `${journaled.length} journaled`);
  assert.is(new Set(journaled).size, journaled.length, 'each block once');
  const progress: OutOfCoreProgress[] = [];
  const summary = await computeToNpy(pool, { expp: problem.expp, distance: problem.distance, out, blockSize: 20, onProgress: (p) => progress.push(p) });
  assert.is(summary.skipped, journaled.length);
  assert.is(summary.computed, 120 - journaled.length);
  assert.is(progress[0].blocksSkipped, journaled.length);
  assert.is(progress[0].blocksDone, journaled.length);
  await assertSameAsInMemory(out, problem.values, 'resumed');
});

test('one run at a time writes an output: a second is refused; a dead process\'s lock is taken over, another host\'s is not', async () => {
  const dir = workDir('ooc-lock');
  const problem = problemOnDisk(dir, 301, 97, 8);
  const out = join(dir, 'H.npy');
  const args = { expp: problem.expp, distance: problem.distance, out, blockSize: 20 };
  // A second run started while the first holds the output (its first write waits for the second to settle)
  // is refused before it touches anything; the first finishes.
  let refused: (Error & { code?: string }) | undefined;
  await computeToNpy(pool, {
    ...args,
    beforeWrite: async () => {
      refused ??= await computeToNpy(pool, args).then(
        (): Error & { code?: string } => assert.unreachable('two runs wrote one output') as never,
        (error: Error & { code?: string }) => error,
      );
    },
  });
  assert.ok(refused !== undefined);
  assert.is(refused.code, 'IO_ERROR');
  assert.match(refused.message, new RegExp(`another hpair \\(pid ${process.pid} on ${hostname()}, since .*\\) is writing it; if none is, delete .*H\\.npy\\.lock`));
  assert.not.ok(existsSync(`${out}.lock`), 'released when done');
  await assertSameAsInMemory(out, problem.values, 'the first run');
  // A lock left by a process of this host that is gone (kill -9): taken over.
  const dead = spawnSync(process.execPath, ['-e', '']).pid!;
  writeFileSync(`${out}.lock`, JSON.stringify({ pid: dead, host: hostname(), since: '2026-01-01T00:00:00.000Z' }));
  rmSync(out);
  await computeToNpy(pool, args);
  await assertSameAsInMemory(out, problem.values, 'after a stale lock');
  assert.not.ok(existsSync(`${out}.lock`));
  // A lock naming this very process id but a token it does not hold (the id was reused, as pid 1 is by a
  // restarted container): stale, taken over.
  writeFileSync(`${out}.lock`, JSON.stringify({ pid: process.pid, host: hostname(), since: '2026-01-01T00:00:00.000Z', token: 'from-a-previous-life' }));
  rmSync(out);
  await computeToNpy(pool, args);
  assert.not.ok(existsSync(`${out}.lock`));
  // Another host's lock (on a shared directory) cannot be checked from here: refused, naming it.
  writeFileSync(`${out}.lock`, JSON.stringify({ pid: 1, host: 'elsewhere', since: '2026-01-01T00:00:00.000Z' }));
  assert.is(await rejectionCode(computeToNpy(pool, args)), 'IO_ERROR');
  assert.ok(existsSync(`${out}.lock`), 'another host\'s lock is left alone');
});

test('a full disk (ENOSPC on a write) fails with IO_ERROR, journals only whole blocks, and resumes', async () => {
  const dir = workDir('ooc-enospc');
  const problem = problemOnDisk(dir, 301, 97, 6);
  const out = join(dir, 'H.npy');
  const written: number[] = [];
  const failing = computeToNpy(pool, {
    expp: problem.expp,
    distance: problem.distance,
    out,
    blockSize: 30,
    commitIntervalMs: 0,
    beforeWrite: (block: Block) => {
      if (written.length === 20) throw Object.assign(new Error(`ENOSPC: no space left on device, write (block ${block.id})`), { code: 'ENOSPC' });
      written.push(block.id);
    },
  });
  let message = '';
  try {
    await failing;
    assert.unreachable('expected IO_ERROR');
  } catch (error) {
    assert.is((error as { code?: string }).code, 'IO_ERROR');
    message = (error as Error).message;
    assert.match(message, /no space left on device \(ENOSPC\).*\d+ of 55 blocks are in .*journal; run the same command again to resume/);
  }
  // Jobs of several blocks are journaled whole or not at all: those written in full before the failing one.
  const journaled = journalIds(`${out}.journal`);
  assert.ok(journaled.length > 0 && journaled.length <= 20, `${journaled.length} journaled`);
  assert.equal(journaled, written.slice(0, journaled.length), 'in order, none of the failing job');
  assert.match(message, new RegExp(`${journaled.length} of 55 blocks`));
  const summary = await computeToNpy(pool, { expp: problem.expp, distance: problem.distance, out, blockSize: 30 });
  assert.equal([summary.skipped, summary.computed], [journaled.length, 55 - journaled.length]);
  await assertSameAsInMemory(out, problem.values, 'after ENOSPC');
});

test('a journal from a different job is refused; a changed input is one; the block size is kept when resuming', async () => {
  const dir = workDir('ooc-other');
  const problem = problemOnDisk(dir, 201, 50, 7);
  const out = join(dir, 'H.npy');
  const whole = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000); // a whole second: restored exactly below
  utimesSync(problem.distance, whole, whole);
  const controller = new AbortController();
  const stopped = computeToNpy(pool, {
    expp: problem.expp,
    distance: problem.distance,
    out,
    blockSize: 25,
    signal: controller.signal,
    commitIntervalMs: 0,
    onProgress: (p) => (p.blocksDone >= 5 ? controller.abort() : undefined),
  });
  assert.is(await rejectionCode(stopped), 'ABORTED');
  try {
    await computeToNpy(pool, { expp: problem.expp, distance: problem.distance, out, blockSize: 40 });
    assert.unreachable('expected a refusal');
  } catch (error) {
    assert.is((error as { code?: string }).code, 'INVALID_ARGUMENT');
    assert.match((error as Error).message, /belongs to a different job \(blockSize is 25 there but 40 here\)/);
  }
  const later = new Date(Date.now() + 5000);
  utimesSync(problem.distance, later, later);
  try {
    await computeToNpy(pool, { expp: problem.expp, distance: problem.distance, out, maxMemory: 2 ** 30 });
    assert.unreachable('expected a refusal');
  } catch (error) {
    assert.match((error as Error).message, /different job \(distance was modified/);
  }
  assert.ok(journalIds(`${out}.journal`).length >= 5, 'a refused run leaves the journal as it was');
  // Restored: a run without a block size keeps the journal's (25), though its budget would choose another.
  utimesSync(problem.distance, whole, whole);
  const summary = await computeToNpy(pool, { expp: problem.expp, distance: problem.distance, out, maxMemory: 2 ** 30 });
  assert.is(summary.blockSize, 25);
  assert.ok(summary.skipped >= 5);
  await assertSameAsInMemory(out, problem.values, 'resumed with the journal\'s block size');
});

test('a run stopped between its rename and removing the journal: the next run only removes the journal', async () => {
  const dir = workDir('ooc-finish');
  const problem = problemOnDisk(dir, 101, 20, 13);
  const out = join(dir, 'H.npy');
  let header: string | undefined;
  const options = { expp: problem.expp, distance: problem.distance, out, blockSize: 25 };
  await computeToNpy(pool, { ...options, onProgress: () => (header ??= readFileSync(`${out}.journal`, 'utf8').split('\n')[0]) });
  const finished = readFileSync(out);
  const ids = planBlocks(100, 25).blocks.map((block) => block.id);
  const records = (JSON.parse(readFileSync(`${out}.manifest.json`, 'utf8')) as { blocks: Array<{ id: number; sha256: string }> }).blocks.map((b) => `${b.id} ${b.sha256}`);
  writeFileSync(`${out}.journal`, `${header}\n${records.join('\n')}\n`);
  const summary = await computeToNpy(pool, options);
  assert.equal([summary.computed, summary.skipped], [0, ids.length]);
  assert.not.ok(existsSync(`${out}.journal`));
  assert.ok(readFileSync(out).equals(finished), 'H untouched');
  // A journal whose partial output is gone (deleted by hand) means nothing: everything is computed again.
  writeFileSync(`${out}.journal`, `${header}\n${records.slice(0, 2).join('\n')}\n`);
  const again = await computeToNpy(pool, options);
  assert.equal([again.computed, again.skipped], [ids.length, 0]);
  assert.ok(readFileSync(out).equals(finished));
});

test('bad inputs are refused before anything is written', async () => {
  const dir = workDir('ooc-bad');
  const problem = problemOnDisk(dir, 30, 10, 2);
  const other = problemOnDisk(dir, 30, 11, 2, {}, 'other-');
  const out = join(dir, 'H.npy');
  const run = (options: Partial<Parameters<typeof computeToNpy>[1]>): Promise<string> =>
    rejectionCode(computeToNpy(pool, { expp: problem.expp, distance: problem.distance, out, ...options }));
  assert.is(await run({ distance: other.distance }), 'SHAPE_MISMATCH');
  assert.is(await run({ expp: join(dir, 'nope.npy') }), 'IO_ERROR');
  assert.is(await run({ expp: join(fixturesDir, 'distance_f8.npy') }), 'BAD_NPY');
  assert.is(await run({ out: join(dir, 'no-such-dir', 'H.npy') }), 'IO_ERROR');
  assert.is(await run({ out: dir }), 'IO_ERROR');
  assert.is(await run({ out: problem.expp }), 'INVALID_ARGUMENT');
  assert.is(await run({ maxMemory: -1 }), 'INVALID_ARGUMENT');
  assert.is(await run({ blockSize: 0 }), 'INVALID_ARGUMENT');
  assert.is(await run({ maxMemory: 1000 }), 'TOO_LARGE');
  assert.is(await run({ signal: AbortSignal.abort() }), 'ABORTED');
  assert.not.ok(existsSync(out) || existsSync(`${out}.partial`) || existsSync(`${out}.journal`), 'nothing written');
  // A non-finite value is named by its row in expp, not in the block's gathered rows.
  const bad = randomProblem(60, 10, 3);
  bad.expp.data[2 * (47 * 10 + 4) + 1] = Number.POSITIVE_INFINITY;
  writeFileSync(join(dir, 'bad.npy'), encodeMatrixNpy(bad.expp));
  try {
    await computeToNpy(pool, { expp: join(dir, 'bad.npy'), distance: problem.distance, out, blockSize: 10 });
    assert.unreachable('expected NON_FINITE');
  } catch (error) {
    assert.is((error as { code?: string }).code, 'NON_FINITE');
    assert.match((error as Error).message, /expp\[47, 4\] has a non-finite imaginary part/);
  }
});

test.run();
