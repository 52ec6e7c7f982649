// Kernels that attack the thread they run on, for test/isolation.test.ts. Each does its damage after its tile
// returned (from a timer or a microtask, past any check made when the step ends) or during it, and raises
// `fired[0]` on each thread once the damage is done, so the test knows the deferred part ran before it goes on.
import { parentPort } from 'node:worker_threads';
import { defineKernel } from 'hpair';

type Attack = (fired: Int32Array) => void;

/** Counts the threads whose deferred attack has run, with the real Atomics, captured before any attack. */
const done = (fired: Int32Array): void => {
  realAdd(fired, 0, 1);
  realNotify(fired, 0);
};
const realAdd = Atomics.add;
const realNotify = Atomics.notify;

const attacks: Record<string, Attack> = {
  /** Every ceil is 0: tile counts, panel sizes and loop bounds collapse. */
  'Math.ceil from setTimeout': (fired) =>
    setTimeout(() => {
      Math.ceil = () => 0;
      done(fired);
    }, 0),
  'Math.ceil from queueMicrotask': (fired) =>
    queueMicrotask(() => {
      Math.ceil = () => 0;
      done(fired);
    }),
  /** Tiles are claimed and counted with Atomics.add: claims repeat for ever, DONE never rises. */
  'Atomics.add from setTimeout': (fired) =>
    setTimeout(() => {
      Atomics.add = (() => 0) as unknown as typeof Atomics.add;
      done(fired);
    }, 0),
  /** Copies and views of every Float64Array go wrong. */
  'Float64Array.prototype from setTimeout': (fired) =>
    setTimeout(() => {
      Float64Array.prototype.set = function set() {
        return undefined;
      };
      Float64Array.prototype.subarray = function subarray(this: Float64Array) {
        return new Float64Array(this.length);
      };
      Float64Array.prototype.fill = function fill(this: Float64Array) {
        return this;
      };
      done(fired);
    }, 0),
  /** The thread no longer hears anything the pool sends it: the next step never starts. */
  "parentPort.removeAllListeners('message') from setTimeout": (fired) =>
    setTimeout(() => {
      parentPort?.removeAllListeners('message');
      done(fired);
    }, 0),
  /** Blinds a check that would use Reflect.ownKeys or a Map, then replaces Atomics.add. */
  'Reflect.ownKeys, Map.prototype.get, then Atomics.add': (fired) =>
    setTimeout(() => {
      Reflect.ownKeys = () => [];
      Map.prototype.get = () => undefined;
      Atomics.add = (() => 0) as unknown as typeof Atomics.add;
      done(fired);
    }, 0),
};

export const attackNames = Object.keys(attacks);

/** Runs one attack per worker thread (setup runs once per thread and job), after that thread's tiles. */
export const attacker = defineKernel<{ fired: Int32Array }, { attack: string }>({
  setup({ buffers: { fired }, params: { attack } }) {
    const run = attacks[attack];
    if (run === undefined) throw new Error(`no attack ${attack}`);
    run(fired);
  },
  tile() {
    // The damage is deferred: the tiles themselves are innocent.
  },
});

/** Replaces Atomics.add during its own tile: the tile loop of this very step can then never finish. */
export const breaksOwnLoop = defineKernel({
  tile() {
    Atomics.add = (() => 0) as unknown as typeof Atomics.add;
  },
});

/** Never returns from its first tile. */
export const spins = defineKernel({
  tile() {
    for (;;) {
      // A stuck kernel: only the watchdog can end this step.
    }
  },
});

/** Throws an Error whose message and stack getters throw. */
export const throwsUnreadable = defineKernel<Record<string, never>, { how: string }>({
  tile(_tile, { params: { how } }) {
    if (how === 'getters') {
      const error = new Error('x');
      Object.defineProperty(error, 'message', { get: () => { throw new Error('message getter'); } });
      Object.defineProperty(error, 'stack', { get: () => { throw new Error('stack getter'); } });
      Object.defineProperty(error, 'name', { get: () => { throw new Error('name getter'); } });
      throw error;
    }
    if (how === 'proxy') {
      throw new Proxy(new Error('proxied'), {
        get() {
          throw new Error('get trap');
        },
        getPrototypeOf() {
          throw new Error('getPrototypeOf trap');
        },
      });
    }
    if (how === 'symbol') throw Symbol('thrown');
    throw { toString: () => { throw new Error('toString'); } };
  },
});
