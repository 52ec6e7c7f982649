// Compares two builds of hpair through the pool (the whole job: packing, tiles, workers), turn by turn in one process,
// by median wall time: e.g. a checkout of an earlier commit (built with `node build.mjs` and its addon) against this
// one. Turns alternate, so a host whose load drifts moves both alike; quote the ratio, not the times.
//   node bench/orders/pool-ab.mjs --kernel native-avx512 --n 2048 [--m M (default N)] --workers 2 --rounds 7 base=/path/to/old/dist new=dist
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : fallback);
const kernel = option('kernel', 'native-avx512');
const N = Number(option('n', '2048'));
const M = Number(option('m', String(N)));
const workers = Number(option('workers', '2'));
const rounds = Number(option('rounds', '7'));
const builds = args.filter((a) => a.includes('=')).map((a) => { const [name, dir] = a.split('='); return { name, dir }; });
if (builds.length < 2) throw new Error('name two builds: NAME=DIST_DIR NAME=DIST_DIR');

const mods = await Promise.all(builds.map(({ dir }) => import(pathToFileURL(resolve(dir, 'index.js')).href)));
const expp = mods[0].createComplexMatrix(N, M);
for (let x = 0; x < 2 * N * M; x++) expp.data[x] = Math.sin(x * 0.37) + 0.1;
const distance = new Float64Array(new SharedArrayBuffer(8 * M));
for (let m = 0; m < M; m++) distance[m] = (1 + (m % 7) * 0.1) * (m % 2 ? -1 : 1);
const pools = mods.map((mod) => mod.createPool({ workers, kernel, inlineFlops: 0 }));
try {
  for (const pool of pools) await pool.hermitian(expp, distance);
  const times = builds.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (let b = 0; b < pools.length; b++) {
      const t = performance.now();
      await pools[b].hermitian(expp, distance);
      times[b].push(performance.now() - t);
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const first = median(times[0]);
  console.log(`${kernel}, N = ${N}, M = ${M}, ${workers} workers, medians of ${rounds}: ` + builds.map((b, x) => `${b.name} ${median(times[x]).toFixed(1)} ms (${(median(times[x]) / first).toFixed(3)}×)`).join(', '));
} finally {
  await Promise.all(pools.map((pool) => pool.close()));
}
