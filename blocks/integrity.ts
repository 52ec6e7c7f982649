// End-to-end integrity of an H written in blocks: digests of the inputs, a checksum of every block's bytes
// taken from memory as it is written, a re-read of the whole output against those checksums before it is
// published, and a manifest beside the published file so that `hpair verify` can check it at any later time.
//
// SHA-256 for all of it: the x86 (SHA-NI) and Arm (ARMv8 crypto) extensions that OpenSSL uses make it as fast
// as any digest node:crypto offers on the hosts hpair targets, it is what `sha256sum` prints (a user can check
// an input's digest with standard tools), and unlike a plain CRC it cannot be matched by accident.
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { open, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { HpairError } from '../shared/errors.js';
import { complexNpyHeader } from '../io/npy.js';
import { ioFailure, kindOf, syncDirectory } from '../io/npy-output.js';

/** The digest used for inputs and blocks. */
export const CHECKSUM = 'sha256';
/** Hex digits of one checksum. */
const HEX_LENGTH = 64;
/** Bytes read at once when digesting or verifying (whole rows of H, at least one). */
const READ_BYTES = 4 << 20;
/** Mirror rows staged at once for a block's checksum. */
const MIRROR_STRIP = 64;

/** A block as far as integrity goes: its rows and columns of H (a lower-triangle grid cell). */
export interface BlockArea {
  readonly id: number;
  readonly rows: readonly [number, number];
  readonly cols: readonly [number, number];
}

export function isChecksum(value: unknown): value is string {
  return typeof value === 'string' && value.length === HEX_LENGTH && /^[0-9a-f]+$/.test(value);
}

/** The SHA-256 of a file's bytes, read once as a stream (hex). IO_ERROR naming `name` when it cannot be read. */
export async function digestFile(path: string, name = 'input'): Promise<string> {
  const hash = createHash(CHECKSUM);
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: READ_BYTES })) hash.update(chunk as Buffer);
  } catch (error) {
    throw ioFailure('read', `${name} ${path}`, error);
  }
  return hash.digest('hex');
}

/** A fresh random token: what tells apart two runs that write the same output from the same inputs. */
export function newNonce(): string {
  return randomBytes(16).toString('hex');
}

/**
 * The checksum of one block as H's file holds it: SHA-256 over the block's bytes in file order, that is, row
 * by row of H, the bytes of each row that the block or its mirror covers. Below the diagonal (j1 ≤ i0) that is
 * the mirror's rows [j0, j1) at columns [i0, i1), then the block's rows [i0, i1) at columns [j0, j1); a
 * diagonal block is its own rows and columns. Taken from `data` (the values computed, as written), where the
 * block's entry (r, c) is complex number `offset + r·stride + c`: so a re-read of the file that gives the same
 * checksum proves the file holds exactly what was computed, mirror included.
 */
export function blockChecksum(block: BlockArea, data: Float64Array, stride: number, offset = 0): string {
  const [i0, i1] = block.rows;
  const [j0, j1] = block.cols;
  const bi = i1 - i0;
  const bj = j1 - j0;
  const hash = createHash(CHECKSUM);
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const diagonal = i0 === j0 && i1 === j1;
  if (!diagonal && j1 > i0) throw new HpairError('INVALID_ARGUMENT', `block ${block.id} is neither on nor below the diagonal`);
  if (!diagonal && bi > 0 && bj > 0) {
    // The mirror, row s of H at columns [i0, i1): conj of the block's column s − j0, staged a strip of a few
    // dozen rows at a time, read along the block's rows (contiguous) so the transposition stays in cache.
    const strip = Math.max(1, Math.min(bj, MIRROR_STRIP, Math.floor(READ_BYTES / (16 * bi))));
    const stage = new Float64Array(2 * strip * bi);
    const staged = new Uint8Array(stage.buffer);
    for (let s0 = 0; s0 < bj; s0 += strip) {
      const width = Math.min(bj, s0 + strip) - s0;
      for (let r = 0; r < bi; r++) {
        let from = 2 * (offset + r * stride + s0);
        let to = 2 * r;
        for (let s = 0; s < width; s++) {
          stage[to] = data[from];
          stage[to + 1] = -data[from + 1];
          from += 2;
          to += 2 * bi;
        }
      }
      hash.update(staged.subarray(0, 16 * width * bi));
    }
  }
  for (let r = 0; r < bi; r++) {
    const start = 16 * (offset + r * stride);
    hash.update(bytes.subarray(start, start + 16 * bj));
  }
  return hash.digest('hex');
}

/**
 * The bands of a grid of lower-triangle blocks: the sorted edges 0 = e0 < e1 < … < ek = n, and the block of
 * each cell (I ≥ J). Refuses (BAD_NPY, naming `what`) blocks that are not exactly the cells of one such grid,
 * each once: only then does every byte of H belong to exactly one block.
 */
function gridOf(n: number, blocks: readonly BlockArea[], what: string): { edges: number[]; cell: (I: number, J: number) => BlockArea } {
  const bad = (why: string): HpairError => new HpairError('BAD_NPY', `${what}: its blocks do not tile H (${why})`);
  const edgeSet = new Set<number>([0, n]);
  for (const block of blocks) for (const value of [...block.rows, ...block.cols]) edgeSet.add(value);
  const edges = [...edgeSet].sort((a, b) => a - b);
  if (edges[0] !== 0 || edges[edges.length - 1] !== n || edges.some((value) => !Number.isSafeInteger(value))) throw bad(`an edge lies outside [0, ${n}]`);
  const index = new Map(edges.map((value, k) => [value, k]));
  const k = edges.length - 1;
  const cells = new Map<number, BlockArea>();
  for (const block of blocks) {
    const I = index.get(block.rows[0])!;
    const J = index.get(block.cols[0])!;
    if (index.get(block.rows[1]) !== I + 1 || index.get(block.cols[1]) !== J + 1 || J > I) throw bad(`block ${block.id} is not one cell on or below the diagonal`);
    if (cells.has(I * k + J)) throw bad(`block ${block.id} covers block ${cells.get(I * k + J)!.id}'s cells`);
    cells.set(I * k + J, block);
  }
  if (n > 0 && cells.size !== (k * (k + 1)) / 2) throw bad(`${(k * (k + 1)) / 2 - cells.size} cells have no block`);
  return { edges, cell: (I, J) => cells.get(I * k + J)! };
}

/**
 * The file a re-read must find at its path: the one a run wrote through its own descriptor. The path is then
 * opened without following a symbolic link, and the opened file's device and inode compared with these, so
 * that what is checked is exactly what was written (and what a rename of the path would publish).
 */
export interface ExpectedFile {
  readonly dev: number;
  readonly ino: number;
  /** The refusal when the path holds something else: `now` says what ('a symbolic link', 'another file', …). */
  readonly replaced: (now: string) => HpairError;
}

/** Opens `path` for a re-read; with `expect`, only if it is still that very file (never through a link). */
async function openForReading(path: string, what: string, expect: ExpectedFile | undefined): Promise<FileHandle> {
  if (expect === undefined) {
    try {
      return await open(path, 'r');
    } catch (error) {
      throw ioFailure('read', what, error);
    }
  }
  let file: FileHandle;
  try {
    file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'EMLINK' || code === 'EFTYPE') throw expect.replaced('a symbolic link');
    if (code === 'ENOENT') throw expect.replaced('gone');
    throw ioFailure('read', what, error);
  }
  try {
    const stats = await file.stat();
    if (!stats.isFile() || stats.dev !== expect.dev || stats.ino !== expect.ino) throw expect.replaced(stats.isFile() ? 'another file' : kindOf(stats));
  } catch (error) {
    await file.close().catch(() => undefined);
    throw ioFailure('read', what, error);
  }
  return file;
}

/**
 * Reads H's file at `path` once, front to back, and returns each block's checksum as blockChecksum defines it.
 * `dataOffset` is where H's n×n values start. With `expect`, the file read must be that one (see ExpectedFile).
 */
export async function checksumBlocks(path: string, n: number, dataOffset: number, blocks: readonly BlockArea[], what: string, expect?: ExpectedFile): Promise<Map<number, string>> {
  const { edges, cell } = gridOf(n, blocks, what);
  const hashes = new Map<number, Hash>(blocks.map((block) => [block.id, createHash(CHECKSUM)]));
  const file = await openForReading(path, what, expect);
  try {
    const rowBytes = 16 * n;
    const rowsAtOnce = Math.max(1, Math.floor(READ_BYTES / Math.max(1, rowBytes)));
    // Two buffers: the next strip of rows is read while this one is hashed, so the hashing hides behind the disk.
    const buffers = [Buffer.allocUnsafe(Math.max(1, rowsAtOnce * rowBytes)), Buffer.allocUnsafe(Math.max(1, rowsAtOnce * rowBytes))];
    const readStrip = async (r0: number, buffer: Buffer): Promise<void> => {
      const want = (Math.min(n, r0 + rowsAtOnce) - r0) * rowBytes;
      let got = 0;
      while (got < want) {
        const { bytesRead } = await file.read(buffer, got, want - got, dataOffset + r0 * rowBytes + got);
        if (bytesRead === 0) throw new HpairError('IO_ERROR', `${what} ends before H's row ${r0 + Math.floor(got / rowBytes)}`);
        got += bytesRead;
      }
    };
    let band = 0;
    let next: Promise<void> | undefined = n > 0 ? readStrip(0, buffers[0]) : undefined;
    try {
      for (let r0 = 0, k = 0; r0 < n; r0 += rowsAtOnce, k++) {
        const buffer = buffers[k % 2];
        await next;
        next = r0 + rowsAtOnce < n ? readStrip(r0 + rowsAtOnce, buffers[(k + 1) % 2]) : undefined;
        const r1 = Math.min(n, r0 + rowsAtOnce);
        for (let r = r0; r < r1; r++) {
          while (edges[band + 1] <= r) band++;
          const row = buffer.subarray((r - r0) * rowBytes, (r - r0 + 1) * rowBytes);
          for (let K = 0; K + 1 < edges.length; K++) {
            const block = K <= band ? cell(band, K) : cell(K, band);
            hashes.get(block.id)!.update(row.subarray(16 * edges[K], 16 * edges[K + 1]));
          }
        }
      }
    } finally {
      await next?.catch(() => undefined); // the file is closed only once no read is in flight
    }
  } catch (error) {
    throw ioFailure('read', what, error);
  } finally {
    await file.close().catch(() => undefined);
  }
  return new Map([...hashes].map(([id, hash]) => [id, hash.digest('hex')]));
}

/** The blocks whose checksum in `path` differs from `expected` (ids ascending). */
export async function mismatchedBlocks(path: string, n: number, dataOffset: number, blocks: readonly BlockArea[], expected: ReadonlyMap<number, string>, what: string, expect?: ExpectedFile): Promise<number[]> {
  const found = await checksumBlocks(path, n, dataOffset, blocks, what, expect);
  return blocks.filter((block) => found.get(block.id) !== expected.get(block.id)).map((block) => block.id).sort((a, b) => a - b);
}

/** "block 3 (rows [250, 500) × columns [0, 250)), block 9 (…)", at most `most` of them. */
export function describeBlocks(ids: readonly number[], blocks: ReadonlyMap<number, BlockArea> | readonly BlockArea[], most = 12): string {
  const byId = Array.isArray(blocks) ? new Map((blocks as readonly BlockArea[]).map((block) => [block.id, block])) : (blocks as ReadonlyMap<number, BlockArea>);
  const named = ids.slice(0, most).map((id) => {
    const block = byId.get(id);
    return block === undefined ? `block ${id}` : `block ${id} (rows [${block.rows[0]}, ${block.rows[1]}) × columns [${block.cols[0]}, ${block.cols[1]}))`;
  });
  return `${named.join(', ')}${ids.length > most ? ` and ${ids.length - most} more` : ''}`;
}

// ---- The manifest: H.npy.manifest.json ----

export const MANIFEST_FORMAT = 'hpair-manifest';
export const MANIFEST_VERSION = 1;

export interface ManifestInput {
  /** The path the run was given (absolute for the cluster). */
  readonly path: string;
  readonly bytes: number;
  readonly sha256: string;
}

/** What `H.npy.manifest.json` holds (JSON, one object). */
export interface Manifest {
  readonly format: typeof MANIFEST_FORMAT;
  readonly version: typeof MANIFEST_VERSION;
  /** H's shape [n, n], its dtype ('<c16') and where its values start. */
  readonly shape: readonly [number, number];
  readonly dtype: '<c16';
  readonly dataOffset: number;
  /** The file's size in bytes. */
  readonly bytes: number;
  readonly blockSize: number;
  readonly kernel: string;
  readonly checksum: typeof CHECKSUM;
  readonly inputs: { readonly expp: ManifestInput; readonly distance: ManifestInput };
  /** Every block with the SHA-256 of its bytes in file order (blockChecksum). */
  readonly blocks: ReadonlyArray<BlockArea & { readonly sha256: string }>;
}

/** What a finished run knows that its manifest records. */
export interface FinishedRun {
  /** H is n×n. */
  readonly n: number;
  readonly blockSize: number;
  /** The kernel stamp of the run's journal (kernel and accuracy). */
  readonly kernel: string;
  /** The inputs' paths as the run was given them, and their stamps from the journal. */
  readonly paths: { readonly expp: string; readonly distance: string };
  readonly stamps: { readonly expp: { readonly bytes: number; readonly sha256: string }; readonly distance: { readonly bytes: number; readonly sha256: string } };
  readonly blocks: readonly BlockArea[];
  /** Each block's checksum, by id, as the journal holds them. */
  readonly checksums: ReadonlyMap<number, string>;
}

/** The manifest of a finished run (out of core and the cluster write the same one). */
export function manifestOf(run: FinishedRun): Manifest {
  const headerBytes = complexNpyHeader([run.n, run.n]).length;
  const input = (key: 'expp' | 'distance'): ManifestInput => ({ path: run.paths[key], bytes: run.stamps[key].bytes, sha256: run.stamps[key].sha256 });
  return {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    shape: [run.n, run.n],
    dtype: '<c16',
    dataOffset: headerBytes,
    bytes: headerBytes + 16 * run.n * run.n,
    blockSize: run.blockSize,
    kernel: run.kernel,
    checksum: CHECKSUM,
    inputs: { expp: input('expp'), distance: input('distance') },
    blocks: run.blocks.map((block) => {
      const sha256 = run.checksums.get(block.id);
      if (sha256 === undefined) throw new HpairError('IO_ERROR', `internal: block ${block.id} has no checksum in the journal`);
      return { id: block.id, rows: block.rows, cols: block.cols, sha256 };
    }),
  };
}

export function manifestPath(out: string): string {
  return `${out}.manifest.json`;
}

/**
 * Writes `out`'s manifest durably (a temporary file renamed into place), before `out` itself is published.
 * Refuses (INVALID_ARGUMENT) to replace a file that is one of `inputs`.
 */
export async function writeManifest(out: string, manifest: Manifest, inputs: readonly string[] = []): Promise<void> {
  const path = manifestPath(out);
  const target = await stat(path).catch(() => undefined);
  if (target !== undefined) {
    for (const input of inputs) {
      const info = await stat(input).catch(() => undefined);
      if (info !== undefined && info.dev === target.dev && info.ino === target.ino) {
        throw new HpairError('INVALID_ARGUMENT', `the manifest ${path} would replace the input ${input}; refusing to overwrite it`);
      }
    }
  }
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const blocks = manifest.blocks.map((block) => `    ${JSON.stringify({ id: block.id, rows: block.rows, cols: block.cols, sha256: block.sha256 })}`);
  const { blocks: _, ...head } = manifest;
  const text = `${JSON.stringify(head, null, 2).replace(/\n}$/, ',\n  "blocks": [\n')}${blocks.join(',\n')}\n  ]\n}\n`;
  let file: FileHandle | undefined;
  try {
    file = await open(temp, 'wx', 0o644);
    await file.writeFile(text, 'utf8');
    await file.sync();
    await file.close();
    file = undefined;
    await rename(temp, path);
    await syncDirectory(dirname(path));
  } catch (error) {
    await file?.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw ioFailure('write', `the manifest ${path}`, error);
  }
}

/** Reads and checks `out`'s manifest: IO_ERROR when it is missing or unreadable, BAD_NPY when it is not one. */
export async function readManifest(out: string): Promise<Manifest> {
  const path = manifestPath(out);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new HpairError('IO_ERROR', `${out} has no manifest (${basename(path)}): only an output written block by block (out of core or by the cluster) has one`);
    throw ioFailure('read', `the manifest ${path}`, error);
  }
  const bad = (why: string): HpairError => new HpairError('BAD_NPY', `the manifest ${path} is not valid (${why})`);
  let value: Manifest;
  try {
    value = JSON.parse(text) as Manifest;
  } catch {
    throw bad('not JSON');
  }
  if (typeof value !== 'object' || value === null || value.format !== MANIFEST_FORMAT) throw bad(`no "format": "${MANIFEST_FORMAT}"`);
  if (value.version !== MANIFEST_VERSION) throw bad(`version ${String(value.version)}; this hpair reads version ${MANIFEST_VERSION}`);
  if (value.checksum !== CHECKSUM) throw bad(`checksum ${String(value.checksum)}`);
  const n = Array.isArray(value.shape) ? value.shape[0] : undefined;
  if (!Number.isSafeInteger(n) || n! < 0 || value.shape[1] !== n || value.dtype !== '<c16') throw bad('its shape or dtype is not that of an n×n H');
  if (!Array.isArray(value.blocks)) throw bad('no block list');
  const range = (pair: unknown): boolean => Array.isArray(pair) && pair.length === 2 && pair.every((x) => Number.isSafeInteger(x) && x >= 0 && x <= n!) && pair[0] < pair[1];
  for (const block of value.blocks) {
    if (typeof block !== 'object' || block === null || !Number.isSafeInteger(block.id) || !range(block.rows) || !range(block.cols) || !isChecksum(block.sha256)) {
      throw bad(`block ${JSON.stringify(block)?.slice(0, 80)}`);
    }
  }
  return value;
}

export interface VerifyResult {
  readonly path: string;
  readonly manifest: string;
  readonly n: number;
  readonly blocks: number;
  /** Blocks whose bytes differ from their checksum, ascending. */
  readonly bad: readonly number[];
  /** One line: what was checked and what was found. */
  readonly message: string;
}

/**
 * Checks a finished output against its manifest: the header is that of an n×n complex128 H, the size is
 * right, the manifest's blocks tile H, and every block's bytes (its mirror included) have its checksum.
 * Resolves with the blocks that do not (none: the file is what was computed); rejects with IO_ERROR or
 * BAD_NPY when the file or the manifest cannot be read or do not belong together.
 */
export async function verifyOutput(out: string): Promise<VerifyResult> {
  const manifest = await readManifest(out);
  const n = manifest.shape[0];
  const header = complexNpyHeader([n, n]);
  const fileBytes = header.length + 16 * n * n;
  let file: FileHandle;
  try {
    file = await open(out, 'r');
  } catch (error) {
    throw ioFailure('read', out, error);
  }
  try {
    const stats = await file.stat();
    if (stats.size !== fileBytes || manifest.bytes !== fileBytes || manifest.dataOffset !== header.length) {
      throw new HpairError('BAD_NPY', `${out} has ${stats.size} bytes but its manifest describes a ${n}×${n} H of ${manifest.bytes} bytes (${fileBytes} expected)`);
    }
    const present = Buffer.alloc(header.length);
    await file.read(present, 0, header.length, 0);
    if (!present.equals(Buffer.from(header))) throw new HpairError('BAD_NPY', `${out}'s .npy header is not that of the ${n}×${n} complex128 H its manifest describes`);
  } finally {
    await file.close().catch(() => undefined);
  }
  const expected = new Map(manifest.blocks.map((block) => [block.id, block.sha256]));
  const bad = await mismatchedBlocks(out, n, header.length, manifest.blocks, expected, out);
  const path = manifestPath(out);
  const message =
    bad.length === 0
      ? `${out}: ok, ${manifest.blocks.length} blocks match ${basename(path)} (${CHECKSUM})`
      : `${out}: ${bad.length} of ${manifest.blocks.length} blocks do not match ${basename(path)}: ${describeBlocks(bad, manifest.blocks)}`;
  return { path: out, manifest: path, n, blocks: manifest.blocks.length, bad, message };
}
