// End-to-end integrity of an out-of-core H, tried the hostile way: a journal with forged records, a partial
// output zeroed behind the journal's back, an input rewritten with its size and time kept, a finished H
// changed after the fact. Each must end with the right H (bit for bit against the in-memory pool) or a typed
// error naming what is wrong, never with a wrong H and success.
import { closeSync, existsSync, lstatSync, openSync, readFileSync, renameSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { computeToNpy, createPool, encodeComplexMatrixNpy, parseComplexMatrixNpy, planBlocks, type ComplexMatrix, type Pool } from 'hpair';
import { assertBitIdentical, randomProblem, rejectionCode } from './helpers/support.js';
import { journalIds, problemOnDisk, workDir } from './helpers/out-of-core.js';
import { runCli as cli } from './helpers/cli-run.js';

const test = suite('integrity');
let pool: Pool;
test.before(() => {
  pool = createPool({ workers: 2, inlineFlops: 0 });
});
test.after(async () => {
  await pool.close();
});

// N = 201 in blocks of 40: 15 blocks, with partial blocks at the edge.
const N = 201;
const M = 48;
const BLOCK = 40;
const BLOCKS = 15;
const HEADER = 128;

async function assertSameAsInMemory(out: string, values: { expp: ComplexMatrix; distance: Float64Array }, what: string): Promise<void> {
  const whole = await pool.hermitian(values.expp, values.distance);
  const written = parseComplexMatrixNpy(readFileSync(out));
  assert.equal([written.rows, written.cols], [whole.rows, whole.cols], `${what}: shape`);
  assertBitIdentical(written.data, whole.data, what);
}

/** Starts a run and aborts it once `blocks` blocks are journaled: the partial output and the journal stay. */
async function interrupted(problem: { expp: string; distance: string }, out: string, blocks: number): Promise<void> {
  const controller = new AbortController();
  const code = await rejectionCode(
    computeToNpy(pool, {
      expp: problem.expp,
      distance: problem.distance,
      out,
      blockSize: BLOCK,
      signal: controller.signal,
      commitIntervalMs: 0,
      onProgress: (p) => (p.blocksDone >= blocks ? controller.abort() : undefined),
    }),
  );
  assert.is(code, 'ABORTED');
  assert.ok(existsSync(`${out}.partial`) && existsSync(`${out}.journal`), 'partial output and journal stay');
  assert.ok(journalIds(`${out}.journal`).length >= blocks);
}


/** Overwrites H's entries (row, col) of the file at `path` with `value` (re and im). */
function poke(path: string, n: number, entries: ReadonlyArray<readonly [number, number]>, value = 0): void {
  const fd = openSync(path, 'r+');
  try {
    const bytes = Buffer.alloc(16);
    bytes.writeDoubleLE(value, 0);
    bytes.writeDoubleLE(value, 8);
    for (const [row, col] of entries) writeSync(fd, bytes, 0, 16, HEADER + 16 * (row * n + col));
  } finally {
    closeSync(fd);
  }
}

test('a finished output carries a manifest; hpair verify passes it, and names the block of any entry changed later (mirror included)', async () => {
  const dir = workDir('integrity-verify');
  const problem = problemOnDisk(dir, N, M, 31);
  const out = join(dir, 'H.npy');
  const summary = await computeToNpy(pool, { expp: problem.expp, distance: problem.distance, out, blockSize: BLOCK });
  assert.equal(summary.recomputed, []);
  await assertSameAsInMemory(out, problem.values, 'computed');
  const manifest = JSON.parse(readFileSync(`${out}.manifest.json`, 'utf8')) as Record<string, unknown> & { blocks: Array<{ id: number; rows: number[]; cols: number[]; sha256: string }>; inputs: Record<string, { sha256: string; bytes: number }> };
  assert.is(manifest.format, 'hpair-manifest');
  assert.is(manifest.version, 1);
  assert.equal(manifest.shape, [N - 1, N - 1]);
  assert.is(manifest.blockSize, BLOCK);
  assert.is(manifest.checksum, 'sha256');
  assert.is(manifest.blocks.length, BLOCKS);
  assert.is(manifest.inputs.expp.bytes, statSync(problem.expp).size);
  const { createHash } = await import('node:crypto');
  assert.is(manifest.inputs.expp.sha256, createHash('sha256').update(readFileSync(problem.expp)).digest('hex'), 'the input digest is what sha256sum prints');

  const ok = await cli(['verify', out]);
  assert.is(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /H\.npy: ok, 15 blocks match H\.npy\.manifest\.json \(sha256\)/);
  const pristine = readFileSync(out);

  // One entry below the diagonal (block (3, 1): id 7), one entry of another block's mirror (block (4, 2): id
  // 12, its mirror at row 90, column 170), and one on a diagonal block's upper half (block (2, 2): id 5).
  const n = N - 1;
  const idOf = (row: number, col: number): number => planBlocks(n, BLOCK).blocks.find((b) => b.rows[0] <= Math.max(row, col) && Math.max(row, col) < b.rows[1] && b.cols[0] <= Math.min(row, col) && Math.min(row, col) < b.cols[1])!.id;
  assert.equal([idOf(130, 50), idOf(90, 170), idOf(81, 95)], [7, 12, 5]);
  poke(out, n, [[130, 50], [90, 170], [81, 95]], 0);
  const bad = await cli(['verify', out]);
  assert.is(bad.code, 2, bad.stderr);
  assert.is(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  assert.match(bad.stderr, /^hpair: .*H\.npy: 3 of 15 blocks do not match H\.npy\.manifest\.json: block 5 \(rows \[80, 120\) × columns \[80, 120\)\), block 7 \(rows \[120, 160\) × columns \[40, 80\)\), block 12 \(rows \[160, 200\) × columns \[80, 120\)\)\n$/);

  // A value changed to itself passes; a header or size changed, a manifest changed or gone, all exit 2.
  writeFileSync(out, pristine);
  assert.is((await cli(['verify', out])).code, 0);
  const header = Buffer.from(pristine);
  header[HEADER - 2] = 0x21;
  writeFileSync(out, header);
  const headerRun = await cli(['verify', out]);
  assert.is(headerRun.code, 2);
  assert.match(headerRun.stderr, /header is not that of the 200×200 complex128 H/);
  writeFileSync(out, pristine.subarray(0, pristine.length - 16));
  assert.match((await cli(['verify', out])).stderr, /has 640112 bytes but its manifest describes/);
  writeFileSync(out, pristine);
  const forged = { ...manifest, blocks: manifest.blocks.slice(1) };
  writeFileSync(`${out}.manifest.json`, JSON.stringify(forged));
  const gap = await cli(['verify', out]);
  assert.is(gap.code, 2);
  assert.match(gap.stderr, /its blocks do not tile H \(1 cells have no block\)/);
  unlinkSync(`${out}.manifest.json`);
  const none = await cli(['verify', out]);
  assert.is(none.code, 2);
  assert.match(none.stderr, /has no manifest/);
  const usage = await cli(['verify']);
  assert.is(usage.code, 2);
});

test('forged journal records: an id without a checksum is refused as damaged; a forged checksum is found by the re-read, recomputed and named', async () => {
  const dir = workDir('integrity-forged');
  const problem = problemOnDisk(dir, N, M, 32);
  const out = join(dir, 'H.npy');
  await interrupted(problem, out, 3);
  const journal = `${out}.journal`;
  const honest = readFileSync(journal, 'utf8');
  const done = new Set(journalIds(journal));
  const missing = [...Array(BLOCKS).keys()].filter((id) => !done.has(id));
  assert.ok(missing.length >= 2);

  // Ids the run never computed, appended as the old journal format had them: damaged, named by line.
  writeFileSync(journal, `${honest}${missing[0]}\n${missing[1]}\n`);
  const damaged = computeToNpy(pool, { expp: problem.expp, distance: problem.distance, out });
  try {
    await damaged;
    assert.unreachable('a forged journal must be refused');
  } catch (error) {
    assert.is((error as { code?: string }).code, 'IO_ERROR');
    assert.match((error as Error).message, new RegExp(`the journal .*H\\.npy\\.journal is damaged \\(line ${honest.split('\n').length} is not a block id and its checksum\\)`));
  }
  assert.ok(existsSync(`${out}.partial`) && !existsSync(out), 'nothing published');

  // The same ids with made-up checksums: their blocks (zeros in the sparse partial) fail the re-read, are
  // computed again, and the summary names them.
  writeFileSync(journal, `${honest}${missing[0]} ${'7'.repeat(64)}\n${missing[1]} ${'0'.repeat(64)}\n`);
  const summary = await computeToNpy(pool, { expp: problem.expp, distance: problem.distance, out });
  assert.equal([...summary.recomputed], [missing[0], missing[1]].sort((a, b) => a - b));
  assert.is(summary.skipped, done.size + 2);
  await assertSameAsInMemory(out, problem.values, 'after forged checksums');
  assert.is((await cli(['verify', out])).code, 0, 'the manifest holds the recomputed blocks\' checksums');
});

test('a partial output zeroed behind the journal: the resumed CLI run recomputes those blocks, names them, and H is right', async () => {
  const dir = workDir('integrity-zeroed');
  const problem = problemOnDisk(dir, N, M, 33);
  const out = join(dir, 'H.npy');
  await interrupted(problem, out, 4);
  const done = journalIds(`${out}.journal`).sort((a, b) => a - b);
  const size = statSync(`${out}.partial`).size;
  const fd = openSync(`${out}.partial`, 'r+');
  writeSync(fd, Buffer.alloc(size - HEADER), 0, size - HEADER, HEADER);
  closeSync(fd);
  const run = await cli(['compute', '--expp', problem.expp, '--distance', problem.distance, '--out', out, '--max-memory', '64M', '--json']);
  assert.is(run.code, 0, run.stderr);
  assert.match(run.stderr, new RegExp(`^hpair: blocks ${done.join(', ')} of .*H\\.npy\\.partial did not match the checksums recorded when they were written .*computed again\\n$`));
  const summary = JSON.parse(run.stdout) as { recomputed: number[]; skipped: number };
  assert.equal(summary.recomputed, done);
  await assertSameAsInMemory(out, problem.values, 'after zeroing');
  assert.is((await cli(['verify', out])).code, 0);
});

test('an input rewritten with the same size and modification time is another job: the resume is refused and nothing is overwritten', async () => {
  const dir = workDir('integrity-rewritten');
  const problem = problemOnDisk(dir, N, M, 34);
  const out = join(dir, 'H.npy');
  utimesSync(problem.expp, 1_700_000_000, 1_700_000_000); // whole seconds: set again exactly below
  await interrupted(problem, out, 3);
  const before = statSync(problem.expp);
  const journal = readFileSync(`${out}.journal`);
  const partial = readFileSync(`${out}.partial`);
  const other = randomProblem(N, M, 99);
  const bytes = encodeComplexMatrixNpy(other.expp);
  assert.is(bytes.length, before.size);
  writeFileSync(problem.expp, bytes);
  utimesSync(problem.expp, 1_700_000_000, 1_700_000_000);
  assert.is(statSync(problem.expp).mtimeMs, before.mtimeMs);
  try {
    await computeToNpy(pool, { expp: problem.expp, distance: problem.distance, out });
    assert.unreachable('the rewritten input must be told apart');
  } catch (error) {
    assert.is((error as { code?: string }).code, 'INVALID_ARGUMENT');
    assert.match((error as Error).message, /belongs to a different job \(expp's content differs: SHA-256 [0-9a-f]{16}… there, [0-9a-f]{16}… here\)/);
  }
  assert.ok(readFileSync(`${out}.journal`).equals(journal) && readFileSync(`${out}.partial`).equals(partial), 'journal and partial output untouched');
  assert.not.ok(existsSync(out));
  // Started over (the files deleted, as the message says), the new input gives its own H.
  unlinkSync(`${out}.journal`);
  unlinkSync(`${out}.partial`);
  await computeToNpy(pool, { expp: problem.expp, distance: problem.distance, out });
  await assertSameAsInMemory(out, { expp: other.expp, distance: problem.values.distance }, 'the rewritten input');
});

test('an input rewritten mid-run with its size and time kept: the run fails before publishing, naming it', async () => {
  const dir = workDir('integrity-midrun');
  const problem = problemOnDisk(dir, N, M, 36);
  const out = join(dir, 'H.npy');
  utimesSync(problem.distance, 1_700_000_000, 1_700_000_000);
  const rewritten = Float64Array.from(problem.values.distance, (value) => value * 2);
  let written = 0;
  try {
    await computeToNpy(pool, {
      expp: problem.expp,
      distance: problem.distance,
      out,
      blockSize: BLOCK,
      beforeWrite: () => {
        if (++written !== 2) return;
        const bytes = readFileSync(problem.distance);
        Buffer.from(rewritten.buffer).copy(bytes, bytes.length - rewritten.byteLength);
        writeFileSync(problem.distance, bytes);
        utimesSync(problem.distance, 1_700_000_000, 1_700_000_000);
      },
    });
    assert.unreachable('a run whose input changed under it must not publish');
  } catch (error) {
    assert.is((error as { code?: string }).code, 'IO_ERROR');
    assert.match((error as Error).message, /distance .*D\.npy changed while H was computed from it; delete .*H\.npy\.partial and .*H\.npy\.journal to start over/);
  }
  assert.not.ok(existsSync(out) || existsSync(`${out}.manifest.json`), 'nothing published');
});

test('an in-memory compute over an output with a manifest removes it (verify then says there is none, not that blocks differ); a link or a foreign file at its name is left, with a note', async () => {
  const dir = workDir('integrity-stale-manifest');
  const first = problemOnDisk(dir, N, M, 38);
  const second = problemOnDisk(dir, N, M, 39, {}, 'other-');
  const out = join(dir, 'H.npy');
  const manifest = `${out}.manifest.json`;
  const ooc = await cli(['compute', '--expp', first.expp, '--distance', first.distance, '--out', out, '--max-memory', '3M']);
  assert.is(ooc.code, 0, ooc.stderr);
  assert.ok(existsSync(manifest), 'out of core wrote a manifest');
  assert.is((await cli(['verify', out])).code, 0);
  // In memory, other inputs, the same --out: the manifest goes with the H it described.
  const mem = await cli(['compute', '--expp', second.expp, '--distance', second.distance, '--out', out]);
  assert.is(mem.code, 0, mem.stderr);
  assert.is(mem.stderr, '', 'nothing to note');
  assert.not.ok(existsSync(manifest), 'the stale manifest is removed');
  await assertSameAsInMemory(out, second.values, 'the in-memory H');
  const after = await cli(['verify', out]);
  assert.is(after.code, 2);
  assert.match(after.stderr, /H\.npy has no manifest/);
  assert.not.match(after.stderr, /do not match/);

  // A manifest-looking file reached through a link, and a file hpair did not write: neither is followed,
  // removed or changed; the run says why verify will not match.
  const ooc2 = await cli(['compute', '--expp', first.expp, '--distance', first.distance, '--out', out, '--max-memory', '3M']);
  assert.is(ooc2.code, 0, ooc2.stderr);
  const elsewhere = join(dir, 'elsewhere.json');
  renameSync(manifest, elsewhere);
  symlinkSync(elsewhere, manifest);
  const theirs = readFileSync(elsewhere);
  const linked = await cli(['compute', '--expp', second.expp, '--distance', second.distance, '--out', out]);
  assert.is(linked.code, 0, linked.stderr);
  assert.match(linked.stderr, /^hpair: left .*H\.npy\.manifest\.json as it is \(it is a symbolic link\); it does not describe the H just written/);
  assert.ok(lstatSync(manifest).isSymbolicLink(), 'the link stays');
  assert.ok(readFileSync(elsewhere).equals(theirs), 'its target is untouched');
  unlinkSync(manifest);
  const foreign = '{"format": "someone-elses", "note": "keep me"}\n';
  writeFileSync(manifest, foreign);
  const kept = await cli(['compute', '--expp', first.expp, '--distance', first.distance, '--out', out]);
  assert.is(kept.code, 0, kept.stderr);
  assert.match(kept.stderr, /left .*H\.npy\.manifest\.json as it is \(hpair did not write it\)/);
  assert.is(readFileSync(manifest, 'utf8'), foreign);
  await assertSameAsInMemory(out, first.values, 'H beside a foreign file');
});

test('a journal that is a symbolic link is refused, and the file it points to is left as it was', async () => {
  const dir = workDir('integrity-symlink');
  const problem = problemOnDisk(dir, N, M, 37);
  const out = join(dir, 'H.npy');
  await interrupted(problem, out, 2);
  const elsewhere = join(dir, 'elsewhere.journal');
  renameSync(`${out}.journal`, elsewhere);
  symlinkSync(elsewhere, `${out}.journal`);
  const before = readFileSync(elsewhere);
  const partialBefore = readFileSync(`${out}.partial`);
  try {
    await computeToNpy(pool, { expp: problem.expp, distance: problem.distance, out });
    assert.unreachable('expected a refusal');
  } catch (error) {
    assert.is((error as { code?: string }).code, 'IO_ERROR');
    // Refused by the check of the files beside the output, before the journal is even read.
    assert.match((error as Error).message, /\(journal\) .*H\.npy\.journal is a symbolic link; hpair never writes through or replaces a file it did not create/);
  }
  assert.ok(readFileSync(elsewhere).equals(before), 'the link\'s target is untouched');
  assert.ok(readFileSync(`${out}.partial`).equals(partialBefore), 'the partial output is untouched');
  assert.ok(lstatSync(`${out}.journal`).isSymbolicLink(), 'the link is left where it was');
  assert.not.ok(existsSync(out));
  assert.not.ok(existsSync(`${out}.manifest.json`), 'nothing was published');
});

test('a journal of the earlier format (ids without checksums) is refused, naming why', async () => {
  const dir = workDir('integrity-v1');
  const problem = problemOnDisk(dir, N, M, 35);
  const out = join(dir, 'H.npy');
  await interrupted(problem, out, 2);
  const lines = readFileSync(`${out}.journal`, 'utf8').split('\n');
  writeFileSync(`${out}.journal`, `hpair-journal 1 ${lines[0].slice('hpair-journal 2 '.length)}\n0\n1\n`);
  try {
    await computeToNpy(pool, { expp: problem.expp, distance: problem.distance, out });
    assert.unreachable('expected a refusal');
  } catch (error) {
    assert.is((error as { code?: string }).code, 'IO_ERROR');
    assert.match((error as Error).message, /written by an earlier hpair, without block checksums; delete it and the partial output/);
  }
});

test.run();
