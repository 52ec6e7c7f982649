// The README's distance-matrix kernel on hpair versus the same kernel on piscina (inputs passed per task),
// same inputs, same tiles, same run. `npm run bench:piscina [-- --sizes 500,1000,2000,4000 --dim 3]`
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { Piscina } from 'piscina';
import { Bench } from 'tinybench';
import { createPool, createSharedFloat64, tilesOf } from 'hpair';
import { mirrorBlock } from './distance-kernel.js';

const { values } = parseArgs({ options: { sizes: { type: 'string' }, dim: { type: 'string' } } });
const sizes = (values.sizes ?? '500,1000,2000,4000').split(',').map(Number);
const dim = Number(values.dim ?? '3');
const workers = availableParallelism();
const TILE = 64;

const pool = createPool({ workers });
const piscina = new Piscina({ filename: new URL('./piscina-distance-worker.js', import.meta.url).href, minThreads: workers, maxThreads: workers });
const rows: Record<string, string | number>[] = [];

for (const n of sizes) {
  const points = createSharedFloat64(n * dim);
  for (let v = 0; v < n * dim; v++) points[v] = Math.sin(Math.floor(v / dim) * 0.7 + (v % dim) * 1.3);
  const plainPoints = Float64Array.from(points); // what a piscina user holds
  const ours = createSharedFloat64(n * n);
  const theirs = new Float64Array(n * n);
  const tiles = tilesOf({ kind: 'triangle', n, tile: TILE });

  const bench = new Bench({ time: 2000, iterations: 5, warmupIterations: 1, warmupTime: 0 });
  bench.add('hpair', async () => {
    await pool.run({ module: new URL('./distance-kernel.js', import.meta.url), export: 'distances', space: { kind: 'triangle', n, tile: TILE }, buffers: { points, out: ours }, params: { n, dim } });
  });
  bench.add('piscina', async () => {
    await Promise.all(
      tiles.map(async ({ i0, i1, j0, j1 }) => {
        const block = (await piscina.run({ points: plainPoints, dim, i0, i1, j0, j1 })) as Float64Array;
        for (let i = i0; i < i1; i++) theirs.set(block.subarray((i - i0) * (j1 - j0), (i - i0) * (j1 - j0) + Math.min(j1, i + 1) - j0), i * n + j0);
        mirrorBlock(theirs, n, i0, i1, j0, j1);
      }),
    );
  });
  await bench.run();
  for (let v = 0; v < n * n; v++) if (ours[v] !== theirs[v]) throw new Error(`n = ${n}: results differ at ${v}`);
  const [hpairMs, piscinaMs] = bench.tasks.map((task) => (task.result.state === 'completed' ? task.result.latency.p50 : NaN));
  rows.push({ n, dim, tiles: tiles.length, 'hpair ms': hpairMs.toFixed(1), 'piscina ms': piscinaMs.toFixed(1), 'piscina / hpair': `${(piscinaMs / hpairMs).toFixed(2)}×` });
}
console.table(rows);
await pool.close();
await piscina.destroy();
