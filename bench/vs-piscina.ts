// docs/api.md's distance-matrix kernel (n points in `dim` dimensions, 64×64 tiles of the lower triangle,
// mirrored) on hpair against the same kernel on piscina, same inputs, same tiles, interleaved in one run,
// all results checked identical. piscina runs it two ways:
//
//   clone    one task per tile, the points passed to every task (structured clone copies them) and the
//            tile's distances returned and placed by the main thread: how piscina is usually called
//   shared   the fair one: the points and the output as SharedArrayBuffers handed to piscina once per job,
//            one task per worker computing a share of the tiles straight into the shared output, either
//            strided (task w takes tiles w, w + W, …) or claimed from an Atomics counter as hpair does
//
//   npm run bench:piscina [-- --sizes 500,1000,2000,4000 --dim 3 --min-samples 10 --time 3 --out FILE]
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { Piscina } from 'piscina';
import { createPool, createSharedFloat64, tilesOf } from 'hpair';
import { mirrorBlock } from './distance-kernel.js';
import { cpuSnapshot, hostFacts, hostLine, othersShare } from './host.js';
import { interleaved, type InterleavedEntry } from './interleave.js';
import type { SharedDistanceTask } from './piscina-shared-worker.js';
import { markdownTable, ms, progress, ratio, summarize, textTable, type Summary } from './stats.js';

const HELP = `npm run bench:piscina [-- options]      (or: node dist/bench/vs-piscina.js [options])

  --sizes LIST       numbers of points n                     (default: 500,1000,2000,4000)
  --dim D            dimensions of each point                (default: 3)
  --workers W        threads for both pools                  (default: ${availableParallelism()}, the cores)
  --min-samples N    samples per entry at least              (default: 10)
  --time S           sample each size for at least S seconds (default: 3)
  --out FILE         JSON record                             (default: bench-results-piscina.json)
  --markdown         also print the table as Markdown        (default: off)
  -h, --help         this text
`;

function options() {
  try {
    return parseArgs({
      strict: true,
      allowPositionals: false,
      options: {
        sizes: { type: 'string' },
        dim: { type: 'string' },
        workers: { type: 'string' },
        'min-samples': { type: 'string' },
        time: { type: 'string' },
        out: { type: 'string' },
        markdown: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (error) {
    process.stderr.write(`bench:piscina: ${error instanceof Error ? error.message.split('\n')[0] : String(error)} (see --help)\n`);
    process.exit(2);
  }
}
const values = options();
if (values.help === true) {
  process.stdout.write(HELP);
  process.exit(0);
}
function integers(flag: string, text: string): number[] {
  const list = text.split(',').map(Number);
  if (list.some((value) => !Number.isSafeInteger(value) || value < 1)) {
    process.stderr.write(`bench:piscina: ${flag} wants positive integers, got '${text}' (see --help)\n`);
    process.exit(2);
  }
  return list;
}
const sizes = integers('--sizes', values.sizes ?? '500,1000,2000,4000');
const [dim] = integers('--dim', values.dim ?? '3');
const [workers] = integers('--workers', values.workers ?? String(availableParallelism()));
const [minSamples] = integers('--min-samples', values['min-samples'] ?? '10');
const timeSeconds = Number(values.time ?? '3');
const outFile = values.out ?? 'bench-results-piscina.json';
const TILE = 64;

const host = hostFacts();
progress(`host: ${hostLine(host)}`);
const pool = createPool({ workers });
const cloning = new Piscina({ filename: new URL('./piscina-distance-worker.js', import.meta.url).href, minThreads: workers, maxThreads: workers });
const sharing = new Piscina({ filename: new URL('./piscina-shared-worker.js', import.meta.url).href, minThreads: workers, maxThreads: workers });
await pool.ready();

interface Result {
  n: number;
  tiles: number;
  stats: Record<string, Summary>;
  /** Share of the cores other processes used while this size was measured. */
  othersCpu?: number;
}
const results: Result[] = [];
const kernelModule = new URL('./distance-kernel.js', import.meta.url);

for (const n of sizes) {
  const points = createSharedFloat64(n * dim);
  for (let v = 0; v < n * dim; v++) points[v] = Math.sin(Math.floor(v / dim) * 0.7 + (v % dim) * 1.3);
  const plainPoints = Float64Array.from(points); // what a piscina user usually holds
  const outputs = { hpair: createSharedFloat64(n * n), clone: new Float64Array(n * n), strided: createSharedFloat64(n * n), dynamic: createSharedFloat64(n * n) };
  const counter = new Int32Array(new SharedArrayBuffer(4));
  const tiles = tilesOf({ kind: 'triangle', n, tile: TILE });
  const share = (out: Float64Array, dynamic: boolean): Promise<unknown> => {
    if (dynamic) Atomics.store(counter, 0, 0);
    return Promise.all(
      Array.from({ length: workers }, (_, part) => {
        const task: SharedDistanceTask = { points, out, n, dim, tile: TILE, part, parts: workers, ...(dynamic ? { counter } : {}) };
        return sharing.run(task);
      }),
    );
  };
  const entry = (what: string, fn: () => Promise<unknown>): InterleavedEntry => ({
    what,
    side: what,
    samples: [],
    fn: async () => {
      await fn();
      return undefined;
    },
  });
  const entries = [
    entry('hpair', () =>
      pool.run({ module: kernelModule, export: 'distances', space: { kind: 'triangle', n, tile: TILE }, buffers: { points, out: outputs.hpair }, params: { n, dim } }),
    ),
    entry('piscina clone', () =>
      Promise.all(
        tiles.map(async ({ i0, i1, j0, j1 }) => {
          const block = (await cloning.run({ points: plainPoints, dim, i0, i1, j0, j1 })) as Float64Array;
          const theirs = outputs.clone;
          for (let i = i0; i < i1; i++) theirs.set(block.subarray((i - i0) * (j1 - j0), (i - i0) * (j1 - j0) + Math.min(j1, i + 1) - j0), i * n + j0);
          mirrorBlock(theirs, n, i0, i1, j0, j1);
        }),
      ),
    ),
    entry('piscina shared, strided', () => share(outputs.strided, false)),
    entry('piscina shared, dynamic', () => share(outputs.dynamic, true)),
  ];
  const before = cpuSnapshot([]);
  await interleaved(`n = ${n}`, entries, { minSamples, timeSeconds, settleMs: 0 });
  const othersCpu = othersShare(before, cpuSnapshot([]));
  for (const [name, out] of Object.entries(outputs)) {
    for (let v = 0; v < n * n; v++) if (out[v] !== outputs.hpair[v]) throw new Error(`n = ${n}: ${name} differs from hpair at ${v}`);
  }
  const stats = Object.fromEntries(entries.map((e) => [e.what, summarize(e.samples)]));
  results.push({ n, tiles: tiles.length, stats, othersCpu });
  const h = stats.hpair.median;
  progress(
    `n = ${n}: hpair ${ms(h)} ms; ` +
      entries
        .slice(1)
        .map((e) => `${e.what} ${ms(stats[e.what].median)} ms (${ratio(stats[e.what].median / h)})`)
        .join(', '),
  );
}
await pool.close();
await cloning.destroy();
await sharing.destroy();

const header = ['n', 'tiles', 'hpair ms', 'piscina clone ms', 'piscina shared strided ms', 'piscina shared dynamic ms', 'clone / hpair', 'strided / hpair', 'dynamic / hpair', 'samples', 'others\' CPU'];
const cell = (s: Summary): string => `${ms(s.median)} (${ms(s.p25)}–${ms(s.p75)})`;
const rows = results.map(({ n, tiles, stats, othersCpu }) => {
  const h = stats.hpair.median;
  return [
    String(n),
    String(tiles),
    cell(stats.hpair),
    cell(stats['piscina clone']),
    cell(stats['piscina shared, strided']),
    cell(stats['piscina shared, dynamic']),
    ratio(stats['piscina clone'].median / h),
    ratio(stats['piscina shared, strided'].median / h),
    ratio(stats['piscina shared, dynamic'].median / h),
    Object.values(stats)
      .map((s) => s.samples)
      .join('/'),
    othersCpu === undefined ? '' : `${(othersCpu * 100).toFixed(0)} %`,
  ];
});
process.stdout.write(
  `hpair vs piscina — distance matrix, dim ${dim}, ${TILE}×${TILE} tiles, ${workers} workers each — ${hostLine(host)}\n` +
    `${host.date}, hpair ${host.commit?.slice(0, 12) ?? '(no git)'}; median ms (p25–p75); ratio = piscina median / hpair median;\n` +
    `samples = hpair/clone/strided/dynamic; others' CPU = share of the cores other processes used meanwhile\n\n` +
    `${textTable(header, rows)}\n${values.markdown === true ? `\n${markdownTable(header, rows)}\n` : ''}`,
);
writeFileSync(
  outFile,
  `${JSON.stringify(
    {
      command: ['node', 'dist/bench/vs-piscina.js', ...process.argv.slice(2)].join(' '),
      host,
      dim,
      tile: TILE,
      workers,
      spread: 'p25–p75',
      results: results.map(({ n, tiles, stats, othersCpu }) => ({ n, tiles, othersCpu, ...stats })),
    },
    null,
    2,
  )}\n`,
);
process.stderr.write(`results written to ${outFile}\n`);
