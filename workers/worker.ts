// Worker entry point (dist/worker.js): exposes WorkerApi over Comlink on the parent port.
import { expose } from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { parentPort, workerData } from 'node:worker_threads';
import { Slot, isCancelled } from '../shared/control-block.js';
import { HpairError } from '../shared/errors.js';
import { builtinKernels } from '../kernel/builtins.js';
import { fromWireStep, type RunOutcome, type StepSpec, type WireStep, type WorkerApi } from '../shared/protocol.js';
import { collectGarbage } from './collect-garbage.js';
import { toRecord } from './error-record.js';
import { kernelImported, loadKernel } from './load-kernel.js';
import { changedBuiltin } from './realm-integrity.js';
import { runTiles } from './run-tiles.js';
import { lowerThreadPriority } from './thread-priority.js';
import type { WorkerStartData } from './worker-handle.js';

if (parentPort === null) throw new Error('hpair worker.js must run in a worker thread');
// Before the first step, so every tile runs at the pool's priority. A worker started by an older pool sends none.
const nice = (workerData as Partial<WorkerStartData> | null | undefined)?.nice;
if (typeof nice === 'number') lowerThreadPriority(nice);

/**
 * When to collect (see WorkerApi.run). A forced major collection takes a millisecond or so, which back-to-back
 * small jobs would pay as latency on their next step.
 * What it frees is only worth that at the end of a job, after the jobs since the last collection referenced
 * COLLECT_NOW_BYTES of buffers; otherwise the worker collects once it has been idle for IDLE_COLLECT_MS after
 * any step, so an idle pool still lets go of every job's buffers, even a failed job's whose last step never
 * came.
 */
const COLLECT_NOW_BYTES = 32 * 2 ** 20;
const IDLE_COLLECT_MS = 50;
let referencedBytes = 0;
let idleTimer: ReturnType<typeof setTimeout> | undefined;

/** `idle`: the thread has had no step for IDLE_COLLECT_MS, and may take the longer, full collection. */
function collect(idle: boolean): void {
  clearTimeout(idleTimer);
  idleTimer = undefined;
  referencedBytes = 0;
  collectGarbage(idle);
}

/**
 * setImmediate runs after Comlink has posted this step's answer: the main thread never waits for a collection.
 * A job may end without its last step (it failed or was cancelled between steps) and the next step may come
 * within IDLE_COLLECT_MS every time, so past 4 × COLLECT_NOW_BYTES the worker collects whatever step this was.
 */
function scheduleCollection(jobOver: boolean): void {
  if ((jobOver && referencedBytes >= COLLECT_NOW_BYTES) || referencedBytes >= 4 * COLLECT_NOW_BYTES) setImmediate(collect, false);
  else idleTimer ??= setTimeout(collect, IDLE_COLLECT_MS, true).unref();
}

const api: WorkerApi = {
  ping: () => process.pid,
  async run(wire: WireStep, worker: number, workers: number): Promise<RunOutcome> {
    clearTimeout(idleTimer); // busy again: collect when next idle (or when enough is referenced)
    idleTimer = undefined;
    let step: StepSpec;
    try {
      step = fromWireStep(wire);
    } catch (error) {
      // Without a control block nothing can be counted as done: the answer alone fails the step.
      return { ok: false, error: toRecord(error, true) };
    }
    for (const view of Object.values(step.buffers)) referencedBytes += view.byteLength;
    const userKernel = step.kernel.kind === 'module';
    let inKernel = false;
    try {
      // An earlier user kernel may have changed a built-in after its step (from a timer or a microtask): this
      // step would run on a broken tile loop, so it is refused and the worker replaced.
      const before = userKernel ? changedBuiltin() : undefined;
      if (before !== undefined) {
        const error = new HpairError('WORKER_CRASHED', `an earlier user kernel changed ${before} in this worker after its job; the worker is replaced`);
        return { ok: false, error: toRecord(error, true), tainted: before };
      }
      const firstImport = !kernelImported(step.kernel);
      const kernel = await loadKernel(step.kernel, builtinKernels);
      // Checked again after a first import: it waits, and an earlier kernel's timer may run then, or the module's
      // own top-level code changed it. Awaiting a module imported before runs no task. From here to the step's
      // end nothing else runs.
      const loaded = userKernel && firstImport ? changedBuiltin() : undefined;
      if (loaded !== undefined) {
        const why = `${loaded} changed while the kernel module was imported (by its own top-level code, or an earlier kernel's timer)`;
        const error = new HpairError('KERNEL_FAILED', `${why}; the step did not run and the worker is replaced`);
        return { ok: false, error: toRecord(error, true), tainted: loaded };
      }
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
      scheduleCollection(step.last || isCancelled(step.control));
    }
  },
};

expose(api, nodeEndpoint(parentPort));
