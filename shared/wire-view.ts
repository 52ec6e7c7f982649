import { HpairError } from './errors.js';
import type { SharedView } from './kernel-contract.js';
import type { StepSpec, WireStep } from './protocol.js';

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
