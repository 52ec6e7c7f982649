// Worker entry point (dist/worker.js): exposes WorkerApi over Comlink on the parent port.
import { expose } from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { parentPort } from 'node:worker_threads';
import { Slot } from '../shared/control-block.js';
import type { RunOutcome, StepSpec, WorkerApi } from '../shared/protocol.js';
import { collectGarbage } from './collect-garbage.js';
import { toRecord } from './error-record.js';
import { loadKernel } from './load-kernel.js';
import { changedBuiltin } from './realm-integrity.js';
import { runTiles } from './run-tiles.js';

if (parentPort === null) throw new Error('hpair worker.js must run in a worker thread');

const api: WorkerApi = {
  ping: () => process.pid,
  release() {
    // After the answer is posted: the main thread does not wait for the collection.
    setImmediate(collectGarbage);
  },
  async run(step: StepSpec, worker: number, workers: number): Promise<RunOutcome> {
    const userKernel = step.kernel.kind === 'module';
    let inKernel = false;
    try {
      const kernel = await loadKernel(step.kernel);
      inKernel = userKernel;
      runTiles(kernel, step, worker, workers);
      return { ok: true, tainted: userKernel ? changedBuiltin() : undefined };
    } catch (error) {
      // Codes pass only from hpair's own code: a user's kernel cannot forge one (it becomes KERNEL_FAILED).
      return { ok: false, error: toRecord(error, !inKernel), tainted: userKernel ? changedBuiltin() : undefined };
    } finally {
      // Signal even when the kernel threw, so the main thread's count always completes.
      Atomics.add(step.control, Slot.DONE, 1);
      Atomics.notify(step.control, Slot.DONE);
    }
  },
};

expose(api, nodeEndpoint(parentPort));
