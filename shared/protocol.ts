import { HpairError } from './errors.js';
import type { SharedView } from './kernel-contract.js';
import type { ControlBlock } from './control-block.js';
import type { IndexSpace } from './index-space.js';

/**
 * Which kernel a step runs: one of the built-ins the runner and its workers were given by name (hpair's own are
 * kernel/builtins.ts), or an export of a user's ES module.
 */
export type KernelRef =
  | { readonly kind: 'builtin'; readonly name: string }
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

/** The SharedView constructors, by the name a view crosses the thread boundary under. */
const VIEW_TYPES = {
  Float64Array,
  Float32Array,
  Int32Array,
  Uint32Array,
  Int16Array,
  Uint16Array,
  Int8Array,
  Uint8Array,
  BigInt64Array,
  BigUint64Array,
} as const;

export type ViewType = keyof typeof VIEW_TYPES;

/**
 * A typed array as it crosses to another thread. Structured clone (postMessage, and so Comlink) writes a view's
 * byteOffset and length as 32-bit numbers (Node 20, even over a SharedArrayBuffer): a view of 4 GiB or more, or
 * one that starts 4 GiB or more into its buffer, arrives cut short or shifted, and a kernel writing through it
 * silently misses entries or reads the wrong ones. The buffer itself crosses whole, and plain numbers carry
 * 2^53, so the view is sent as its parts and rebuilt on the other side.
 */
export interface WireView {
  readonly buffer: SharedArrayBuffer | ArrayBuffer;
  readonly byteOffset: number;
  readonly length: number;
  readonly type: ViewType;
}

/** The constructor name of a SharedView, or undefined for anything else. */
export function viewType(value: unknown): ViewType | undefined {
  if (!ArrayBuffer.isView(value)) return undefined;
  for (const name of Object.keys(VIEW_TYPES) as ViewType[]) if (value instanceof VIEW_TYPES[name]) return name;
  return undefined;
}

export function toWireView(view: SharedView): WireView {
  const type = viewType(view);
  if (type === undefined) throw new HpairError('INVALID_ARGUMENT', `a ${Object.prototype.toString.call(view)} cannot be handed to a worker; use one of ${Object.keys(VIEW_TYPES).join(', ')}`);
  return { buffer: view.buffer, byteOffset: view.byteOffset, length: view.length, type };
}

/** The view again, over the same memory; a record that does not describe one within its buffer is refused. */
export function fromWireView(wire: WireView): SharedView {
  const View = VIEW_TYPES[wire.type];
  const bytes = wire.buffer?.byteLength;
  const ok =
    View !== undefined &&
    typeof bytes === 'number' &&
    Number.isSafeInteger(wire.byteOffset) &&
    Number.isSafeInteger(wire.length) &&
    wire.byteOffset >= 0 &&
    wire.length >= 0 &&
    wire.byteOffset % View.BYTES_PER_ELEMENT === 0 &&
    wire.byteOffset + wire.length * View.BYTES_PER_ELEMENT <= bytes;
  if (!ok) throw new HpairError('INVALID_ARGUMENT', `a view handed to a worker does not fit its buffer (${String(wire.type)}, ${wire.length} values at byte ${wire.byteOffset} of ${bytes})`);
  // The constructors' types take an ArrayBuffer; each accepts a SharedArrayBuffer alike.
  const view = new View(wire.buffer as ArrayBuffer, wire.byteOffset, wire.length);
  // The same check as on the way out: the rebuilt view is exactly the one that was sent.
  if (view.length !== wire.length || view.byteOffset !== wire.byteOffset) throw new HpairError('INVALID_ARGUMENT', 'a view handed to a worker was rebuilt with another offset or length');
  return view;
}

export function toWireViews(views: Readonly<Record<string, SharedView>>): Record<string, WireView> {
  const wire: Record<string, WireView> = {};
  for (const [name, view] of Object.entries(views)) wire[name] = toWireView(view);
  return wire;
}

export function fromWireViews(wire: Readonly<Record<string, WireView>>): Record<string, SharedView> {
  const views: Record<string, SharedView> = {};
  for (const [name, record] of Object.entries(wire)) views[name] = fromWireView(record);
  return views;
}

/** A step as it is posted to a worker: every view in it as a WireView. */
export function toWireStep(step: StepSpec): WireStep {
  const params: Record<string, unknown> = {};
  const paramViews: Record<string, WireView> = {};
  for (const [name, value] of Object.entries(step.params)) {
    if (ArrayBuffer.isView(value)) paramViews[name] = toWireView(value as SharedView);
    else params[name] = value;
  }
  return { ...step, buffers: toWireViews(step.buffers), params, paramViews, control: toWireView(step.control) };
}

/** The step again, in the worker, with every view rebuilt whole. */
export function fromWireStep(wire: WireStep): StepSpec {
  const { paramViews, ...rest } = wire;
  const control = fromWireView(wire.control);
  if (!(control instanceof Int32Array)) throw new HpairError('INVALID_ARGUMENT', 'a step reached a worker without its control block');
  return { ...rest, buffers: fromWireViews(wire.buffers), params: { ...wire.params, ...fromWireViews(paramViews) }, control };
}
