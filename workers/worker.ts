// Worker entry point (dist/worker.js): exposes WorkerApi over Comlink on the parent port.
import { expose } from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { parentPort } from 'node:worker_threads';
import { Slot } from '../shared/control-block.js';
import { loadKernel } from './load-kernel.js';
import { toRecord } from './error-record.js';
import type { RunOutcome, StepSpec, WorkerApi } from './protocol.js';
import { runTiles } from './run-tiles.js';

if (parentPort === null) throw new Error('hpair worker.js must run in a worker thread');

const api: WorkerApi = {
  ping: () => process.pid,
  async run(step: StepSpec, worker: number, workers: number): Promise<RunOutcome> {
    try {
      runTiles(await loadKernel(step.kernel), step, worker, workers);
      return { ok: true };
    } catch (error) {
      return { ok: false, error: toRecord(error) };
    } finally {
      // Signal even when the kernel threw, so the main thread's count always completes.
      Atomics.add(step.control, Slot.DONE, 1);
      Atomics.notify(step.control, Slot.DONE);
    }
  },
};

expose(api, nodeEndpoint(parentPort));
