// .npz archives: numpy's own (np.savez, np.savez_compressed, ZIP64, written to a pipe) read to the same
// arrays as the .npy files, and hostile archives refused with BAD_NPY before anything large is allocated.
import { randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseComplexMatrixNpy, parseFloat64VectorNpy } from 'hpair';
import { crc32ForTests, isZip, listNpz, npzEntryBytes } from '../io/npz.js';
import { assertBitIdentical, fixture, zipBytes } from './helpers/support.js';

const test = suite('npz');
const expp = parseComplexMatrixNpy(fixture('case_odd_expp.npy'));
const distance = parseFloat64VectorNpy(fixture('case_odd_distance.npy'));

async function read(bytes: Uint8Array, name: string): Promise<Uint8Array> {
  const entry = listNpz(bytes).find((candidate) => candidate.name === name);
  assert.ok(entry !== undefined, `no ${name}`);
  return npzEntryBytes(bytes, entry!);
}

for (const [file, method] of [
  ['case_odd.npz', 0],
  ['case_odd_compressed.npz', 8],
  ['case_odd_zip64.npz', 8],
  ['case_odd_stream.npz', 8],
] as const) {
  test(`${file} (numpy-made) holds expp and distance, bit for bit`, async () => {
    const bytes = fixture(file);
    assert.ok(isZip(bytes));
    const entries = listNpz(bytes);
    assert.equal(entries.map((entry) => entry.name), ['expp.npy', 'distance.npy']);
    assert.ok(entries.every((entry) => entry.method === method));
    const m = parseComplexMatrixNpy(await read(bytes, 'expp.npy'));
    assert.equal([m.rows, m.cols], [13, 9]);
    assertBitIdentical(m.data, expp.data, `${file} expp`);
    assertBitIdentical(parseFloat64VectorNpy(await read(bytes, 'distance.npy')), distance, `${file} distance`);
  });
}

test('the fixtures exercise what they claim: ZIP64 end records, data descriptors', () => {
  const has = (bytes: Uint8Array, signature: number): boolean => {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let at = 0; at + 4 <= bytes.length; at++) if (view.getUint32(at, true) === signature) return true;
    return false;
  };
  assert.ok(has(fixture('case_odd_zip64.npz'), 0x06064b50), 'ZIP64 end record');
  assert.ok(has(fixture('case_odd_zip64.npz'), 0x07064b50), 'ZIP64 locator');
  assert.not.ok(has(fixture('case_odd.npz'), 0x06064b50));
  assert.is(fixture('case_odd_stream.npz')[6] & 0x08, 8, 'data descriptor flag');
  assert.equal(listNpz(fixture('expp_only.npz')).map((entry) => entry.name), ['arr_0.npy']);
});

test('archives made by the test helper read back (stored, deflated, ZIP64, a comment)', async () => {
  const data = randomBytes(5000);
  for (const zip64 of [false, true]) {
    for (const method of [0, 8]) {
      const bytes = zipBytes([{ name: 'a.npy', data, method }, { name: 'b.npy', data: data.subarray(0, 7) }], { zip64, comment: 'made in a test' });
      assert.equal(Buffer.from(await read(bytes, 'a.npy')), data, `zip64 ${zip64}, method ${method}`);
      assert.is((await read(bytes, 'b.npy')).length, 7);
    }
  }
  assert.equal(listNpz(zipBytes([])), []);
});

async function refusal(bytes: Uint8Array): Promise<string> {
  try {
    for (const entry of listNpz(bytes)) await npzEntryBytes(bytes, entry);
  } catch (error) {
    assert.is((error as Error).name, 'HpairError', String(error));
    assert.is((error as { code?: string }).code, 'BAD_NPY', String(error));
    return (error as Error).message;
  }
  assert.unreachable('expected BAD_NPY');
  return '';
}

const patch = (bytes: Uint8Array, at: number, write: (view: DataView) => void): Uint8Array => {
  const copy = new Uint8Array(bytes);
  write(new DataView(copy.buffer, at));
  return copy;
};
const endOf = (bytes: Uint8Array): number => bytes.length - 22; // no comment in these

test('refused: truncated, padded, not an archive', async () => {
  const good = fixture('case_odd.npz');
  for (const cut of [good.length - 1, good.length - 22, good.length - 60, 100, 4]) {
    assert.match(await refusal(good.subarray(0, cut)), /^bad \.npz: /);
  }
  assert.match(await refusal(new Uint8Array([...good, 0, 0, 0])), /no end of central directory record/);
  assert.not.ok(isZip(fixture('case_odd_expp.npy')));
});

test('refused: a corrupt entry (CRC-32), a corrupt deflate stream, sizes that lie', async () => {
  const data = randomBytes(3000);
  const stored = zipBytes([{ name: 'a.npy', data }]);
  assert.match(await refusal(patch(stored, 30 + 5 + 100, (v) => v.setUint8(0, v.getUint8(0) ^ 1))), /fails its CRC-32 check/);
  const deflated = zipBytes([{ name: 'a.npy', data, method: 8 }]);
  assert.match(await refusal(patch(deflated, 30 + 5, (v) => v.setUint32(0, 0xffffffff))), /does not inflate: invalid/);
  assert.match(await refusal(zipBytes([{ name: 'a.npy', data, method: 8, uncompressedSize: 2999 }])), /inflates to more than the 2999 bytes it declares/);
  assert.match(await refusal(zipBytes([{ name: 'a.npy', data, method: 8, uncompressedSize: 3001 }])), /inflates to 3000 bytes but declares 3001/);
  assert.match(await refusal(zipBytes([{ name: 'a.npy', data, uncompressedSize: 2999 }])), /is stored but claims 2999 bytes in 3000/);
  assert.match(await refusal(zipBytes([{ name: 'a.npy', data, crc32: 1234 }])), /fails its CRC-32 check \(0x[0-9a-f]{8}, expected 0x000004d2\)/);
});

test('refused before allocating: a deflated entry claiming more than deflate can produce', async () => {
  // 4 GiB from a few bytes: refused by the 1032:1 bound, not by running out of memory.
  const claims = zipBytes([{ name: 'bomb.npy', data: new Uint8Array(10), method: 8, uncompressedSize: 0xfffffff0 }]);
  assert.match(await refusal(claims), /claims 4294967280 bytes from \d+ compressed bytes, more than deflate can produce/);
  const claims64 = zipBytes([{ name: 'bomb.npy', data: new Uint8Array(10), method: 8, uncompressedSize: 2 ** 40 }], { zip64: true });
  assert.match(await refusal(claims64), /more than deflate can produce/);
});

test('refused: encryption, other methods, mismatched or repeated names, overlapping entries', async () => {
  const data = new Uint8Array(64).fill(7);
  assert.match(await refusal(zipBytes([{ name: 'a.npy', data, flags: 1 }])), /'a\.npy' is encrypted/);
  assert.match(await refusal(zipBytes([{ name: 'a.npy', data, method: 12 }])), /compression method 12 \(stored and deflated are read\)/);
  assert.match(await refusal(zipBytes([{ name: 'a.npy', data, localName: 'b.npy' }])), /local header names another file/);
  assert.match(await refusal(zipBytes([{ name: 'a.npy', data }, { name: 'a.npy', data }])), /two entries are named 'a\.npy'/);
  // b's local record sits inside a's data: the same bytes would be read twice.
  const inner = zipBytes([{ name: 'b.npy', data }]).subarray(0, 30 + 5 + data.length);
  const overlapping = zipBytes([{ name: 'a.npy', data: inner }, { name: 'b.npy', data, localOffset: 30 + 5 }]);
  assert.match(await refusal(overlapping), /entries 'a\.npy' and 'b\.npy' overlap/);
});

test('refused: end records and central directory that point outside the archive or to other disks', async () => {
  const good = zipBytes([{ name: 'a.npy', data: new Uint8Array(100) }, { name: 'b.npy', data: new Uint8Array(9) }]);
  const end = endOf(good);
  assert.match(await refusal(patch(good, end + 4, (v) => v.setUint16(0, 1, true))), /multi-disk/);
  assert.match(await refusal(patch(good, end + 16, (v) => v.setUint32(0, 0x7ffffff0, true))), /runs past the end records/);
  assert.match(await refusal(patch(good, end + 12, (v) => v.setUint32(0, 10, true))), /2 entries cannot fit in a 10-byte central directory/);
  assert.match(await refusal(patch(good, end + 8, (v) => (v.setUint16(0, 0xffff, true), v.setUint16(2, 0xffff, true)))), /defers to a ZIP64 end record, but there is none/);
  assert.match(await refusal(patch(good, end + 10, (v) => v.setUint16(0, 3, true))), /multi-disk/);
  const directory = new DataView(good.buffer).getUint32(end + 16, true);
  assert.match(await refusal(patch(good, directory + 42, (v) => v.setUint32(0, 5000, true))), /has no local header at 5000/);
  assert.match(await refusal(patch(good, directory, (v) => v.setUint32(0, 0x12345678, true))), /central directory entry 0 is missing or malformed/);
  assert.match(await refusal(patch(good, directory + 30, (v) => v.setUint16(0, 500, true))), /runs past the directory/);

  const big = zipBytes([{ name: 'a.npy', data: new Uint8Array(100) }], { zip64: true });
  const locator = endOf(big) - 20;
  assert.match(await refusal(patch(big, locator + 8, (v) => v.setBigUint64(0, 2n ** 60n, true))), /the ZIP64 end record offset is 1152921504606846976, past any file we can read/);
  assert.match(await refusal(patch(big, locator + 8, (v) => v.setBigUint64(0, 3n, true))), /no ZIP64 end record at 3/);
  assert.match(await refusal(patch(big, locator + 16, (v) => v.setUint32(0, 2, true))), /multi-disk/);
  const end64 = Number(new DataView(big.buffer).getBigUint64(locator + 8, true));
  assert.match(await refusal(patch(big, end64 + 48, (v) => v.setBigUint64(0, 2n ** 52n, true))), /runs past the end records/);
  assert.match(await refusal(patch(big, end64 + 32, (v) => v.setBigUint64(0, 2n ** 40n, true))), /multi-disk/);
  const directory64 = Number(new DataView(big.buffer).getBigUint64(end64 + 48, true));
  assert.match(await refusal(patch(big, directory64 + 30, (v) => v.setUint16(0, 4, true))), /has an extra field that runs past its end/);
  assert.match(await refusal(patch(big, directory64 + 46 + 5 + 4 + 16, (v) => v.setBigUint64(0, 2n ** 62n, true))), /past any file we can read/);
});

test('the table CRC-32 (for Node < 20.15) agrees with zlib', () => {
  for (const length of [0, 1, 7, 4096, 100_003]) {
    const data = randomBytes(length);
    assert.is(crc32ForTests.table(data), crc32ForTests.zlib(data), `length ${length}`);
  }
});

test.run();
