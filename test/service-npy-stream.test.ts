// The streaming .npy pieces a service uses: NpyReceiver reads every fixture to the same values as the
// buffered readers whatever the chunking, refuses what they refuse before allocating, and
// writeComplexMatrixNpy sends exactly encodeComplexMatrixNpy's bytes with backpressure and a drain timeout.
import { PassThrough, Writable } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  NpyReceiver,
  complexMatrixNpyLength,
  createComplexMatrix,
  encodeComplexMatrixNpy,
  encodeFloat64VectorNpy,
  parseComplexMatrixNpy,
  parseFloat64VectorNpy,
  writeComplexMatrixNpy,
  type ComplexMatrix,
  type NpyTarget,
} from 'hpair';
import { assertBitIdentical, fixture, npyBytes, randomProblem, seeded } from './helpers/support.js';

const test = suite('service-npy-stream');

/** Feeds `bytes` in chunks of the given sizes (cycled); returns the receiver and the bytes it left over. */
function receive<T extends NpyTarget>(target: T, bytes: Uint8Array, sizes: number[]): { receiver: NpyReceiver<T>; rest: number } {
  const receiver = new NpyReceiver(target);
  let at = 0;
  let k = 0;
  while (at < bytes.length && !receiver.done) {
    const chunk = bytes.subarray(at, at + sizes[k++ % sizes.length]);
    const taken = receiver.push(chunk);
    assert.ok(taken <= chunk.length);
    at += taken;
    if (taken < chunk.length) break;
  }
  return { receiver, rest: bytes.length - at };
}

function code(run: () => unknown): { code: string; message: string } {
  try {
    run();
  } catch (error) {
    assert.is((error as Error).name, 'HpairError', String(error));
    return { code: (error as { code: string }).code, message: (error as Error).message };
  }
  assert.unreachable('expected an HpairError');
  return { code: '', message: '' };
}

const chunkings = [[1], [3, 7], [64], [1000], [1 << 20], [5, 1, 16, 2]];

for (const name of ['expp_c16.npy', 'expp_c8.npy', 'expp_c16_fortran.npy', 'expp_c16_bigendian.npy', 'expp_f8.npy', 'case_odd_expp.npy', 'case_n1_expp.npy']) {
  test(`${name}: any chunking reads to the buffered reader's values`, () => {
    const bytes = fixture(name);
    const expected = parseComplexMatrixNpy(bytes);
    for (const sizes of chunkings) {
      const { receiver, rest } = receive('complex-matrix', bytes, sizes);
      assert.is(rest, 0);
      assert.ok(receiver.done, `${name} ${sizes.join(',')}`);
      assert.is(receiver.fileBytes, bytes.length);
      const m = receiver.result();
      assert.equal([m.rows, m.cols], [expected.rows, expected.cols]);
      assert.instance(m.data.buffer, SharedArrayBuffer);
      assertBitIdentical(m.data, expected.data, `${name} in chunks of ${sizes.join(',')}`);
    }
  });
}

for (const name of ['distance_f8.npy', 'distance_f4.npy', 'distance_f8_bigendian.npy', 'case_wide_distance.npy']) {
  test(`${name}: any chunking reads to the buffered reader's values`, () => {
    const bytes = fixture(name);
    const expected = parseFloat64VectorNpy(bytes);
    for (const sizes of chunkings) {
      const { receiver, rest } = receive('float64-vector', bytes, sizes);
      assert.is(rest, 0);
      assertBitIdentical(receiver.result(), expected, `${name} in chunks of ${sizes.join(',')}`);
      assert.instance(receiver.result().buffer, SharedArrayBuffer);
    }
  });
}

test('two files back to back: push() stops at the end of the first', () => {
  const problem = randomProblem(7, 5, 3);
  const body = Buffer.concat([encodeComplexMatrixNpy(problem.expp), encodeFloat64VectorNpy(problem.distance)]);
  for (const sizes of chunkings) {
    const expp = new NpyReceiver('complex-matrix');
    const distance = new NpyReceiver('float64-vector');
    let k = 0;
    for (let at = 0; at < body.length; ) {
      let chunk = body.subarray(at, at + sizes[k++ % sizes.length]);
      at += chunk.length;
      if (!expp.done) chunk = chunk.subarray(expp.push(chunk));
      if (chunk.length > 0) assert.is(distance.push(chunk), chunk.length);
    }
    assertBitIdentical(expp.result().data, problem.expp.data, 'expp');
    assertBitIdentical(distance.result(), problem.distance, 'distance');
  }
});

test('a big little-endian complex128 file goes straight into the result, bit for bit', () => {
  const m = createComplexMatrix(512, 512);
  const next = seeded(5);
  for (let i = 0; i < m.data.length; i++) m.data[i] = next();
  const bytes = encodeComplexMatrixNpy(m);
  const { receiver } = receive('complex-matrix', bytes, [65536]);
  assertBitIdentical(receiver.result().data, m.data, '4 MiB');
});

test('refusals: the same BAD_NPY messages as the buffered readers, before any allocation', () => {
  assert.match(code(() => new NpyReceiver('complex-matrix').push(new TextEncoder().encode('not npy at all'))).message, /not a \.npy file/);
  // The magic is checked from the first byte: garbage fails at once, not after a header's worth.
  assert.is(code(() => new NpyReceiver('complex-matrix').push(new Uint8Array([0x50]))).code, 'BAD_NPY');
  assert.match(code(() => receive('complex-matrix', fixture('bad_3d.npy'), [7])).message, /expected a 2-D array/);
  assert.match(code(() => receive('complex-matrix', fixture('bad_int64.npy'), [7])).message, /unsupported dtype/);
  assert.match(code(() => receive('complex-matrix', fixture('bad_object.npy'), [7])).message, /unsupported dtype|structured or object/);
  const float32Matrix = npyBytes(`{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }`, new Uint8Array(16));
  assert.match(code(() => receive('complex-matrix', float32Matrix, [7])).message, /unsupported dtype '<f4' \(float32; accepted: complex128, complex64, float64\)/);
  assert.match(code(() => receive('float64-vector', fixture('expp_c16.npy'), [7])).message, /unsupported dtype '<c16'/);
  assert.match(code(() => receive('float64-vector', fixture('bad_1d_complex.npy'), [7])).message, /unsupported dtype '<c16' \(complex128; accepted: float64, float32, integers\)/);
  const version9 = fixture('expp_c16.npy').slice();
  version9[6] = 9;
  assert.match(code(() => receive('complex-matrix', version9, [3])).message, /format version 9/);
});

test('integer distances stream in as the buffered reader reads them (widened exactly, 64-bit beyond 2^53 refused)', () => {
  for (const name of ['distance_int64.npy', 'distance_uint8.npy']) {
    const bytes = fixture(name);
    assertBitIdentical(receive('float64-vector', bytes, [3, 5, 1]).receiver.result(), parseFloat64VectorNpy(bytes), name);
  }
  const tooBig = new Uint8Array(16);
  new DataView(tooBig.buffer).setBigInt64(8, 2n ** 60n, true);
  const file = npyBytes(`{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }`, tooBig);
  assert.match(code(() => receive('float64-vector', file, [7])).message, /element 1 of the int64 array is 1152921504606846976/);
});

test('a header longer than maxHeaderBytes is refused from its length field, before its bytes arrive', () => {
  const file = npyBytes(`{'descr': '<c16', 'fortran_order': False, 'shape': (1, 1), }${' '.repeat(5000)}`, new Uint8Array(16));
  const receiver = new NpyReceiver('complex-matrix', { maxHeaderBytes: 1024 });
  assert.match(code(() => receiver.push(file.subarray(0, 10))).message, /header claims \d+ bytes \(at most 1024\)/);
  // After a failure every call fails the same way.
  assert.match(code(() => receiver.push(file.subarray(10))).message, /at most 1024/);
  assert.match(code(() => receiver.result()).message, /at most 1024/);
  assert.ok(new NpyReceiver('complex-matrix').push(file) === file.length);
  // The default is 16 KiB: parsing a header costs the event loop about 130 ns a byte.
  const long = npyBytes(`{'descr': '<c16', 'fortran_order': False, 'shape': (1, 1), ${' '.repeat(20000)}}`, new Uint8Array(16));
  assert.match(code(() => new NpyReceiver('complex-matrix').push(long.subarray(0, 10))).message, /at most 16384/);
});

test('beforeAllocate sees the declared size and can refuse it; a huge shape costs nothing before that', () => {
  const huge = npyBytes(`{'descr': '<c16', 'fortran_order': False, 'shape': (8000000000000, 3), }`, new Uint8Array(0));
  const seen: number[] = [];
  const refusing = new NpyReceiver('complex-matrix', {
    beforeAllocate: (header, fileBytes) => {
      seen.push(header.shape[0], fileBytes);
      throw new Error('too big for us');
    },
  });
  assert.throws(() => refusing.push(huge), /too big for us/);
  assert.equal(seen, [8e12, huge.length + 8e12 * 3 * 16]);
  // Without a hook, the allocation itself refuses it.
  assert.is(code(() => new NpyReceiver('complex-matrix').push(huge)).code, 'TOO_LARGE');
  const absurd = npyBytes(`{'descr': '<c16', 'fortran_order': False, 'shape': (999999999999999, 999999999999999), }`, new Uint8Array(0));
  assert.is(code(() => new NpyReceiver('complex-matrix').push(absurd)).code, 'TOO_LARGE');
});

test('a truncated file: result() says how much arrived', () => {
  const bytes = fixture('expp_c16.npy');
  const receiver = new NpyReceiver('complex-matrix');
  receiver.push(bytes.subarray(0, bytes.length - 5));
  assert.not.ok(receiver.done);
  assert.match(code(() => receiver.result()).message, new RegExp(`truncated \\.npy file: ${bytes.length - 5} bytes arrived but it declares ${bytes.length}`));
  const early = new NpyReceiver('float64-vector');
  early.push(bytes.subarray(0, 20));
  assert.match(code(() => early.result()).message, /20 bytes arrived but its header is incomplete/);
});

/** A writable that accepts `highWaterMark` bytes, then drains only when `pump()` is called. */
function slowSink(highWaterMark: number): { sink: Writable; received: Buffer[]; pump: () => void } {
  const received: Buffer[] = [];
  const pending: (() => void)[] = [];
  const sink = new Writable({
    highWaterMark,
    write(chunk: Buffer, _encoding, callback) {
      received.push(Buffer.from(chunk)); // copy: the writer's chunks are views of H
      pending.push(callback);
    },
  });
  return { sink, received, pump: () => pending.splice(0).forEach((callback) => callback()) };
}

function bigMatrix(rows: number): ComplexMatrix {
  const m = createComplexMatrix(rows, rows);
  const next = seeded(rows);
  for (let i = 0; i < m.data.length; i++) m.data[i] = next();
  return m;
}

test('writeComplexMatrixNpy: the same bytes as encodeComplexMatrixNpy, in views, waiting for drain', async () => {
  const m = bigMatrix(200); // 640 000 bytes of data
  const { sink, received, pump } = slowSink(65536);
  let writes = 0;
  const write = sink.write.bind(sink);
  sink.write = ((chunk: Uint8Array) => {
    writes++;
    return write(chunk);
  }) as typeof sink.write;
  const done = writeComplexMatrixNpy(sink, m, { chunkBytes: 65536 });
  let finished = false;
  void done.then(() => (finished = true));
  for (let turns = 0; !finished && turns < 1000; turns++) {
    // The writer may never hand the sink more than a chunk beyond its high-water mark.
    assert.ok(sink.writableLength <= 2 * 65536, `${sink.writableLength} bytes queued`);
    pump();
    await new Promise((resolve) => setImmediate(resolve));
  }
  await done;
  const expected = encodeComplexMatrixNpy(m);
  assert.ok(Buffer.concat(received).equals(Buffer.from(expected)), 'bytes differ');
  assert.is(complexMatrixNpyLength(m), expected.length);
  assert.is(writes, 1 + Math.ceil(m.data.byteLength / 65536));
  // A 0×0 H is a header only.
  const empty = new PassThrough();
  await writeComplexMatrixNpy(empty, createComplexMatrix(0, 0));
  assert.is(complexMatrixNpyLength(createComplexMatrix(0, 0)), encodeComplexMatrixNpy(createComplexMatrix(0, 0)).length);
});

test('writeComplexMatrixNpy: TIMEOUT when the stream stays full, IO_ERROR when it closes, ABORTED on the signal', async () => {
  const m = bigMatrix(100);
  const stuck = slowSink(1024);
  const started = performance.now();
  const timeout = await writeComplexMatrixNpy(stuck.sink, m, { drainTimeoutMs: 100, chunkBytes: 8192 }).catch((error: { code: string }) => error.code);
  assert.is(timeout, 'TIMEOUT');
  assert.ok(performance.now() - started < 1000);
  assert.is(stuck.sink.listenerCount('drain'), 0, 'a drain listener was left behind');

  const closing = slowSink(1024);
  const closed = writeComplexMatrixNpy(closing.sink, m, { chunkBytes: 8192 }).catch((error: { code: string }) => error.code);
  setTimeout(() => closing.sink.destroy(), 20);
  assert.is(await closed, 'IO_ERROR');

  const aborting = slowSink(1024);
  const controller = new AbortController();
  const aborted = writeComplexMatrixNpy(aborting.sink, m, { signal: controller.signal, chunkBytes: 8192 }).catch((error: { code: string }) => error.code);
  setTimeout(() => controller.abort(), 20);
  assert.is(await aborted, 'ABORTED');
  assert.is(await writeComplexMatrixNpy(new PassThrough(), m, { chunkBytes: 0 }).catch((error: { code: string }) => error.code), 'INVALID_ARGUMENT');
});

test.run();
