// Compares the single-thread speed of native addon builds in one process, turn by turn, by CPU time (the host may
// be shared: CPU time excludes the time the thread waits for a core, wall time does not).
//   node bench/orders/tile-cpu.mjs --path avx512 --sizes 2048,4096 [--m M (default N)] --rounds 5 base=/tmp/a.node new=/tmp/b.node
import { createRequire } from 'node:module';
import { benchProblem } from '../../kernel/native/bench-problem.mjs';

const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : fallback);
const path = option('path', 'avx512');
const sizes = option('sizes', '2048,4096').split(',').map(Number);
const rounds = Number(option('rounds', '5'));
const tile = Number(option('tile', '240'));
const require = createRequire(import.meta.url);
const builds = args.filter((a) => a.includes('=')).map((a) => { const [name, file] = a.split('='); return { name, addon: require(file) }; });

const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
for (const N of sizes) {
  const M = option('m', undefined) === undefined ? N : Number(option('m')), n = N - 1;
  const { expp, distance } = benchProblem(N, M);
  const hs = builds.map(() => new Float64Array(new SharedArrayBuffer(16 * n * n)));
  const run = (b, x) => {
    const t = cpu();
    for (let i0 = 0; i0 < n; i0 += tile)
      for (let j0 = 0; j0 <= i0; j0 += tile) b.addon.hermitianTile(path, expp, distance, hs[x], N, M, i0, Math.min(n, i0 + tile), j0, Math.min(n, j0 + tile));
    return cpu() - t;
  };
  builds.forEach((b, x) => run(b, x));
  const times = builds.map(() => []);
  for (let r = 0; r < rounds; r++) builds.forEach((b, x) => times[x].push(run(b, x)));
  const min = (xs) => Math.min(...xs);
  const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const same = hs.every((h) => h.every((v, i) => v === hs[0][i]));
  console.log(`N = ${N}, M = ${M}: ` + builds.map((b, x) => `${b.name} min ${min(times[x]).toFixed(3)} s med ${med(times[x]).toFixed(3)} s (${(min(times[x]) / min(times[0])).toFixed(3)}× min, ${(med(times[x]) / med(times[0])).toFixed(3)}× med)`).join('; ') + (same ? '; same H' : '; H differs'));
}
