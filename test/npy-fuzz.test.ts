// Mutated .npy files (fixed seed): each is either read consistently or refused with an HpairError —
// never a crash, a hang, a RangeError or an allocation larger than the file.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseComplexMatrixNpy, parseFloat64VectorNpy } from 'hpair';
import { fixture, seeded } from './helpers/support.js';

const test = suite('npy-fuzz');
const seeds = ['expp_c16.npy', 'expp_c8.npy', 'expp_c16_fortran.npy', 'expp_c16_bigendian.npy', 'distance_f8.npy', 'distance_f4.npy', 'case_odd_expp.npy'];
const CASES = 4000;

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
        assert.ok(d.length * 4 <= bytes.length, 'allocated more than the file implies');
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

test.run();
