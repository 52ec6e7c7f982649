// Inputs and options as a hostile caller writes them: buffers resized or detached after the call, number[]
// holding what is not a number, getters and Proxy traps that throw, fake signals, async callbacks that reject,
// resource limits that would take the process down. Every case ends in the right H (bit for bit) or an
// HpairError with a code, and no job ever returns values another job left in the pool's scratch.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPool, hermitianReference, type ComplexMatrixInput, type HpairError, type Pool, type RealVectorInput } from 'hpair';
import { assertBitIdentical, randomProblem, rejectionCode } from './helpers/support.js';

const test = suite('hostile-input');

// ES2024 buffers, which Node 20 has and this project's TypeScript lib does not name yet.
type ResizableBuffer = ArrayBuffer & { resize(byteLength: number): void };
type GrowableBuffer = SharedArrayBuffer & { grow(byteLength: number): void };
const Resizable = ArrayBuffer as unknown as new (byteLength: number, options: { maxByteLength: number }) => ResizableBuffer;
const Growable = SharedArrayBuffer as unknown as new (byteLength: number, options: { maxByteLength: number }) => GrowableBuffer;
let pool: Pool;
test.before(() => {
  pool = createPool({ workers: 2, inlineFlops: 0 });
});
test.after(() => pool.close());

/** Big enough that copying expp takes several turns of the event loop (the copy yields every few ms). */
const N = 1200;
const M = 700;
const other = randomProblem(N, M, 3, false);
/** Every row the same: H is exactly zero. A job that read another job's leftovers would not be. */
const flat = (() => {
  const data = new Float64Array(2 * N * M);
  for (let r = 0; r < N; r++) for (let c = 0; c < M; c++) data[2 * (r * M + c)] = 1 + c;
  return data;
})();
const distance = new Float64Array(M).fill(1.5);

/** Leaves the pool's copy scratch full of another problem's values, as a busy service's pool would be. */
async function dirtyTheScratch(): Promise<void> {
  await pool.hermitian(other.expp, other.distance);
}

function allZero(h: Float64Array): boolean {
  for (let k = 0; k < h.length; k++) if (h[k] !== 0) return false;
  return true;
}

async function message(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    const code = await rejectionCode(Promise.reject(error));
    return { code, message: (error as HpairError).message };
  }
  assert.unreachable('expected a rejection');
  return { code: '', message: '' };
}

test('a resizable ArrayBuffer shrunk right after the call → INVALID_ARGUMENT, never another job’s data', async () => {
  await dirtyTheScratch();
  const buffer = new Resizable(flat.byteLength, { maxByteLength: flat.byteLength });
  const data = new Float64Array(buffer); // tracks the buffer's length
  data.set(flat);
  const job = pool.hermitian({ rows: N, cols: M, data }, distance);
  buffer.resize(flat.byteLength / 2);
  const { code, message: text } = await message(job);
  assert.is(code, 'INVALID_ARGUMENT');
  assert.match(text, /expp\.data holds .* when the job was submitted/);
});

test('a resizable ArrayBuffer shrunk while the job copies it → INVALID_ARGUMENT or the call-time H, never leftovers', async () => {
  // The shrink lands at some turn of the copy: before, during or after it. Whichever, the job must not resolve
  // with anything but the H of the values as they were at the call (all zeros).
  for (const turns of [0, 1, 2, 4, 8, 16]) {
    await dirtyTheScratch();
    const buffer = new Resizable(flat.byteLength, { maxByteLength: flat.byteLength });
    new Float64Array(buffer).set(flat);
    const job = pool.hermitian({ rows: N, cols: M, data: new Float64Array(buffer) }, distance);
    let left = turns;
    await new Promise<void>((resolve) => {
      const step = (): void => {
        if (left-- > 0) setImmediate(step);
        else {
          buffer.resize(8 * M); // one row left
          resolve();
        }
      };
      step();
    });
    try {
      const h = await job;
      assert.ok(allZero(h.data), `shrunk after ${turns} turns: resolved with values that are not the call's H`);
    } catch (error) {
      assert.is((error as HpairError).code, 'INVALID_ARGUMENT', String(error));
    }
  }
});

test('a plain ArrayBuffer detached (transferred) after the call → INVALID_ARGUMENT; a detached distance does not matter', async () => {
  await dirtyTheScratch();
  const data = new Float64Array(flat);
  const job = pool.hermitian({ rows: N, cols: M, data }, distance);
  structuredClone(data.buffer, { transfer: [data.buffer] });
  assert.is(await rejectionCode(job), 'INVALID_ARGUMENT');

  // distance is copied at the call (O(M)): the job goes on with the values it was given.
  const small = randomProblem(40, 30, 9, false);
  const d = new Float64Array(small.distance);
  const result = pool.hermitian(small.expp, d);
  structuredClone(d.buffer, { transfer: [d.buffer] });
  assertBitIdentical((await result).data, (await pool.hermitian(small.expp, small.distance)).data, 'H with a distance detached after the call');
});

test('length-tracking views that grow after the call: the job reads the call-time length', async () => {
  const small = randomProblem(60, 33, 21);
  const expected = (await pool.hermitian(small.expp, small.distance)).data;
  const resizable = new Resizable(8 * 33, { maxByteLength: 8 * 100 });
  const distanceView = new Float64Array(resizable);
  distanceView.set(small.distance);
  const growableDistance = new Growable(8 * 33, { maxByteLength: 8 * 100 });
  new Float64Array(growableDistance).set(small.distance);
  for (const [name, d] of [['resizable', distanceView], ['growable', new Float64Array(growableDistance)]] as const) {
    // expp over a growable SharedArrayBuffer is read in place, at its call-time length.
    const growable = new Growable(small.expp.data.byteLength, { maxByteLength: 4 * small.expp.data.byteLength });
    const exppView = new Float64Array(growable);
    exppView.set(small.expp.data);
    const job = pool.hermitian({ rows: 60, cols: 33, data: exppView }, d);
    growable.grow(growable.byteLength + 8 * 66);
    if (name === 'resizable') resizable.resize(8 * 100);
    else growableDistance.grow(8 * 100);
    assertBitIdentical((await job).data, expected, `H with expp on a growable buffer, ${name} distance, grown after the call`);
  }
});

const notNumbers: Array<[string, unknown]> = [
  ['a BigInt', 1n],
  ["the string '1.5'", '1.5'],
  ['null', null],
  ['undefined', undefined],
  ['an object', {}],
  ['an object with valueOf', { valueOf: () => 1 }],
  ['an object whose valueOf throws', { valueOf: () => { throw new Error('valueOf'); } }],
  ['a boolean', true],
];

test('number[] values must be numbers: anything else → INVALID_ARGUMENT naming the index, in every form', async () => {
  const small = randomProblem(12, 9, 5, false);
  const values = Array.from(small.expp.data);
  const distanceValues = Array.from(small.distance);
  for (const [what, bad] of notNumbers) {
    const at = 37;
    const data = values.slice();
    (data as unknown[])[at] = bad;
    const forms: Array<[string, ComplexMatrixInput, RealVectorInput, RegExp]> = [
      ['interleaved', { rows: 12, cols: 9, data }, small.distance, /expp\.data\[37\]/],
      ['split', { rows: 12, cols: 9, re: data.filter((_, k) => k % 2 === 0), im: data.filter((_, k) => k % 2 === 1) }, small.distance, /expp\.im\[18\]/],
      ['strided (column-major)', { data, shape: [12, 9], strides: [1, 12] }, small.distance, /expp\.data\[\d+\]/],
      ['strided (dense, offset)', { data: [0, 0, ...data], shape: [12, 9], strides: [9, 1], offset: 1 }, small.distance, /expp\.data\[39\]/],
    ];
    const badDistance = distanceValues.slice();
    (badDistance as unknown[])[4] = bad;
    forms.push(['distance number[]', small.expp, badDistance, /distance\[4\]/]);
    forms.push(['distance strided', small.expp, { data: badDistance, shape: [9], strides: [1] }, /distance\.data\[4\]/]);
    for (const [form, expp, d, names] of forms) {
      const { code, message: text } = await message(pool.hermitian(expp, d));
      assert.is(code, 'INVALID_ARGUMENT', `${what}, ${form}`);
      assert.match(text, names, `${what}, ${form}: ${text}`);
    }
  }
  // A hole in an array is not a number either.
  const holey = values.slice();
  delete holey[10];
  assert.is(await rejectionCode(pool.hermitian({ rows: 12, cols: 9, data: holey }, small.distance)), 'INVALID_ARGUMENT');
});

test('throwing getters and Proxy traps anywhere in the inputs → an HpairError with a code, never a raw error', async () => {
  const small = randomProblem(12, 9, 5, false);
  const values = Array.from(small.expp.data);
  const getter = values.slice();
  Object.defineProperty(getter, 50, { get: () => { throw new TypeError('getter'); } });
  const trap = new Proxy(values.slice(), { get: (target, key) => { if (key === '60') throw new TypeError('get trap'); return Reflect.get(target, key); } });
  const lengthTrap = new Proxy(values.slice(), { get: (target, key) => { if (key === 'length') throw new TypeError('length'); return Reflect.get(target, key); } });
  const hostileInput = new Proxy({ rows: 12, cols: 9, data: values }, { has: () => { throw new TypeError('has trap'); } });
  const prototypeTrap = new Proxy(small.distance, { getPrototypeOf: () => { throw new TypeError('getPrototypeOf trap'); } });
  const cases: Array<[string, () => Promise<unknown>]> = [
    ['element getter in expp', () => pool.hermitian({ rows: 12, cols: 9, data: getter }, small.distance)],
    ['get trap in expp', () => pool.hermitian({ rows: 12, cols: 9, data: trap }, small.distance)],
    ['length trap in expp', () => pool.hermitian({ rows: 12, cols: 9, data: lengthTrap }, small.distance)],
    ['has trap on expp', () => pool.hermitian(hostileInput, small.distance)],
    ['getPrototypeOf trap on distance', () => pool.hermitian(small.expp, prototypeTrap)],
    ['rows getter', () => pool.hermitian(Object.defineProperty({ cols: 9, data: values }, 'rows', { get: () => { throw new Error('rows'); } }) as unknown as ComplexMatrixInput, small.distance)],
    ['options getter', () => pool.hermitian(small.expp, small.distance, Object.defineProperty({}, 'signal', { get: () => { throw new Error('signal'); } }))],
    ['a thrown value whose message getter throws', () => pool.hermitian(new Proxy({} as ComplexMatrixInput, { has: () => { throw Object.defineProperty(new Error(), 'message', { get: () => { throw new Error('again'); } }); } }), small.distance)],
  ];
  const distanceGetter = Array.from(small.distance);
  Object.defineProperty(distanceGetter, 3, { get: () => { throw new Error('distance getter'); } });
  cases.push(['element getter in distance (own)', () => pool.hermitian(small.expp, distanceGetter)]);
  for (const [what, run] of cases) assert.is(await rejectionCode(run()), 'INVALID_ARGUMENT', what);
  // And the pool is fine.
  const h = await pool.hermitian(small.expp, small.distance);
  const reference = hermitianReference(small.expp, small.distance);
  assert.is(h.data.length, reference.data.length);
  for (let k = 0; k < h.data.length; k++) if (Math.abs(h.data[k] - reference.data[k]) > 1e-12 * (1 + Math.abs(reference.data[k]))) assert.unreachable(`H value ${k} is wrong`);
});

test('signal: Object.create(AbortSignal.prototype) and other fakes → INVALID_ARGUMENT; a real signal with shadowing own properties still works', async () => {
  const small = randomProblem(20, 9, 6);
  for (const fake of [Object.create(AbortSignal.prototype), { aborted: false, addEventListener() {} }, Object.create(EventTarget.prototype)]) {
    assert.is(await rejectionCode(pool.hermitian(small.expp, small.distance, { signal: fake as AbortSignal })), 'INVALID_ARGUMENT');
    assert.is(await rejectionCode(pool.run({ module: new URL('./helpers/kernels.js', import.meta.url), export: 'coverage', space: { kind: 'range', n: 1 }, buffers: {} }, { signal: fake as AbortSignal })), 'INVALID_ARGUMENT');
  }
  const controller = new AbortController();
  Object.defineProperty(controller.signal, 'aborted', { get: () => { throw new Error('shadow'); } });
  Object.defineProperty(controller.signal, 'addEventListener', { value: () => { throw new Error('shadow'); } });
  const h = await pool.hermitian(small.expp, small.distance, { signal: controller.signal });
  assert.is(h.rows, 19);
  const aborted = new AbortController();
  aborted.abort(new Error('why'));
  Object.defineProperty(aborted.signal, 'aborted', { get: () => false });
  assert.is(await rejectionCode(pool.hermitian(small.expp, small.distance, { signal: aborted.signal })), 'ABORTED');
});

test('an async onProgress that rejects is reported like a throwing one (CALLBACK_FAILED), and the job goes on', async () => {
  const p = createPool({ workers: 2, inlineFlops: 0 });
  try {
    const errors: HpairError[] = [];
    p.on('error', (error) => errors.push(error));
    const { expp, distance: d } = randomProblem(300, 64, 8);
    let calls = 0;
    const h = await p.hermitian(expp, d, {
      onProgress: async () => {
        calls++;
        throw new Error('progress went wrong');
      },
    });
    assertBitIdentical(h.data, (await p.hermitian(expp, d)).data, 'H with a rejecting onProgress');
    // The rejection arrives a microtask later than the call.
    await new Promise((resolve) => setImmediate(resolve));
    assert.is(calls, 1, 'onProgress was called again after its promise rejected');
    assert.is(errors.length, 1);
    assert.is(errors[0].code, 'CALLBACK_FAILED');
    assert.match(errors[0].message, /onProgress returned a promise that rejected with Error: progress went wrong/);
    // A rejection with a value whose getters throw is reported too.
    const h2 = await p.hermitian(expp, d, { onProgress: () => Promise.reject(Object.defineProperty(new Error(), 'message', { get: () => { throw new Error('no'); } })) });
    assert.is(h2.rows, 299);
    await new Promise((resolve) => setImmediate(resolve));
    assert.is(errors.length, 2);
    assert.is(errors[1].code, 'CALLBACK_FAILED');
  } finally {
    await p.close();
  }
});

test('resourceLimits outside what V8 and the OS accept → INVALID_ARGUMENT before any thread starts; the edges run', async () => {
  for (const limits of [
    { codeRangeSizeMb: 1e12 },
    { codeRangeSizeMb: 4096 },
    { stackSizeMb: 1e6 },
    { stackSizeMb: 0.2 },
    { stackSizeMb: 2048 },
    { maxOldGenerationSizeMb: 1e300 },
    { maxOldGenerationSizeMb: 2 },
    { maxYoungGenerationSizeMb: Infinity },
    { maxYoungGenerationSizeMb: 0.5 },
    { codeRangeSizeMb: 0 },
    { stackSizeMb: Number.NaN },
    { stackSizeMb: '4' as unknown as number },
  ]) {
    assert.throws(() => createPool({ workers: 1, resourceLimits: limits }), (error: Error) => (error as HpairError).code === 'INVALID_ARGUMENT', JSON.stringify(limits));
  }
  const small = randomProblem(50, 20, 4);
  const expected = (await pool.hermitian(small.expp, small.distance)).data;
  for (const limits of [{ codeRangeSizeMb: 2048 }, { stackSizeMb: 1 }, { stackSizeMb: 1024 }, { maxOldGenerationSizeMb: 2 ** 32, maxYoungGenerationSizeMb: 1 }]) {
    const p = createPool({ workers: 1, inlineFlops: 0, resourceLimits: limits });
    try {
      assertBitIdentical((await p.hermitian(small.expp, small.distance)).data, expected, JSON.stringify(limits));
    } finally {
      await p.close();
    }
  }
});

test.run();
