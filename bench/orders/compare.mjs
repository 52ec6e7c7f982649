// Compares candidate summation orders of the native default (simulated by order-sim.c) with numpy's line, both
// against the exact oracle (test/helpers/exact-oracle.ts), on the inputs of bench/accuracy.ts (N rows, mixed-sign
// distance) over several draws. Each --c candidate is kc:chains:blocks_per_chunk:seq|pair (see order-sim.c);
// --hpair also checks that the first candidate gives the native kernel's bits. numpy runs with one BLAS thread. The
// candidate `zgemm-model` is test/helpers/zgemm-model.ts, the accuracy tests' stand-in for numpy: this is where its
// error is compared with numpy's own (a ratio near 1).
// Run after `node build.mjs`:
//   cc -O2 -ffp-contract=off bench/orders/order-sim.c -lm -o /tmp/order-sim
//   node bench/orders/compare.mjs --n 12 --m 1000,10000 --seeds 5 --sim /tmp/order-sim [--hpair] [--c 192:1:64:seq,192:2:8:seq]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accuracyProblem } from '../../dist/bench/accuracy-problem.js';
import { exactHermitian } from '../../dist/test/helpers/exact-oracle.js';
import { zgemmModel } from '../../dist/test/helpers/zgemm-model.js';

const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : fallback);
const N = Number(option('n', '12'));
const sizes = option('m', '1000,10000').split(',').map(Number);
const seeds = Number(option('seeds', '5'));
const sim = option('sim', '/tmp/order-sim');
const candidates = option('c', '192:1:64:seq,192:2:64:seq,128:2:96:seq,96:1:128:seq,64:1:192:pair,192:2:8:seq,192:2:16:seq,128:2:12:seq,96:1:16:seq,192:2:64:pair,128:2:96:pair').split(',');

// max |ΔH| / max |H| (the bench's figure), and the sum of squares of |ΔH| / max |H| over the entries: a per-draw
// maximum is one extreme of many rounding errors, so two orders of equal accuracy differ by tens of percent on a
// draw; the pooled root mean square over several draws compares their typical errors.
function relativeError(h, exact) {
  let error = 0, scale = 0, squares = 0;
  for (let x = 0; x < exact.length; x++) scale = Math.max(scale, Math.abs(exact[x]));
  for (let x = 0; x < exact.length; x++) {
    const e = Math.abs(h[x] - exact[x]);
    error = Math.max(error, e);
    squares += (e / scale) ** 2;
  }
  relativeError.squares = squares;
  return error / scale;
}

const PY = `
import sys, numpy as np
N, M = int(sys.argv[1]), int(sys.argv[2])
e = np.fromfile(sys.argv[3], dtype=np.complex128).reshape(N, M)
dist = np.fromfile(sys.argv[4], dtype=np.float64)
A = e[:-1, 1:] - e[-1, 1:]
H = (A / dist[1:]) @ A.conj().T
np.ascontiguousarray(H).tofile(sys.argv[5])
`;
const dir = mkdtempSync(join(tmpdir(), 'hpair-orders-'));
const read = (file) => new Float64Array(new Uint8Array(readFileSync(file)).buffer);
let pool, hpair;
try {
  if (args.includes('--hpair')) {
    hpair = await import('../../dist/index.js');
    pool = hpair.createPool({ workers: 1, kernel: option('kernel', 'native-avx512') });
  }
  console.log(['M', 'seed', 'numpy', ...candidates, ...(pool ? ['hpair=sim0'] : [])].join('\t'));
  const sums = new Map();
  for (const M of sizes) {
    for (let s = 0; s < seeds; s++) {
      const seed = M + N + 1000003 * s;
      const problem = accuracyProblem(N, M, seed), expp = problem.expp.data, distance = problem.distance;
      const exact = exactHermitian(expp, distance, N, M).data;
      writeFileSync(join(dir, 'e.bin'), expp);
      writeFileSync(join(dir, 'd.bin'), distance);
      execFileSync('python3', ['-c', PY, String(N), String(M), join(dir, 'e.bin'), join(dir, 'd.bin'), join(dir, 'np.bin')], {
        env: { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1' },
      });
      const numpy = relativeError(read(join(dir, 'np.bin')), exact);
      const np2 = sums.get(`${M} numpy`) ?? { squares: 0, max: 0 };
      np2.squares += relativeError.squares, np2.max = Math.max(np2.max, numpy);
      sums.set(`${M} numpy`, np2);
      const row = [M, s, numpy.toExponential(2)];
      let first;
      for (const c of candidates) {
        let h;
        if (c === 'zgemm-model') h = zgemmModel({ rows: N, cols: M, data: expp }, distance);
        else {
          const [kc, chains, cb, comb] = c.split(':');
          execFileSync(sim, [N, M, join(dir, 'e.bin'), join(dir, 'd.bin'), join(dir, 'h.bin'), kc, chains, cb, comb].map(String));
          h = read(join(dir, 'h.bin'));
          first ??= h;
        }
        const error = relativeError(h, exact);
        const ratio = error / numpy;
        row.push(ratio.toFixed(2));
        const key = `${M} ${c}`;
        const acc = sums.get(key) ?? { max: 0, sum: 0, n: 0, squares: 0, pooled: 0 };
        acc.max = Math.max(acc.max, ratio), acc.sum += ratio, acc.n++;
        acc.squares += relativeError.squares, acc.pooled = Math.max(acc.pooled, error);
        sums.set(key, acc);
      }
      if (pool) {
        const e = hpair.createComplexMatrix(N, M);
        e.data.set(expp);
        const d = new Float64Array(new SharedArrayBuffer(8 * M));
        d.set(distance);
        const h = (await pool.hermitian(e, d)).data;
        { let bad = 0, ex = ""; for (let x = 0; x < h.length; x++) if (h[x] !== first[x]) { bad++; if (!ex) ex = `${x}:${h[x]} vs ${first[x]}`; } row.push(bad ? `${bad} differ ${ex}` : "same"); }
      }
      console.log(row.join('\t'));
    }
  }
  console.log('\nerror ratio to numpy per M: worst draw / mean over draws / max over all draws / pooled RMS');
  console.log(['M', ...candidates].join('\t'));
  for (const M of sizes) {
    const np2 = sums.get(`${M} numpy`);
    console.log([M, ...candidates.map((c) => {
      const a = sums.get(`${M} ${c}`);
      return `${a.max.toFixed(2)}/${(a.sum / a.n).toFixed(2)}/${(a.pooled / np2.max).toFixed(2)}/${Math.sqrt(a.squares / np2.squares).toFixed(2)}`;
    })].join('\t'));
  }
} finally {
  await pool?.close();
  rmSync(dir, { recursive: true, force: true });
}
