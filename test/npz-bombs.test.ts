// .npz bombs, as a hostile user crafts them: a couple of MiB of deflated zeros that inflate to gigabytes,
// behind headers that already show the array cannot be used (a shape that does not match the other input, a
// dtype hpair does not read), or that lie (an entry declaring more than its header promises, or a deflate
// stream that runs on past the declared size). Each must fail with its typed error, in one line, while the CLI's
// peak memory stays near what it takes for a tiny valid input: measured as the child's own peak RSS (VmHWM).
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeFloat64VectorNpy } from 'hpair';
import { listNpz, npzEntryHeader } from '../io/npz.js';
import { cliPath, fixturesDir, npyBytes } from './helpers/support.js';
import { workDir } from './helpers/out-of-core.js';

const test = suite('npz-bombs');
const dir = workDir('npz-bombs');
test.after(() => rmSync(dir, { recursive: true, force: true }));

const MiB = 2 ** 20;
const CHUNK = 64 * MiB;
/** 64 MiB of zeros as raw deflate blocks ending on a full flush: copies can follow one another. */
let zeros: Buffer | undefined;
const zerosChunk = (): Buffer => (zeros ??= deflateRawSync(Buffer.alloc(CHUNK), { finishFlush: constants.Z_FULL_FLUSH }));

/** A raw deflate stream of `head` followed by `chunks` × 64 MiB of zeros. */
function deflatedZeros(head: Uint8Array, chunks: number): Buffer {
  const parts: Uint8Array[] = [deflateRawSync(head, { finishFlush: constants.Z_FULL_FLUSH })];
  for (let k = 0; k < chunks; k++) parts.push(zerosChunk());
  parts.push(deflateRawSync(Buffer.alloc(0))); // the final (empty) block
  return Buffer.concat(parts);
}

/** The header bytes of a .npy with this dict (no data). */
const npyHeader = (dict: string): Uint8Array => npyBytes(dict, new Uint8Array(0));

/** A one-entry ZIP archive (deflated) with the given compressed bytes and declared size and CRC. */
function zipOf(name: string, compressed: Uint8Array, declared: number, crc = 0): Buffer {
  const nameBytes = Buffer.from(name, 'latin1');
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt16LE(8, 8);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(compressed.length, 18);
  local.writeUInt32LE(declared, 22);
  local.writeUInt16LE(nameBytes.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(8, 10);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(compressed.length, 20);
  central.writeUInt32LE(declared, 24);
  central.writeUInt16LE(nameBytes.length, 28);
  const directoryOffset = local.length + nameBytes.length + compressed.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + nameBytes.length, 12);
  end.writeUInt32LE(directoryOffset, 16);
  return Buffer.concat([local, nameBytes, compressed, central, nameBytes, end]);
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  peakBytes: number;
}

/** `hpair compute` in a child that reports its own peak RSS (VmHWM, worker threads included) as it exits. */
function compute(expp: string, distance: string): Promise<Run> {
  const hook = `import { readFileSync } from 'node:fs';
process.on('exit', () => process.stderr.write('peak-kb ' + (/VmHWM:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 'none') + '\\n'));`;
  const args = ['--import', `data:text/javascript,${encodeURIComponent(hook)}`, cliPath, 'compute', '--expp', expp, '--distance', distance, '--out', join(dir, 'H.npy'), '--workers', '1', '--json'];
  return new Promise((resolve) => {
    execFile(process.execPath, args, { timeout: 120_000, maxBuffer: 16 * MiB }, (error, stdout, stderr) => {
      const kb = /peak-kb (\d+)/.exec(stderr)?.[1];
      resolve({
        code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1,
        stdout,
        stderr: stderr.replace(/peak-kb \S+\n/, ''),
        peakBytes: kb === undefined ? Number.NaN : Number(kb) * 1024,
      });
    });
  });
}

const linux = process.platform === 'linux';
let baseline = Number.NaN;

test('the crafted streams are what they claim (checked on a small one)', () => {
  const head = npyHeader("{'descr': '<c16', 'fortran_order': False, 'shape': (2, 4), }");
  const small = inflateRawSync(deflatedZeros(head, 1));
  assert.is(small.length, head.length + CHUNK);
  assert.equal(small.subarray(0, head.length), Buffer.from(head));
  assert.ok(small.subarray(head.length).every((byte) => byte === 0));
  assert.ok(zerosChunk().length < CHUNK / 900, `64 MiB of zeros deflate to ${zerosChunk().length} bytes`);
});

test('baseline: a tiny valid .npz through the same CLI', async () => {
  const run = await compute(join(fixturesDir, 'case_odd.npz') + ':expp', join(fixturesDir, 'case_odd.npz') + ':distance');
  assert.is(run.code, 0, run.stderr);
  baseline = run.peakBytes;
  if (linux) assert.ok(baseline > 0, 'peak RSS read from /proc');
});

/** Each bomb: the typed error, one line, and a peak within a fixed margin of the baseline's (never gigabytes). */
async function assertDefused(run: Run, code: string, message: RegExp, what: string): Promise<void> {
  assert.is(run.code, 2, `${what}: ${run.stderr}`);
  const failure = (JSON.parse(run.stdout.trim()) as { error: { code: string; message: string } }).error;
  assert.is(failure.code, code, `${what}: ${run.stdout}`);
  assert.match(failure.message, message, what);
  if (!linux) {
    console.log(`  (${what}: peak RSS not measured: no /proc here)`);
    return;
  }
  const margin = 256 * MiB;
  assert.ok(run.peakBytes < baseline + margin, `${what}: peak RSS ${Math.round(run.peakBytes / MiB)} MiB against ${Math.round(baseline / MiB)} MiB for a tiny input`);
}

test('a 2 GiB expp whose header shows M = 8192 against a distance of 100: SHAPE_MISMATCH from the headers, nothing inflated', async () => {
  const head = npyHeader("{'descr': '<c16', 'fortran_order': False, 'shape': (16384, 8192), }");
  const compressed = deflatedZeros(head, 32);
  const path = join(dir, 'mismatch.npz');
  writeFileSync(path, zipOf('expp.npy', compressed, head.length + 32 * CHUNK));
  assert.ok(readFileSync(path).length < 4 * MiB, 'a few MiB on disk');
  const distance = join(dir, 'd100.npy');
  writeFileSync(distance, encodeFloat64VectorNpy(new Float64Array(100).fill(1)));
  await assertDefused(await compute(path, distance), 'SHAPE_MISMATCH', /length 100 but --expp .* has M = 8192 columns/, 'shape mismatch');
  // The distance as the bomb, against a small expp: the same, from its header.
  const dHead = npyHeader("{'descr': '<f8', 'fortran_order': False, 'shape': (268435456,), }");
  const dPath = join(dir, 'distance-bomb.npz');
  writeFileSync(dPath, zipOf('distance.npy', deflatedZeros(dHead, 32), dHead.length + 32 * CHUNK));
  await assertDefused(await compute(join(fixturesDir, 'case_odd.npz') + ':expp', dPath), 'SHAPE_MISMATCH', /length 268435456 but --expp/, 'distance bomb');
});

test('a dtype hpair does not read, behind 2 GiB of zeros: BAD_NPY from the header', async () => {
  const head = npyHeader("{'descr': '<i2', 'fortran_order': False, 'shape': (32768, 32768), }");
  const path = join(dir, 'dtype.npz');
  writeFileSync(path, zipOf('expp.npy', deflatedZeros(head, 32), head.length + 32 * CHUNK));
  await assertDefused(await compute(path, join(dir, 'd100.npy')), 'BAD_NPY', /unsupported dtype '<i2'/, 'dtype');
});

test('lying sizes: an entry declaring more than its header promises is refused before inflating; a stream running past the declared size is cut off', async () => {
  const head = npyHeader("{'descr': '<c16', 'fortran_order': False, 'shape': (10, 4), }");
  const distance = join(dir, 'd4.npy');
  writeFileSync(distance, encodeFloat64VectorNpy(new Float64Array([1, 2, 3, 4])));
  // The header promises 10×4 complex values; the archive claims 2 GiB (and the stream holds them).
  const claims = join(dir, 'claims.npz');
  const compressed = deflatedZeros(head, 32);
  writeFileSync(claims, zipOf('expp.npy', compressed, head.length + 32 * CHUNK));
  const promised = head.length + 640;
  await assertDefused(await compute(claims, distance), 'BAD_NPY', new RegExp(`declares ${head.length + 32 * CHUNK} bytes but its \\.npy header \\(shape \\(10, 4\\) of <c16\\) promises ${promised}`), 'declared size');
  // Header and declared size agree on 10×4, but the deflate stream goes on for 2 GiB.
  const runs = join(dir, 'runs-on.npz');
  writeFileSync(runs, zipOf('expp.npy', compressed, promised));
  await assertDefused(await compute(runs, distance), 'BAD_NPY', new RegExp(`inflates to more than the ${promised} bytes it declares`), 'stream past its size');
});

test('npzEntryHeader reads the header of a 2 GiB entry from its first bytes and names the entry in its refusals', async () => {
  const head = npyHeader("{'descr': '<c16', 'fortran_order': False, 'shape': (16384, 8192), }");
  const archive = zipOf('expp.npy', deflatedZeros(head, 32), head.length + 32 * CHUNK);
  const [entry] = listNpz(archive);
  const before = process.memoryUsage().arrayBuffers;
  const header = await npzEntryHeader(archive, entry);
  assert.equal([header.kind, header.shape], ['c16', [16384, 8192]]);
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 * MiB, 'no large buffer kept');
  const bad = zipOf('x.npy', deflateRawSync(Buffer.from('not a npy at all')), 16);
  try {
    await npzEntryHeader(bad, listNpz(bad)[0]);
    assert.unreachable('expected BAD_NPY');
  } catch (error) {
    assert.is((error as { code?: string }).code, 'BAD_NPY');
    assert.match((error as Error).message, /^entry 'x\.npy': not a \.npy file/);
  }
});

test.run();
