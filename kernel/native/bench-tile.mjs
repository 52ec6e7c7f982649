// Single-thread benchmark of the native kernel against numpy and scipy's zherk, in one run, alternating.
//
//   node kernel/native/bench-tile.mjs [--sizes 2048,4096] [--tile 240[,336…]] [--m M (default N)] [--reps 5] [--path avx2]
//                                     [--no-python] [--compensated]
//
// hpair: scanNonFinite over expp, then hermitianTile over every tile of the lower triangle, one thread.
// --compensated: also hermitianTileCompensated over the same tiles, in the same rounds, with its time as a multiple
// of the default's (the compensated mode's cost, measured under the same host load).
// numpy: (A/d) @ A.conj().T with A = expp[:-1, 1:] − expp[-1, 1:] formed outside the timed region.
// zherk: scipy.linalg.blas.zherk(1, A/sqrt(d), lower=1) with A/sqrt(d) formed outside the timed region.
// Python runs with OPENBLAS_NUM_THREADS=1 as a child process that times one call per request, so the three are
// measured turn by turn under the same host load. Useful GFLOP/s = 8·(N−1)·N/2·(M−1) / seconds.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { benchProblem } from './bench-problem.mjs';
import { cpus } from 'node:os';
import { createInterface } from 'node:readline';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const sizes = option('sizes', '2048,4096').split(',').map(Number);
const tiles = option('tile', '240').split(',').map(Number);
const reps = Number(option('reps', '5'));
const fixedM = option('m', undefined);
const path = option('path', 'avx2');
const python = !args.includes('--no-python');
const compensated = args.includes('--compensated');

const addon = createRequire(import.meta.url)(process.env.HPAIR_NATIVE_ADDON ?? './build/Release/hpair_native.node');

const PY = String.raw`
import sys, time, numpy as np
from scipy.linalg import blas
A = As = d = None
for line in sys.stdin:
    cmd, *rest = line.split()
    if cmd == 'size':
        N, M = int(rest[0]), int(rest[1])
        rng = np.random.default_rng(1)
        e = rng.uniform(-1, 1, (N, M)) + 1j * rng.uniform(-1, 1, (N, M))
        d = 0.5 + rng.random(M - 1)
        A = e[:-1, 1:] - e[-1, 1:]
        As = A / np.sqrt(d)
        print('ok', flush=True)
    elif cmd == 'numpy':
        t = time.perf_counter(); H = (A / d) @ A.conj().T; t = time.perf_counter() - t
        del H
        print(t, flush=True)
    elif cmd == 'zherk':
        t = time.perf_counter(); H = blas.zherk(1.0, As, lower=1); t = time.perf_counter() - t
        del H
        print(t, flush=True)
`;

function startPython() {
  const child = spawn('python3', ['-c', PY], { env: { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' }, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    async ask(line) {
      child.stdin.write(`${line}\n`);
      const { value, done } = await lines.next();
      if (done) throw new Error('python exited');
      return value;
    },
    close: () => child.stdin.end(),
  };
}

function problem(N, M) {
  const h = new Float64Array(new SharedArrayBuffer(16 * (N - 1) * (N - 1)));
  return { ...benchProblem(N, M), h };
}

function runHpair(N, M, { expp, distance, h }, tile, call = addon.hermitianTile) {
  const n = N - 1;
  const t = performance.now(), c = process.cpuUsage();
  if (addon.scanNonFinite(expp, 0, expp.length) >= 0) throw new Error('non-finite input');
  for (let i0 = 0; i0 < n; i0 += tile) {
    for (let j0 = 0; j0 <= i0; j0 += tile) call(path, expp, distance, h, N, M, i0, Math.min(n, i0 + tile), j0, Math.min(n, j0 + tile));
  }
  const used = process.cpuUsage(c);
  return { wall: (performance.now() - t) / 1000, cpu: (used.user + used.system) / 1e6 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const py = python ? startPython() : undefined;
console.log(`CPU: ${cpus()[0].model}; node ${process.version}; path ${path}; ${reps} reps, medians; ${addon.info().compiler}`);
console.log(`N | M | tile | hpair ms | GFLOP/s | CPU ms | GFLOP/s per CPU s | numpy ms | GFLOP/s | zherk ms | GFLOP/s | vs numpy | vs zherk${compensated ? ' | compensated ms | × default' : ''}`);
for (const N of sizes) {
  const M = fixedM === undefined ? N : Number(fixedM);
  const data = problem(N, M);
  const useful = (8 * (N - 1) * N) / 2 * (M - 1);
  if (py) await py.ask(`size ${N} ${M}`);
  for (const tile of tiles) runHpair(N, M, data, tile); // warm-up: scratch allocation, page faults in h
  if (compensated) for (const tile of tiles) runHpair(N, M, data, tile, addon.hermitianTileCompensated);
  const times = { numpy: [], zherk: [] };
  const cpuTimes = {};
  for (const tile of tiles) [times[tile], times[`c${tile}`], cpuTimes[tile]] = [[], [], []];
  for (let r = 0; r < reps; r++) {
    for (const tile of tiles) {
      const { wall, cpu } = runHpair(N, M, data, tile);
      times[tile].push(wall);
      cpuTimes[tile].push(cpu);
    }
    if (compensated) for (const tile of tiles) times[`c${tile}`].push(runHpair(N, M, data, tile, addon.hermitianTileCompensated).wall);
    if (py) {
      times.numpy.push(Number(await py.ask('numpy')));
      times.zherk.push(Number(await py.ask('zherk')));
    }
  }
  const [tn, tz] = [times.numpy, times.zherk].map((x) => (x.length ? median(x) : NaN));
  const gf = (t) => (useful / t / 1e9).toFixed(1);
  for (const tile of tiles) {
    const th = median(times[tile]), tcpu = median(cpuTimes[tile]);
    const tc = compensated ? median(times[`c${tile}`]) : NaN;
    console.log(
      `${N} | ${M} | ${tile} | ${(th * 1e3).toFixed(0)} | ${gf(th)} | ${(tcpu * 1e3).toFixed(0)} | ${gf(tcpu)} | ${(tn * 1e3).toFixed(0)} | ${gf(tn)} | ${(tz * 1e3).toFixed(0)} | ${gf(tz)} | ${(tn / th).toFixed(2)}× | ${(tz / th).toFixed(2)}×${compensated ? ` | ${(tc * 1e3).toFixed(0)} | ${(tc / th).toFixed(2)}×` : ''}`,
    );
  }
}
py?.close();
