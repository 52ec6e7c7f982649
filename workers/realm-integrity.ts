/**
 * A user kernel runs in the same realm as hpair's own kernels, so it could replace a built-in hpair relies
 * on (`Math.ceil = () => 0`) and make later H jobs on that thread silently wrong. After every user-kernel
 * step the worker compares the built-ins below with what they were when it started; a worker whose
 * built-ins changed reports itself tainted and the pool replaces it before the next job.
 */
const TypedArray = Object.getPrototypeOf(Float64Array) as object;
/** The global names hpair's code uses: they must keep pointing at the same objects. */
const GLOBALS = [
  'Object', 'Function', 'Array', 'Math', 'Number', 'BigInt', 'Atomics', 'JSON', 'Reflect', 'Promise', 'Error', 'Symbol',
  'SharedArrayBuffer', 'ArrayBuffer', 'Float64Array', 'Float32Array', 'Int32Array', 'Uint32Array', 'BigInt64Array',
  'Uint8Array', 'Map', 'Set', 'WeakMap', 'WebAssembly', 'setTimeout', 'setImmediate', 'queueMicrotask', 'performance',
] as const;
const globals = Object.fromEntries(GLOBALS.map((name) => [name, (globalThis as Record<string, unknown>)[name]]));

const WATCHED: ReadonlyArray<readonly [string, object]> = [
  ['Object', Object],
  ['Object.prototype', Object.prototype],
  ['Function.prototype', Function.prototype],
  ['Array', Array],
  ['Array.prototype', Array.prototype],
  ['Math', Math],
  ['Number', Number],
  ['Number.prototype', Number.prototype],
  ['BigInt', BigInt],
  ['BigInt.prototype', BigInt.prototype],
  ['Atomics', Atomics],
  ['JSON', JSON],
  ['Reflect', Reflect],
  ['Promise', Promise],
  ['Promise.prototype', Promise.prototype],
  ['Error', Error],
  ['Error.prototype', Error.prototype],
  ['SharedArrayBuffer.prototype', SharedArrayBuffer.prototype],
  ['ArrayBuffer.prototype', ArrayBuffer.prototype],
  ['TypedArray', TypedArray],
  ['TypedArray.prototype', (TypedArray as { prototype: object }).prototype],
  ['Float64Array', Float64Array],
  ['Float64Array.prototype', Float64Array.prototype],
  ['Int32Array.prototype', Int32Array.prototype],
  ['BigInt64Array.prototype', BigInt64Array.prototype],
  ['Uint8Array.prototype', Uint8Array.prototype],
  ['Map.prototype', Map.prototype],
  ['Set.prototype', Set.prototype],
  ['WebAssembly', WebAssembly],
  ['WebAssembly.Instance.prototype', WebAssembly.Instance.prototype],
  ['WebAssembly.Memory.prototype', WebAssembly.Memory.prototype],
];

type Snapshot = Map<PropertyKey, readonly unknown[]>;

/** Every own property as the values that define it: a value, or a getter and setter. */
function snapshotOf(target: object): Snapshot {
  const snapshot: Snapshot = new Map();
  for (const key of Reflect.ownKeys(target)) {
    const descriptor = Reflect.getOwnPropertyDescriptor(target, key);
    if (descriptor !== undefined) snapshot.set(key, [descriptor.value, descriptor.get, descriptor.set]);
  }
  return snapshot;
}

const reference = WATCHED.map(([name, target]) => [name, target, snapshotOf(target)] as const);

/** The first built-in that differs from the worker's start ("Math.ceil"), or undefined if none does. */
export function changedBuiltin(): string | undefined {
  for (const name of GLOBALS) if ((globalThis as Record<string, unknown>)[name] !== globals[name]) return name;
  for (const [name, target, before] of reference) {
    const now = snapshotOf(target);
    for (const [key, parts] of now) {
      const was = before.get(key);
      if (was === undefined) return `${name}.${String(key)} (added)`;
      // Plain data (Error.stackTraceLimit) may change harmlessly; functions, getters and objects may not.
      if (parts.some((part, i) => !Object.is(part, was[i]) && !(isPrimitive(part) && isPrimitive(was[i])))) return `${name}.${String(key)}`;
    }
    for (const key of before.keys()) if (!now.has(key)) return `${name}.${String(key)} (deleted)`;
  }
  return undefined;
}

function isPrimitive(value: unknown): boolean {
  return value === null || (typeof value !== 'object' && typeof value !== 'function');
}
