import type { SharedView } from './kernel-contract.js';
import type { ControlBlock } from './control-block.js';
import type { IndexSpace } from './index-space.js';
import type { WireView } from './wire-view.js';

/** Names of the kernels compiled into hpair itself (the table is kernel/builtins.ts). */
export type BuiltinKernelName = 'hermitian/check' | 'hermitian/pack' | 'hermitian/pairs-js' | 'hermitian/pairs-wasm' | 'hermitian/pairs-native';

/** Which kernel a step runs: one of hpair's own, or an export of a user's ES module. */
export type KernelRef =
  | { readonly kind: 'builtin'; readonly name: BuiltinKernelName }
  | { readonly kind: 'module'; readonly url: string; readonly exportName: string };

export type Schedule = 'strided' | 'dynamic';

/**
 * One step of a job, as the runner lays it out and a worker runs it. It crosses as a WireStep: structured
 * clone shares (never copies) the SharedArrayBuffers behind `buffers` and `control`, so the message is a few
 * hundred bytes whatever the problem size.
 */
export interface StepSpec {
  readonly kernel: KernelRef;
  readonly space: IndexSpace;
  readonly schedule: Schedule;
  readonly buffers: Readonly<Record<string, SharedView>>;
  readonly params: Readonly<Record<string, unknown>>;
  readonly control: ControlBlock;
  /**
   * This is the job's last step: once its tiles are done the worker holds nothing the job needs, and
   * schedules the collection that lets go of the job's buffers (see workers/worker.ts). A separate
   * "job over" message cost every job another round trip per worker, and kept both threads busy just
   * as the next job's first step arrived.
   */
  readonly last: boolean;
}

/**
 * A StepSpec as it is posted: every view (the buffers, the control block, any view among the params) travels
 * as a WireView, since structured clone cuts a view's offset and length to 32 bits (see shared/wire-view.ts).
 */
export interface WireStep extends Omit<StepSpec, 'buffers' | 'control'> {
  readonly buffers: Readonly<Record<string, WireView>>;
  /** The params that are views, by name; the rest of `params` crosses as it is. */
  readonly paramViews: Readonly<Record<string, WireView>>;
  readonly control: WireView;
}

/** The worker's side of the thread boundary, exposed with Comlink. */
export interface WorkerApi {
  /** Resolves once the worker's module graph is loaded; used to warm a pool. */
  ping(): number;
  /**
   * Runs this worker's share of the step's tiles. Completion is signalled through the control block
   * (DONE + Atomics.notify); the answer only carries a kernel's error back. After a job's last step (or
   * once the worker has been idle a while after any step) the worker collects its garbage: an idle worker
   * rarely collects on its own, and until it does, its handles keep each job's SharedArrayBuffers alive.
   */
  run(step: WireStep, worker: number, workers: number): Promise<RunOutcome>;
}

/** An error as it crosses the thread boundary (structured clone keeps neither classes nor `code`). */
export interface ErrorRecord {
  readonly name: string;
  readonly message: string;
  readonly stack: string | undefined;
  /** Set when hpair's own worker code raised an HpairError (e.g. a kernel module that cannot be imported). */
  readonly code: string | undefined;
}

/**
 * A step's answer. `tainted` names a built-in a user kernel replaced in this worker (see
 * workers/realm-integrity.ts): the pool then replaces the worker before the next job.
 */
export type RunOutcome = ({ readonly ok: true } | { readonly ok: false; readonly error: ErrorRecord }) & { readonly tainted?: string };
