// The accuracy table beside the speed table: for M = 10^3 … 10^6 at a small N, every kernel this machine runs in
// each accuracy it offers, and numpy's line `(A / d) @ A.conj().T`, against an exact oracle computed here, with
// max |ΔH| / max |H| and the time of each.
//
//   npm run bench:accuracy -- [--n 6] [--m 1000,10000,100000,1000000] [--workers 2] [--reps 3] [--out bench-accuracy]
//                             [--no-python]
//
// Inputs (seeded): unit phases × amplitudes in [0.5, 2] for expp, distance of mixed sign with |d| in [0.5, 2].
// Oracle: test/helpers/exact-oracle.ts, BigInt fixed point: differences and products exact, each 1/d rounded to
// 2^−160 relative, the sum rounded once to a double (exact to far below one ulp of H). numpy runs in a python3
// child with its BLAS limited to --workers threads; A and d are formed outside its timed region (as hpair's
// inputs are ready-made for it). Times are medians of --reps runs. Writes OUT.json and OUT.md.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  createPool,
  encodeComplexMatrixNpy,
  encodeFloat64VectorNpy,
  kernelSupported,
  parseComplexMatrixNpy,
  type Accuracy,
  type KernelVariant,
} from 'hpair';
import { exactHermitian } from '../test/helpers/exact-oracle.js';
import { KERNEL_VARIANTS } from '../kernel/kernel-names.js';
import { accuracyProblem } from './accuracy-problem.js';
import { hostFacts, hostLine } from './host.js';
import { markdownTable, progress, textTable } from './stats.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const N = Number(option('n', '6'));
const sizes = option('m', '1000,10000,100000,1000000').split(',').map(Number);
const workers = Number(option('workers', '2'));
const reps = Number(option('reps', '3'));
const out = option('out', 'bench-accuracy');
const python = !args.includes('--no-python');
if (!(N >= 2) || sizes.some((m) => !(m >= 2)) || !(workers >= 1) || !(reps >= 1)) throw new Error('bench:accuracy: bad --n, --m, --workers or --reps');

const PY = String.raw`
import json, sys, time
import numpy as np
for line in sys.stdin:
    req = json.loads(line)
    try:
        e = np.load(req['expp'])
        dist = np.load(req['distance'])
        A = e[:-1, 1:] - e[-1, 1:]
        d = dist[1:]
        times = []
        for _ in range(req['reps']):
            t = time.perf_counter(); H = (A / d) @ A.conj().T; times.append(time.perf_counter() - t)
        np.save(req['out'], np.ascontiguousarray(H))
        print(json.dumps({'seconds': times, 'numpy': np.__version__}), flush=True)
    except Exception as error:
        print(json.dumps({'error': repr(error)}), flush=True)
`;

interface PythonAnswer {
  readonly seconds?: number[];
  readonly numpy?: string;
  readonly error?: string;
}

interface Python {
  ask(request: object): Promise<PythonAnswer>;
  close(): void;
}

function startPython(): Python {
  const threads = String(workers);
  const child = spawn('python3', ['-c', PY], {
    env: { ...process.env, OPENBLAS_NUM_THREADS: threads, OMP_NUM_THREADS: threads, MKL_NUM_THREADS: threads },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  let failed: Error | undefined;
  child.on('error', (error) => (failed = error));
  return {
    async ask(request) {
      if (failed) throw failed;
      child.stdin.write(`${JSON.stringify(request)}\n`);
      const { value, done } = await lines.next();
      if (done) throw failed ?? new Error('python3 exited (is numpy installed?)');
      return JSON.parse(value as string) as PythonAnswer;
    },
    close: () => child.stdin.end(),
  };
}

/** max |ΔH| / max |H|, and the root mean square of |ΔH| / max |H| over every entry and part: the typical error,
 * which one extreme entry does not decide (a single maximum moves by tens of percent from draw to draw). */
function errors(h: Float64Array, exact: Float64Array): { relativeError: number; rmsError: number } {
  let error = 0;
  let scale = 0;
  let squares = 0;
  for (let x = 0; x < exact.length; x++) {
    error = Math.max(error, Math.abs(h[x] - exact[x]));
    scale = Math.max(scale, Math.abs(exact[x]));
    squares += (h[x] - exact[x]) ** 2;
  }
  return { relativeError: error / scale, rmsError: Math.sqrt(squares / exact.length) / scale };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Row {
  readonly M: number;
  readonly who: string;
  readonly accuracy: Accuracy | 'numpy';
  readonly relativeError: number;
  readonly rmsError: number;
  readonly ms: number;
}

const variants = KERNEL_VARIANTS.filter(kernelSupported);
const runs: Array<{ kernel: KernelVariant; accuracy: Accuracy }> = variants.flatMap((kernel) => [
  { kernel, accuracy: 'default' as const },
  ...(kernel === 'js' ? [] : [{ kernel, accuracy: 'compensated' as const }]),
]);
const pools = new Map(variants.map((kernel) => [kernel, createPool({ workers, kernel })]));
const py = python ? startPython() : undefined;
const dir = mkdtempSync(join(tmpdir(), 'hpair-bench-accuracy-'));
const rows: Row[] = [];
let numpyVersion: string | undefined;
let pythonNote: string | undefined;
try {
  await Promise.all([...pools.values()].map((pool) => pool.ready()));
  for (const M of sizes) {
    const { expp, distance } = accuracyProblem(N, M, M + N);
    progress(`M = ${M}: exact oracle…`);
    const started = performance.now();
    const exact = exactHermitian(expp.data, distance, N, M).data;
    const oracleMs = performance.now() - started;
    for (const { kernel, accuracy } of runs) {
      progress(`M = ${M}: ${kernel} ${accuracy}…`);
      const pool = pools.get(kernel)!;
      const times: number[] = [];
      let h: Float64Array | undefined;
      for (let r = 0; r < reps; r++) {
        const t = performance.now();
        h = (await pool.hermitian(expp, distance, { accuracy })).data;
        times.push(performance.now() - t);
      }
      rows.push({ M, who: kernel, accuracy, ...errors(h!, exact), ms: median(times) });
    }
    if (py && pythonNote === undefined) {
      writeFileSync(join(dir, 'e.npy'), encodeComplexMatrixNpy(expp));
      writeFileSync(join(dir, 'd.npy'), encodeFloat64VectorNpy(distance));
      progress(`M = ${M}: numpy…`);
      const answer = await py.ask({ expp: join(dir, 'e.npy'), distance: join(dir, 'd.npy'), out: join(dir, 'h.npy'), reps }).catch((error: Error): PythonAnswer => ({ error: error.message }));
      if (answer.error !== undefined || answer.seconds === undefined) pythonNote = `numpy not measured: ${answer.error ?? 'no answer'}`;
      else {
        numpyVersion = answer.numpy;
        const h = parseComplexMatrixNpy(readFileSync(join(dir, 'h.npy'))).data;
        rows.push({ M, who: 'numpy', accuracy: 'numpy', ...errors(h, exact), ms: median(answer.seconds) * 1000 });
      }
    }
    progress(`M = ${M}: done (oracle ${(oracleMs / 1000).toFixed(1)} s)\n`);
  }
} finally {
  py?.close();
  await Promise.all([...pools.values()].map((pool) => pool.close()));
  rmSync(dir, { recursive: true, force: true });
}

const host = hostFacts();
const header = ['M', 'kernel', 'accuracy', 'max |ΔH| / max |H|', 'vs numpy', 'rms |ΔH| / max |H|', 'vs numpy', 'ms'];
const table = rows.map((row) => {
  const numpy = rows.find((other) => other.M === row.M && other.who === 'numpy');
  return [
    String(row.M),
    row.who,
    row.accuracy === 'numpy' ? '(A / d) @ A.conj().T' : row.accuracy,
    row.relativeError.toExponential(2),
    numpy === undefined || row.who === 'numpy' ? '' : `${(row.relativeError / numpy.relativeError).toFixed(2)}×`,
    row.rmsError.toExponential(2),
    numpy === undefined || row.who === 'numpy' ? '' : `${(row.rmsError / numpy.rmsError).toFixed(2)}×`,
    row.ms.toFixed(1),
  ];
});
const notes = [
  `N = ${N}, ${workers} workers (numpy: BLAS limited to ${workers} threads${numpyVersion ? `, numpy ${numpyVersion}` : ''}), median of ${reps} runs.`,
  'Oracle: exact (BigInt fixed point, each 1/d to 2^-160 relative, rounded once).',
  ...(pythonNote ? [pythonNote] : python ? [] : ['numpy not measured (--no-python).']),
];
const command = ['npm run bench:accuracy --', ...args].join(' ');
console.log(`\n${hostLine(host)}\n${notes.join('\n')}\n\n${textTable(header, table)}`);
writeFileSync(`${out}.json`, `${JSON.stringify({ command, host, N, workers, reps, numpy: numpyVersion ?? null, notes, rows }, null, 2)}\n`);
writeFileSync(`${out}.md`, `# hpair accuracy\n\n\`${command}\`\n\n${hostLine(host)}\n\n${notes.join(' ')}\n\n${markdownTable(header, table)}\n`);
console.log(`wrote ${out}.json and ${out}.md`);
