// Mutated .npy and .npz files (fixed seed): each is either read consistently or refused with an
// HpairError — never a crash, a hang, a RangeError or an allocation larger than the file implies.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseComplexMatrixNpy, parseFloat64VectorNpy } from 'hpair';
import { listNpz, npzEntryBytes } from '../io/npz.js';
import { fixture, seeded } from './helpers/support.js';

const test = suite('npy-fuzz');
const seeds = [
  'expp_c16.npy',
  'expp_c8.npy',
  'expp_c16_fortran.npy',
  'expp_c16_bigendian.npy',
  'distance_f8.npy',
  'distance_f4.npy',
  'case_odd_expp.npy',
  'distance_int8.npy',
  'distance_uint16.npy',
  'distance_int64_bigendian.npy',
  'case_int_distance.npy',
];
const CASES = 4000;
const NPZ_SEEDS = ['case_odd.npz', 'case_odd_compressed.npz', 'case_odd_zip64.npz', 'case_odd_stream.npz', 'distance_only.npz'];
const NPZ_CASES = 3000;

function mutate(original: Uint8Array, next: () => number): Uint8Array {
  const pick = (n: number): number => Math.floor(((next() + 1) / 2) * n);
  let bytes = new Uint8Array(original); // a copy: Buffer#slice would alias the original
  const headerEnd = Math.min(bytes.length, 128);
  switch (pick(6)) {
    case 0: // flip bytes, mostly in the header
      for (let k = 1 + pick(4); k > 0; k--) bytes[pick(headerEnd)] = pick(256);
      break;
    case 1: // truncate anywhere
      bytes = bytes.subarray(0, pick(bytes.length));
      break;
    case 2: // append junk
      bytes = Uint8Array.from([...bytes, ...Array.from({ length: 1 + pick(40) }, () => pick(256))]);
      break;
    case 3: // rewrite a digit of the shape or a length field
      for (let i = 10; i < headerEnd; i++) if (bytes[i] >= 0x30 && bytes[i] <= 0x39 && pick(3) === 0) bytes[i] = 0x30 + pick(10);
      if (pick(2) === 0) bytes[8 + pick(2)] = pick(256);
      break;
    case 4: // insert characters into the header text
      bytes = Uint8Array.from([...bytes.subarray(0, 10 + pick(60)), ...[0x28, 0x2c, 0x27, 0x39, 0x7d, 0x20].slice(pick(6)), ...bytes.subarray(70)]);
      break;
    default: // huge shape entries
      bytes = new TextEncoder().encode(new TextDecoder('latin1').decode(bytes).replace(/\((\d+)/, `(${'9'.repeat(1 + pick(20))}`)).map((b) => b);
  }
  return bytes;
}

test(`${CASES} mutated files: parsed consistently or refused with BAD_NPY / TOO_LARGE`, () => {
  const next = seeded(424242);
  const originals = seeds.map((name) => [name, fixture(name)] as const);
  let parsed = 0;
  let refused = 0;
  const started = Date.now();
  for (let c = 0; c < CASES; c++) {
    const [name, original] = originals[c % originals.length];
    const bytes = mutate(original, next);
    try {
      if (name.startsWith('distance')) {
        const d = parseFloat64VectorNpy(bytes);
        assert.ok(d.length <= bytes.length, 'allocated more than the file implies'); // int8 data: a byte per value
      } else {
        const m = parseComplexMatrixNpy(bytes);
        assert.is(m.data.length, 2 * m.rows * m.cols);
        assert.ok(m.data.length * 4 <= bytes.length + 64, 'allocated more than the file implies');
      }
      parsed++;
    } catch (error) {
      if ((error as Error).name === 'Assertion') throw error;
      const code = (error as { code?: string }).code;
      if ((error as Error).name !== 'HpairError' || (code !== 'BAD_NPY' && code !== 'TOO_LARGE')) {
        throw new Error(`case ${c} (${name}): ${String(error)}`);
      }
      refused++;
    }
  }
  assert.ok(parsed > 100 && refused > 1000, `parsed ${parsed}, refused ${refused}: the mutations should exercise both paths`);
  assert.ok(Date.now() - started < 20_000);
});

/** Mutations that reach a ZIP's structures: its local headers at the start, its directory and end records at the end. */
function mutateZip(original: Uint8Array, next: () => number): Uint8Array {
  const pick = (n: number): number => Math.floor(((next() + 1) / 2) * n);
  let bytes = new Uint8Array(original);
  const tail = (span: number): number => Math.max(0, bytes.length - 1 - pick(span));
  const field = (): number => [0, 1, 0xff, 0xffff, 0xffffffff, 0x7fffffff, pick(bytes.length), pick(2 ** 32)][pick(8)];
  switch (pick(7)) {
    case 0: // flip bytes anywhere
      for (let k = 1 + pick(4); k > 0; k--) bytes[pick(bytes.length)] = pick(256);
      break;
    case 1: // flip bytes in the central directory and end records
      for (let k = 1 + pick(4); k > 0; k--) bytes[tail(300)] = pick(256);
      break;
    case 2: // overwrite a 16- or 32-bit field near the end with an extreme or random value
    case 3: {
      const view = new DataView(bytes.buffer);
      const at = Math.min(bytes.length - 4, tail(300));
      if (at >= 0) pick(2) === 0 ? view.setUint16(at, field() & 0xffff, true) : view.setUint32(at, field() >>> 0, true);
      break;
    }
    case 4: // overwrite a field of a local header
      if (bytes.length > 40) new DataView(bytes.buffer).setUint32(4 + 2 * pick(12), field() >>> 0, true);
      break;
    case 5: // truncate anywhere
      bytes = bytes.subarray(0, pick(bytes.length));
      break;
    default: // append junk
      bytes = Uint8Array.from([...bytes, ...Array.from({ length: 1 + pick(40) }, () => pick(256))]);
  }
  return bytes;
}

test(`${NPZ_CASES} mutated .npz archives: read consistently or refused with BAD_NPY / TOO_LARGE`, async () => {
  const next = seeded(737373);
  const originals = NPZ_SEEDS.map((name) => [name, fixture(name)] as const);
  let parsed = 0;
  let refused = 0;
  const started = Date.now();
  for (let c = 0; c < NPZ_CASES; c++) {
    const [name, original] = originals[c % originals.length];
    const bytes = mutateZip(original, next);
    try {
      for (const entry of listNpz(bytes)) {
        const npy = await npzEntryBytes(bytes, entry);
        assert.ok(npy.length <= 1032 * (bytes.length + 1), 'allocated more than deflate can produce from the file');
        if (entry.name.startsWith('expp')) parseComplexMatrixNpy(npy);
        else parseFloat64VectorNpy(npy);
      }
      parsed++;
    } catch (error) {
      if ((error as Error).name === 'Assertion') throw error;
      const code = (error as { code?: string }).code;
      if ((error as Error).name !== 'HpairError' || (code !== 'BAD_NPY' && code !== 'TOO_LARGE')) {
        throw new Error(`case ${c} (${name}): ${String(error)}`);
      }
      refused++;
    }
  }
  assert.ok(parsed > 50 && refused > 1000, `parsed ${parsed}, refused ${refused}: the mutations should exercise both paths`);
  assert.ok(Date.now() - started < 20_000);
});

test.run();
