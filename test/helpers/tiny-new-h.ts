// Run as a child process with --expose-gc by small-and-write-bound.test: what becomes of the new H of tiny jobs
// a caller drops. Prints one JSON line.
import { createPool } from 'hpair';
import { randomProblem } from './support.js';

const gc = (globalThis as { gc?: (options?: { type: 'minor' | 'major' }) => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
// V8 frees a dead buffer's memory on a background thread after the collection that found it dead; finalizers and
// the pool's count of new bytes run as tasks of their own.
const settle = async (type: 'minor' | 'major'): Promise<void> => {
  gc({ type });
  await sleep(100);
  gc({ type });
  await sleep(100);
};

const pool = createPool({ workers: 1 });
await pool.ready();
const { expp, distance } = randomProblem(64, 64, 41);
const hBytes = 16 * 63 * 63;
for (let k = 0; k < 20; k++) await pool.hermitian(expp, distance);

// Dropped at once: a young-generation collection alone must free them (nothing of the pool's may keep them).
await settle('minor');
const before = process.memoryUsage().arrayBuffers;
const dropped = 400;
for (let k = 0; k < dropped; k++) await pool.hermitian(expp, distance);
await settle('minor');
const keptAfterMinor = process.memoryUsage().arrayBuffers - before;

// The count of small buffers for the collector comes back down once full collections have run: it neither
// grows with every job (a collection after every few jobs) nor falls below where it started.
await settle('major');
const external = process.memoryUsage().external;
const counted = 3000;
for (let k = 0; k < counted; k++) await pool.hermitian(expp, distance);
await sleep(20);
await settle('major');
const externalDrift = process.memoryUsage().external - external;

await pool.close();
process.stdout.write(`${JSON.stringify({ hBytes, dropped, keptAfterMinor, counted, externalDrift, inline: pool.stats().inline })}\n`);
