// Out of core, a worker that hangs mid-run: the watchdog fails the block with WORKER_UNRESPONSIVE, and that is
// resumable like a crash: the error says so, the journal keeps the blocks written, and the same call then
// finishes H, bit for bit the in-memory H. The pool and computeToNpy come from the sources (one HpairError class).
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Pool } from '../workers/pool.js';
import { computeToNpy } from '../blocks/index.js';
import { parseComplexMatrixNpy } from 'hpair';
import { assertBitIdentical } from './helpers/support.js';
import { journalIds, problemOnDisk, workDir } from './helpers/out-of-core.js';

const test = suite('unresponsive-resume');
/** Long enough for a loaded machine's slowest step to show a sign of life, short enough for a test. */
const WATCHDOG_MS = 1500;

test('out of core: a worker stuck in a tile → WORKER_UNRESPONSIVE, "run the same command again to resume", and the rerun completes H exactly', async () => {
  const dir = workDir('unresponsive');
  const problem = problemOnDisk(dir, 161, 24, 7);
  const out = join(dir, 'H.npy');
  const options = { expp: problem.expp, distance: problem.distance, out, blockSize: 32 };
  // The stall worker's first thread spins for ever at its 4th tile, after a few blocks are written.
  process.env.HPAIR_TEST_STALL = 'spin';
  process.env.HPAIR_TEST_STALL_AT = '4';
  const stalling = new Pool({ workers: 2, kernel: 'js', inlineFlops: 0, schedule: 'strided', watchdogMs: WATCHDOG_MS }, new URL('./helpers/stall-worker.js', import.meta.url));
  delete process.env.HPAIR_TEST_STALL;
  delete process.env.HPAIR_TEST_STALL_AT;
  const clean = new Pool({ workers: 2, kernel: 'js', inlineFlops: 0 }, new URL('../worker.js', import.meta.url));
  try {
    const error = (await computeToNpy(stalling, options).then(
      () => assert.unreachable('the stalled run completed'),
      (e: unknown) => e,
    )) as { code?: string; message: string };
    assert.is(error.code, 'WORKER_UNRESPONSIVE', error.message);
    assert.match(error.message, /blocks are in .*H\.npy\.journal; run the same command again to resume/);
    const journaled = journalIds(`${out}.journal`).length;
    const summary = await computeToNpy(clean, options);
    assert.is(summary.skipped, journaled, 'the rerun kept every journaled block');
    assert.is(summary.computed + summary.skipped, summary.blocks);
    const whole = await clean.hermitian(problem.values.expp, problem.values.distance);
    assertBitIdentical(parseComplexMatrixNpy(readFileSync(out)).data, whole.data, 'resumed H');
  } finally {
    await Promise.all([stalling.destroy(), clean.close()]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
