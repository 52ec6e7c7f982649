/**
 * A user kernel runs in a realm of its own threads (H jobs never run on a thread that ran user code: see
 * workers/job-runner.ts), but the user threads run hpair's tile loop too, so a kernel that replaces a built-in
 * (`Atomics.add = …`, `Math.ceil = () => 0`) could make a later user job on that thread skip tiles or hang.
 * Before and after every user-kernel step the worker compares the built-ins below with what they were when it
 * started; a worker whose built-ins changed refuses the step (if the change came before it) and reports itself
 * tainted, and the pool replaces it. A change made from a timer or microtask after a step is seen at the start
 * of the next one, because a step runs synchronously from that check to its end.
 * The comparison uses only functions captured when this module loaded, and null-prototype records, so a
 * kernel cannot blind it by replacing Reflect.ownKeys, Map.prototype.get or an array iterator.
 */
const ownKeys = Reflect.ownKeys;
const describeKey = Reflect.getOwnPropertyDescriptor;
const same = Object.is;
const apply = Reflect.apply;
const stringOf = String;
const globalObject = globalThis as Record<string, unknown>;
const TypedArray = Object.getPrototypeOf(Float64Array) as object;
/** The global names hpair's code uses: they must keep pointing at the same objects. */
const GLOBALS = [
  'Object', 'Function', 'Array', 'Math', 'Number', 'BigInt', 'Atomics', 'JSON', 'Reflect', 'Promise', 'Error', 'Symbol',
  'SharedArrayBuffer', 'ArrayBuffer', 'Float64Array', 'Float32Array', 'Int32Array', 'Uint32Array', 'BigInt64Array',
  'Uint8Array', 'Map', 'Set', 'WeakMap', 'WebAssembly', 'setTimeout', 'setImmediate', 'queueMicrotask', 'performance',
] as const;
const globals = GLOBALS.map((name) => globalObject[name]);

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

/** Own property keys, and for each the three values that define it: value, getter, setter (a flat list). */
interface Snapshot {
  readonly keys: PropertyKey[];
  readonly parts: unknown[];
}

function snapshotOf(target: object): Snapshot {
  const keys = ownKeys(target);
  const parts: unknown[] = [];
  for (let k = 0; k < keys.length; k++) {
    const descriptor = describeKey(target, keys[k]);
    parts[3 * k] = descriptor?.value;
    parts[3 * k + 1] = descriptor?.get;
    parts[3 * k + 2] = descriptor?.set;
  }
  return { keys, parts };
}

const reference: ReadonlyArray<readonly [string, object, Snapshot]> = WATCHED.map(([name, target]) => [name, target, snapshotOf(target)] as const);

/** The first built-in that differs from the worker's start ("Math.ceil"), or undefined if none does. */
export function changedBuiltin(): string | undefined {
  for (let g = 0; g < GLOBALS.length; g++) if (globalObject[GLOBALS[g]] !== globals[g]) return GLOBALS[g];
  for (let w = 0; w < reference.length; w++) {
    const [name, target, before] = reference[w];
    const now = snapshotOf(target);
    // Same keys in the same order (V8 keeps own-key order stable), each defined by the same values.
    if (now.keys.length !== before.keys.length) return `${name} (a property was added or deleted)`;
    for (let k = 0; k < now.keys.length; k++) {
      if (now.keys[k] !== before.keys[k]) return `${name}.${keyName(now.keys[k])}`;
      for (let part = 3 * k; part < 3 * k + 3; part++) {
        const is = now.parts[part];
        const was = before.parts[part];
        // Plain data (Error.stackTraceLimit) may change harmlessly; functions, getters and objects may not.
        if (!same(is, was) && !(isPrimitive(is) && isPrimitive(was))) return `${name}.${keyName(now.keys[k])}`;
      }
    }
  }
  return undefined;
}

function keyName(key: PropertyKey): string {
  return typeof key === 'symbol' ? apply(stringOf, undefined, [key]) : (key as string);
}

function isPrimitive(value: unknown): boolean {
  return value === null || (typeof value !== 'object' && typeof value !== 'function');
}
