// How soon dropped results give their memory back, and what a fresh page costs: the measurements behind
// docs/services.md's "Memory". `npm run bench:release`; `HPAIR_NATIVE_ADDON=/nonexistent npm run bench:release` runs
// it without the native addon (the ballast fallback of workers/gc-weight.ts).
//
//   sab-drop    64 MiB SharedArrayBuffers made and dropped one at a time on this thread, never touched: how
//               many V8 collected meanwhile (it does not count their bytes, so none, unless something else runs)
//   new-h-64    3 rounds of 5000 jobs at N = M = 64, a new H each, dropped: median ms and RSS after each round
//   new-h-2048  16 jobs at N = M = 2048 on 2 workers, a new H each, dropped: median ms and RSS at the end
//   page-fault  the first touch of each 4 KiB page of a fresh 64 MiB buffer (no huge-page advice): µs per page
//   out-pages   N = M = 2048 on 2 workers into a reused `out` from createComplexMatrix and from
//               allocateComplexMatrix (huge pages where the addon loads), alternating job by job: median ms of each
import { allocateComplexMatrix, createComplexMatrix, createPool, demoProblem } from 'hpair';
import { hostFacts, hostLine } from './host.js';
import { ms, progress, summarize } from './stats.js';

const sleep = (milliseconds: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, milliseconds));
const rssMB = (): number => process.memoryUsage().rss / 2 ** 20;
let sink = 0;

async function sabDrop(): Promise<string> {
  let collected = 0;
  const registry = new FinalizationRegistry<number>(() => collected++);
  const made = 20;
  for (let k = 0; k < made; k++) {
    registry.register(new SharedArrayBuffer(64 * 2 ** 20), k);
    await sleep(20); // finalizers run as tasks of their own
  }
  return `${collected} of ${made} collected`;
}

async function newH(n: number, workers: number, jobs: number, rounds: number): Promise<string[]> {
  const pool = createPool({ workers });
  await pool.ready();
  const { expp, distance } = demoProblem(n, n);
  const lines: string[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      const times: number[] = [];
      for (let k = 0; k < jobs; k++) {
        const started = performance.now();
        sink += (await pool.hermitian(expp, distance)).data[0];
        times.push(performance.now() - started);
      }
      lines.push(`round ${round}: ${jobs} jobs, median ${ms(summarize(times).median)} ms, RSS ${rssMB().toFixed(0)} MB`);
    }
  } finally {
    await pool.close();
  }
  return lines;
}

function pageFault(): string {
  const bytes = 64 * 2 ** 20;
  const perPage: number[] = [];
  for (let round = 0; round < 5; round++) {
    const view = new Uint8Array(new SharedArrayBuffer(bytes));
    const started = performance.now();
    for (let at = 0; at < bytes; at += 4096) view[at] = 1;
    perPage.push(((performance.now() - started) * 1000) / (bytes / 4096));
    sink += view[bytes - 4096];
  }
  return `${summarize(perPage).median.toFixed(2)} µs per 4 KiB page (median of 5 buffers of 64 MiB)`;
}

async function outPages(n: number, workers: number, rounds: number): Promise<string> {
  const pool = createPool({ workers });
  await pool.ready();
  const { expp, distance } = demoProblem(n, n);
  const outs = [createComplexMatrix(n - 1, n - 1), await allocateComplexMatrix(n - 1, n - 1)];
  const times: number[][] = [[], []];
  try {
    for (const out of outs) await pool.hermitian(expp, distance, { out }); // first touch, outside the samples
    for (let round = 0; round < rounds; round++) {
      for (const which of round % 2 === 0 ? [0, 1] : [1, 0]) {
        const started = performance.now();
        sink += (await pool.hermitian(expp, distance, { out: outs[which] })).data[0];
        times[which].push(performance.now() - started);
      }
    }
  } finally {
    await pool.close();
  }
  const [plain, allocated] = times.map((samples) => summarize(samples).median);
  return `${rounds} jobs each: createComplexMatrix out ${ms(plain)} ms, allocateComplexMatrix out ${ms(allocated)} ms (${(plain / allocated).toFixed(2)}×)`;
}

process.stdout.write(`hpair bench:release — ${hostLine(hostFacts())}; native addon ${process.env.HPAIR_NATIVE_ADDON ? `from ${process.env.HPAIR_NATIVE_ADDON}` : 'as built'}\n`);
progress('sab-drop');
process.stdout.write(`sab-drop     ${await sabDrop()}\n`);
progress('new-h-64');
for (const line of await newH(64, 2, 5000, 3)) process.stdout.write(`new-h-64     ${line}\n`);
progress('new-h-2048');
for (const line of await newH(2048, 2, 16, 1)) process.stdout.write(`new-h-2048   ${line}\n`);
progress('page-fault');
process.stdout.write(`page-fault   ${pageFault()}\n`);
progress('out-pages');
process.stdout.write(`out-pages    ${await outPages(2048, 2, 16)}\n`);
process.stdout.write(`(checksum ${sink})\n`);
