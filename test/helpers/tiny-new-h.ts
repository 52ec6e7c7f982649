// Run as a child process with --expose-gc by small-and-write-bound.test: what becomes of the new H of tiny jobs
// a caller drops. Prints one JSON line.
import { createPool } from 'hpair';
import { loadNativeAddon } from '../../kernel/native/addon.js';
import { randomProblem } from './support.js';

const gc = (globalThis as { gc?: (options?: { type: 'minor' | 'major' }) => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');
const addon = loadNativeAddon().addon;
if (addon === undefined) throw new Error('the native addon does not load here');
/** This thread's external memory as V8 counts it (process.memoryUsage().external leaves out what addons report). */
const externalCount = (): number => addon.adjustExternalMemory(0);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
// V8 frees a dead buffer's memory on a background thread after the collection that found it dead; finalizers and
// the pool's count of new bytes run as tasks of their own.
// gc() for a full collection, not gc({ type: 'major' }): after that one, no FinalizationRegistry callback ran.
const collect = (type: 'minor' | 'full'): void => (type === 'minor' ? gc({ type }) : gc());
const settle = async (type: 'minor' | 'full'): Promise<void> => {
  collect(type);
  await sleep(100);
  collect(type);
  await sleep(100);
};

// No idle collection: its full collection would free what a young-generation one must be shown to free.
const pool = createPool({ workers: 1, idleCollectMs: 0 });
await pool.ready();
const { expp, distance } = randomProblem(64, 64, 41);
const hBytes = 16 * 63 * 63;
for (let k = 0; k < 20; k++) await pool.hermitian(expp, distance);

// Dropped at once: a young-generation collection alone must free them (nothing of the pool's may keep them).
// The bounds the test holds each figure to (argv): on a loaded host the background freeing may lag, so each figure is
// read again after another collection, up to ATTEMPTS times, until it is within its bound. A result the pool
// kept reachable stays held however many young-generation collections run.
const [keptBound, driftBound] = process.argv.slice(2).map(Number);
const ATTEMPTS = 5;
await settle('minor');
const before = process.memoryUsage().arrayBuffers;
const dropped = 400;
for (let k = 0; k < dropped; k++) await pool.hermitian(expp, distance);
let keptAfterMinor = Infinity;
for (let attempt = 0; attempt < ATTEMPTS && !(keptAfterMinor < keptBound); attempt++) {
  await settle('minor');
  keptAfterMinor = process.memoryUsage().arrayBuffers - before;
}

// The count of small buffers for the collector comes back down once full collections have run: it neither
// grows with every job (a collection after every few jobs) nor falls below where it started.
await settle('full');
const external = externalCount();
const counted = 3000;
for (let k = 0; k < counted; k++) await pool.hermitian(expp, distance);
await sleep(20);
let externalDrift = Infinity;
for (let attempt = 0; attempt < ATTEMPTS && !(Math.abs(externalDrift) < driftBound); attempt++) {
  await settle('full');
  externalDrift = externalCount() - external;
}

await pool.close();
process.stdout.write(`${JSON.stringify({ hBytes, dropped, keptAfterMinor, counted, externalDrift, inline: pool.stats().inline })}\n`);
