import { wrap, type Remote } from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { HpairError } from '../shared/errors.js';
import type { WorkerApi } from './protocol.js';

/**
 * One worker thread and its Comlink proxy. A Comlink call to a worker that dies never settles, so every
 * call the pool makes is raced against `died`, which rejects with WORKER_CRASHED on the thread's first
 * `error` or unexpected `exit`.
 */
export class WorkerHandle {
  readonly api: Remote<WorkerApi>;
  readonly died: Promise<never>;
  #worker: Worker;
  #alive = true;
  #terminating = false;

  constructor(url: URL, resourceLimits: ResourceLimits | undefined) {
    this.#worker = new Worker(url, resourceLimits === undefined ? {} : { resourceLimits });
    // Idle workers must not keep the process alive; the pool refs them while a job runs.
    this.#worker.unref();
    this.api = wrap<WorkerApi>(nodeEndpoint(this.#worker));
    this.died = new Promise<never>((_, reject) => {
      this.#worker.once('error', (error: Error) => {
        this.#alive = false;
        reject(new HpairError('WORKER_CRASHED', `a worker thread failed: ${error.message}`, { cause: error }));
      });
      this.#worker.once('exit', (code: number) => {
        this.#alive = false;
        const why = this.#terminating ? 'was terminated' : `exited with code ${code}`;
        reject(new HpairError('WORKER_CRASHED', `a worker thread ${why} while running a job`));
      });
    });
    // Nobody may be racing `died` when a thread dies between jobs; that is not an unhandled rejection.
    this.died.catch(() => undefined);
  }

  get alive(): boolean {
    return this.#alive;
  }

  ref(): void {
    this.#worker.ref();
  }

  unref(): void {
    this.#worker.unref();
  }

  /** Resolves once the thread has exited. */
  async terminate(): Promise<void> {
    this.#terminating = true;
    if (!this.#alive) return;
    await this.#worker.terminate();
  }
}
