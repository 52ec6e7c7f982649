import { wrap, type Remote } from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { Worker, type ResourceLimits, type WorkerOptions } from 'node:worker_threads';
import { HpairError } from '../shared/errors.js';
import type { WorkerApi } from '../shared/protocol.js';
import { configuredNativeAddon } from '../kernel/native/addon.js';
import { clearLeftoverGcFlag } from './obtain-gc.js';

/** What a pool's worker thread reads from workerData when it starts (workers/worker.ts). */
export interface WorkerStartData {
  readonly nice: number;
}

/**
 * One worker thread and its Comlink proxy. A Comlink call to a worker that dies never settles, so every
 * call goes through `call()`, which also rejects with WORKER_CRASHED on the thread's first `error` or
 * unexpected `exit`. Pending calls are kept in a set and dropped when they settle: racing each call
 * against one long-lived "died" promise instead would leave a reaction on it per call, for ever.
 */
export class WorkerHandle {
  readonly #api: Remote<WorkerApi>;
  readonly #worker: Worker;
  readonly #pending = new Set<(error: HpairError) => void>();
  readonly #onDeath: (error: HpairError) => void;
  #death: HpairError | undefined;
  #terminating = false;

  /**
   * @param nice nice steps the thread lowers itself by when it starts (PoolOptions.workerNice)
   * @param onDeath called once if the thread dies unasked (not by terminate() or retire()).
   */
  constructor(url: URL, resourceLimits: ResourceLimits | undefined, nice: number, onDeath: (error: HpairError) => void = () => undefined) {
    this.#onDeath = onDeath;
    const workerData: WorkerStartData = { nice };
    this.#worker = startWorker(url, resourceLimits === undefined ? { workerData } : { resourceLimits, workerData });
    // Idle workers must not keep the process alive; the runner refs them while a job runs.
    this.#worker.unref();
    this.#api = wrap<WorkerApi>(nodeEndpoint(this.#worker));
    this.#worker.once('error', (error: Error) => this.#die(new HpairError('WORKER_CRASHED', `a worker thread failed: ${error.message}`, { cause: error })));
    this.#worker.once('exit', (code: number) => {
      const why = this.#terminating ? 'was terminated' : `exited with code ${code}`;
      this.#die(new HpairError('WORKER_CRASHED', `a worker thread ${why}`));
    });
  }

  /** True once the thread has answered a call: it started and loaded its code. */
  get healthy(): boolean {
    return this.#answered;
  }
  #answered = false;

  get alive(): boolean {
    return this.#death === undefined && !this.#retired;
  }

  /** Takes the thread out of service (a user kernel changed its built-ins): it exits, and the pool replaces it. */
  retire(): void {
    this.#retired = true;
    this.terminate().catch(() => undefined);
  }
  #retired = false;

  /** Calls the worker; rejects with WORKER_CRASHED if the thread dies first (or is dead already). */
  call<T>(request: (api: Remote<WorkerApi>) => Promise<T>): Promise<T> {
    if (this.#death !== undefined) return Promise.reject(this.#death);
    return new Promise<T>((resolve, reject) => {
      const onDeath = (error: HpairError): void => reject(error);
      this.#pending.add(onDeath);
      request(this.#api).then(
        (value) => {
          this.#pending.delete(onDeath);
          this.#answered = true;
          resolve(value);
        },
        (error: unknown) => {
          this.#pending.delete(onDeath);
          reject(error);
        },
      );
    });
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
    if (this.#death !== undefined) return;
    await this.#worker.terminate();
  }

  #die(error: HpairError): void {
    if (this.#death !== undefined) return;
    this.#death = error;
    if (!this.#terminating) this.#onDeath(error);
    for (const reject of this.#pending) reject(error);
    this.#pending.clear();
  }
}

/**
 * A worker thread inherits the parent's Node options, and refuses some of them: `node --input-type=module -e …`
 * would fail every worker it starts. Those are left out; options passed explicitly are validated more strictly
 * (V8 flags are refused), so if Node still refuses the list, the worker starts with none: V8 flags are
 * process-wide and apply to it anyway.
 */
export function startWorker(file: URL | string, options: WorkerOptions): Worker {
  // The nativeAddon pool option reaches the thread as its own copy of the environment.
  const addon = configuredNativeAddon();
  if (addon !== undefined) options = { ...options, env: { ...process.env, HPAIR_NATIVE_ADDON: addon } };
  const worker = newWorker(file, options);
  worker.once('exit', clearLeftoverGcFlag); // it may have been terminated while it held --expose-gc set
  return worker;
}

function newWorker(file: URL | string, options: WorkerOptions): Worker {
  const refused = /^--input-type(=|$)/;
  if (!process.execArgv.some((arg) => refused.test(arg))) return new Worker(file, options);
  const execArgv = process.execArgv.filter((arg, i, all) => !refused.test(arg) && !(all[i - 1] === '--input-type'));
  try {
    return new Worker(file, { ...options, execArgv });
  } catch (error) {
    if ((error as { code?: string }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw error;
    return new Worker(file, { ...options, execArgv: [] });
  }
}
