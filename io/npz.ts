import { constants as bufferConstants } from 'node:buffer';
import * as zlib from 'node:zlib';
import { HpairError } from '../shared/errors.js';
import { npyItemBytes, parseNpyHeader, REAL_DTYPES, type NpyDtypes, type NpyHeader } from './npy.js';

/**
 * NumPy `.npz` archives (`np.savez`: ZIP_STORED; `np.savez_compressed`: ZIP_DEFLATED; ZIP64 as numpy
 * always writes it), read strictly from bytes in memory, as the `.npy` reader reads: archives come from
 * users, so every offset and length is checked against the bytes present before it is used, and nothing
 * larger than the archive implies is allocated (a deflated entry may claim at most what deflate can
 * produce from its compressed bytes, 1032:1). Every entry's CRC-32 is checked.
 *
 * Read from the central directory (the authority; local headers are only checked to agree): one disk,
 * no encryption, methods 0 (stored) and 8 (deflated), data descriptors allowed (numpy writes them
 * when saving to a pipe). Entries may not overlap, names may not repeat.
 */

export interface NpzEntry {
  /** The name as stored, e.g. `expp.npy`. */
  readonly name: string;
  /** 0: stored; 8: deflated. */
  readonly method: 0 | 8;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  /** Byte offset of the entry's (compressed) data in the archive. */
  readonly dataOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_END = 0x06054b50;
const SIG_END64 = 0x06064b50;
const SIG_LOCATOR64 = 0x07064b50;
const END_BYTES = 22;
const LOCATOR64_BYTES = 20;
const END64_BYTES = 56;
const CENTRAL_BYTES = 46;
const LOCAL_BYTES = 30;
/** zlib's documented bound: deflate never compresses better than 1032:1. */
const MAX_DEFLATE_RATIO = 1032;

function bad(message: string): HpairError {
  return new HpairError('BAD_NPY', `bad .npz: ${message}`);
}

/** True when the bytes start like a ZIP archive (a local file header, or the end record of an empty one). */
export function isZip(bytes: Uint8Array): boolean {
  if (bytes.length < 4 || bytes[0] !== 0x50 || bytes[1] !== 0x4b) return false;
  return (bytes[2] === 3 && bytes[3] === 4) || (bytes[2] === 5 && bytes[3] === 6);
}

/** The archive's entries, from its central directory, each checked against the bytes present. */
export function listNpz(bytes: Uint8Array): NpzEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (at: number): number => view.getUint16(at, true);
  const u32 = (at: number): number => view.getUint32(at, true);
  const u64 = (at: number, what: string): number => {
    const value = view.getBigUint64(at, true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`${what} is ${value}, past any file we can read`);
    return Number(value);
  };

  // The end of central directory record: 22 bytes and a comment of up to 65 535 bytes that must end the file.
  let end = -1;
  for (let at = bytes.length - END_BYTES; at >= 0 && at >= bytes.length - END_BYTES - 0xffff; at--) {
    if (u32(at) === SIG_END && at + END_BYTES + u16(at + 20) === bytes.length) {
      end = at;
      break;
    }
  }
  if (end < 0) throw bad(`no end of central directory record (truncated, or not a ZIP archive); ${bytes.length} bytes`);
  if (u16(end + 4) !== 0 || u16(end + 6) !== 0) throw bad('multi-disk archives are not read');
  let entryCount = u16(end + 10);
  if (u16(end + 8) !== entryCount) throw bad('multi-disk archives are not read');
  let directorySize = u32(end + 12);
  let directoryOffset = u32(end + 16);
  let directoryLimit = end; // the central directory must end before the end records

  const locator = end - LOCATOR64_BYTES;
  if (locator >= 0 && u32(locator) === SIG_LOCATOR64) {
    // ZIP64: the locator points at the ZIP64 end record, whose 64-bit fields replace the ones above.
    if (u32(locator + 4) !== 0 || u32(locator + 16) !== 1) throw bad('multi-disk archives are not read');
    const end64 = u64(locator + 8, 'the ZIP64 end record offset');
    if (end64 + END64_BYTES > locator) throw bad(`the ZIP64 end record at ${end64} does not fit before its locator at ${locator}`);
    if (u32(end64) !== SIG_END64) throw bad(`no ZIP64 end record at ${end64}`);
    if (end64 + 12 + u64(end64 + 4, 'the ZIP64 end record size') !== locator) throw bad('the ZIP64 end record size disagrees with its position');
    if (u32(end64 + 16) !== 0 || u32(end64 + 20) !== 0) throw bad('multi-disk archives are not read');
    entryCount = u64(end64 + 32, 'the entry count');
    if (u64(end64 + 24, 'the entry count on this disk') !== entryCount) throw bad('multi-disk archives are not read');
    directorySize = u64(end64 + 40, 'the central directory size');
    directoryOffset = u64(end64 + 48, 'the central directory offset');
    directoryLimit = end64;
  } else if (entryCount === 0xffff || directorySize === 0xffffffff || directoryOffset === 0xffffffff) {
    throw bad('the end record defers to a ZIP64 end record, but there is none');
  }
  if (directoryOffset + directorySize > directoryLimit) {
    throw bad(`the central directory (${directorySize} bytes at ${directoryOffset}) runs past the end records at ${directoryLimit}`);
  }
  if (entryCount * CENTRAL_BYTES > directorySize) throw bad(`${entryCount} entries cannot fit in a ${directorySize}-byte central directory`);

  const entries: NpzEntry[] = [];
  const names = new Set<string>();
  const spans: Array<[start: number, end: number, name: string]> = [];
  const directoryEnd = directoryOffset + directorySize;
  let at = directoryOffset;
  for (let e = 0; e < entryCount; e++) {
    if (at + CENTRAL_BYTES > directoryEnd || u32(at) !== SIG_CENTRAL) throw bad(`central directory entry ${e} is missing or malformed at ${at}`);
    const flags = u16(at + 8);
    const method = u16(at + 10);
    const crc32 = u32(at + 16);
    let compressedSize = u32(at + 20);
    let uncompressedSize = u32(at + 24);
    const nameLength = u16(at + 28);
    const extraLength = u16(at + 30);
    const commentLength = u16(at + 32);
    let disk = u16(at + 34);
    let localOffset = u32(at + 42);
    const nameAt = at + CENTRAL_BYTES;
    const extraAt = nameAt + nameLength;
    const next = extraAt + extraLength + commentLength;
    if (next > directoryEnd) throw bad(`central directory entry ${e} runs past the directory`);
    const nameBytes = bytes.subarray(nameAt, extraAt);
    const name = new TextDecoder((flags & 0x800) !== 0 ? 'utf-8' : 'latin1').decode(nameBytes);
    const label = `entry '${name}'`;
    if ((flags & 0x41) !== 0) throw bad(`${label} is encrypted`);
    if (method !== 0 && method !== 8) throw bad(`${label} uses compression method ${method} (stored and deflated are read)`);

    // The ZIP64 extra field holds, in this order, each of these that the fixed fields mark as 0xFFFF…
    let extra = extraAt;
    let sawZip64 = false;
    while (extra < extraAt + extraLength) {
      if (extra + 4 > extraAt + extraLength) throw bad(`${label} has a truncated extra field`);
      const id = u16(extra);
      const size = u16(extra + 2);
      const body = extra + 4;
      if (body + size > extraAt + extraLength) throw bad(`${label} has an extra field that runs past its end`);
      if (id === 0x0001) {
        if (sawZip64) throw bad(`${label} has two ZIP64 extra fields`);
        sawZip64 = true;
        let field = body;
        const take = (what: string): number => {
          if (field + 8 > body + size) throw bad(`${label}'s ZIP64 extra field lacks its ${what}`);
          const value = u64(field, `${label}'s ${what}`);
          field += 8;
          return value;
        };
        if (uncompressedSize === 0xffffffff) uncompressedSize = take('size');
        if (compressedSize === 0xffffffff) compressedSize = take('compressed size');
        if (localOffset === 0xffffffff) localOffset = take('offset');
        if (disk === 0xffff) {
          if (field + 4 > body + size) throw bad(`${label}'s ZIP64 extra field lacks its disk number`);
          disk = u32(field);
        }
      }
      extra = body + size;
    }
    if (disk !== 0) throw bad('multi-disk archives are not read');
    if (method === 0 && compressedSize !== uncompressedSize) {
      throw bad(`${label} is stored but claims ${uncompressedSize} bytes in ${compressedSize}`);
    }
    if (method === 8 && uncompressedSize > compressedSize * MAX_DEFLATE_RATIO + MAX_DEFLATE_RATIO) {
      throw bad(`${label} claims ${uncompressedSize} bytes from ${compressedSize} compressed bytes, more than deflate can produce`);
    }

    // The local header must agree on the name and method; the data follows it and precedes the directory.
    if (localOffset + LOCAL_BYTES > directoryOffset || u32(localOffset) !== SIG_LOCAL) throw bad(`${label} has no local header at ${localOffset}`);
    if (u16(localOffset + 8) !== method) throw bad(`${label}'s local header disagrees on the compression method`);
    const localNameLength = u16(localOffset + 26);
    const dataOffset = localOffset + LOCAL_BYTES + localNameLength + u16(localOffset + 28);
    if (dataOffset + compressedSize > directoryOffset) throw bad(`${label}'s data runs past the start of the central directory`);
    const localName = bytes.subarray(localOffset + LOCAL_BYTES, localOffset + LOCAL_BYTES + localNameLength);
    if (localNameLength !== nameLength || localName.some((byte, i) => byte !== nameBytes[i])) throw bad(`${label}'s local header names another file`);

    if (names.has(name)) throw bad(`two entries are named '${name}'`);
    names.add(name);
    spans.push([localOffset, dataOffset + compressedSize, name]);
    entries.push({ name, method, crc32, compressedSize, uncompressedSize, dataOffset });
    at = next;
  }
  if (at !== directoryEnd) throw bad(`the central directory has ${directoryEnd - at} bytes after its ${entryCount} entries`);
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i][0] < spans[i - 1][1]) throw bad(`entries '${spans[i - 1][2]}' and '${spans[i][2]}' overlap`);
  }
  return entries;
}

/** Every dtype a member may have: checking the header before inflating leaves the choice to the caller. */
const ALL_DTYPES: NpyDtypes = { kinds: ['c16', 'c8', ...REAL_DTYPES.kinds], names: `complex128, complex64, ${REAL_DTYPES.names}` };
/** A .npy header is at most 12 + 65 536 bytes (io/npy.ts): all a peek needs to inflate. */
const MAX_NPY_HEADER = 12 + (1 << 16);

/**
 * The `.npy` header of an entry, read by inflating only its first bytes (a deflated entry) or from the archive
 * (a stored one), so that a shape or dtype that cannot be used is refused before anything large is inflated.
 * The header must promise exactly the entry's declared size (header + shape × item size), the size inflation
 * is then held to: an archive whose entry claims more than its header (or less) is refused (BAD_NPY) here.
 * Dtypes outside `accepted` are refused too, naming what is accepted.
 */
export async function npzEntryHeader(bytes: Uint8Array, entry: NpzEntry, accepted: NpyDtypes = ALL_DTYPES): Promise<NpyHeader> {
  const compressed = entryData(bytes, entry);
  const head = entry.method === 0 ? compressed.subarray(0, MAX_NPY_HEADER) : await inflate(compressed, entry, MAX_NPY_HEADER);
  let header: NpyHeader;
  try {
    header = parseNpyHeader(head, 'header', accepted);
  } catch (error) {
    throw error instanceof HpairError ? new HpairError(error.code, `entry '${entry.name}': ${error.message}`, { cause: error }) : error;
  }
  let promised = BigInt(npyItemBytes(header.kind));
  for (const dim of header.shape) promised *= BigInt(dim);
  promised += BigInt(header.dataOffset);
  if (promised !== BigInt(entry.uncompressedSize)) {
    throw bad(`entry '${entry.name}' declares ${entry.uncompressedSize} bytes but its .npy header (shape (${header.shape.join(', ')}) of ${header.descr}) promises ${promised}`);
  }
  return header;
}

function entryData(bytes: Uint8Array, entry: NpzEntry): Uint8Array {
  const compressed = bytes.subarray(entry.dataOffset, entry.dataOffset + entry.compressedSize);
  if (compressed.length !== entry.compressedSize) throw bad(`entry '${entry.name}' runs past the archive`);
  return compressed;
}

/**
 * The entry's uncompressed bytes: a view into `bytes` for a stored entry, a new buffer of exactly the
 * declared size for a deflated one (inflated off the main thread; inflation stops as soon as it would pass
 * that size). The CRC-32 is checked either way. Readers of `.npy` entries call npzEntryHeader first, so that
 * the declared size is the one the entry's header promises, and shapes are checked before this allocates.
 */
export async function npzEntryBytes(bytes: Uint8Array, entry: NpzEntry): Promise<Uint8Array> {
  const compressed = entryData(bytes, entry);
  const data = entry.method === 0 ? compressed : await inflate(compressed, entry);
  const crc = crc32(data);
  if (crc !== entry.crc32) {
    throw bad(`entry '${entry.name}' fails its CRC-32 check (${hex(crc)}, expected ${hex(entry.crc32)}): the archive is corrupt`);
  }
  return data;
}

/**
 * Inflates the entry into one buffer of its declared size, or, with `prefix`, only its first `prefix` bytes
 * (or fewer, if it is shorter). Stops, and fails with BAD_NPY, as soon as the data would pass the declared size.
 */
function inflate(compressed: Uint8Array, entry: NpzEntry, prefix?: number): Promise<Uint8Array> {
  const size = entry.uncompressedSize;
  const want = prefix === undefined ? size : Math.min(prefix, size);
  if (want > bufferConstants.MAX_LENGTH) {
    return Promise.reject(new HpairError('TOO_LARGE', `.npz entry '${entry.name}' holds ${size} bytes; a buffer holds at most ${bufferConstants.MAX_LENGTH}`));
  }
  // One buffer of the declared size (bounded above by the compressed size), filled as zlib produces
  // chunks: no list of chunks to concatenate, so the peak is the entry plus one chunk.
  const out = Buffer.allocUnsafe(want);
  let filled = 0;
  return new Promise((resolve, reject) => {
    const stream = zlib.createInflateRaw({ chunkSize: prefix === undefined ? 1 << 20 : 1 << 16 });
    let settled = false;
    const finish = (result: Uint8Array | HpairError): void => {
      if (settled) return;
      settled = true;
      stream.destroy();
      if (result instanceof HpairError) reject(result);
      else resolve(result);
    };
    const fail = (message: string): void => finish(bad(`entry '${entry.name}' ${message}`));
    stream.on('data', (chunk: Buffer) => {
      if (settled) return;
      if (prefix !== undefined) {
        const take = Math.min(chunk.length, want - filled);
        out.set(chunk.subarray(0, take), filled);
        filled += take;
        if (filled === want) finish(out);
        return;
      }
      if (filled + chunk.length > size) return fail(`inflates to more than the ${size} bytes it declares`);
      out.set(chunk, filled);
      filled += chunk.length;
    });
    stream.on('error', (error) => fail(`does not inflate: ${error.message}`));
    stream.on('end', () => {
      if (prefix !== undefined) finish(out.subarray(0, filled));
      else if (filled === size) finish(out);
      else fail(`inflates to ${filled} bytes but declares ${size}`);
    });
    stream.end(compressed);
  });
}

const hex = (value: number): string => `0x${value.toString(16).padStart(8, '0')}`;

/** Node ≥ 20.15 has zlib.crc32; older 20.x get the table-driven loop. */
const crc32: (data: Uint8Array) => number =
  typeof (zlib as { crc32?: unknown }).crc32 === 'function' ? (data) => zlib.crc32(data) >>> 0 : tableCrc32;

let table: Uint32Array | undefined;
function tableCrc32(data: Uint8Array): number {
  if (table === undefined) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Exposed for tests: the fallback must agree with zlib's. */
export const crc32ForTests = { zlib: crc32, table: tableCrc32 };
