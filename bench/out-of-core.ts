// Out of core against in memory: `hpair compute` with --max-memory against `hpair compute` at the same N, each
// a fresh process timed end to end (reading the inputs, computing, writing H, syncing), in interleaved rounds
// (in memory, then each budget, round after round) so that a busy host slows every variant alike; medians of wall
// time and of CPU time (every thread; less swayed by other tenants of a shared host), peak RSS, same bytes.
//
//   npm run bench:ooc                     quick: N = M = 2048, budgets a quarter and a half of H
//   npm run bench:ooc -- --full           N = M ∈ {2048, 8192}
//   options: --sizes 2048,4096  --budgets 0.25,0.5,1 (fractions of H's 16·(N−1)² bytes)  --rounds 3
//            --workers W  --kernel K  --dir DIR (where inputs and outputs go; default a temp dir)  --out FILE
//   npm run bench:ooc -- --past-2-32      one run past 2^32 values of H: N = 46400, M = 64 (H is 32 GiB on disk),
//                                         `hpair compute` with no --max-memory (out of core by itself, at its
//                                         default budget), then sampled entries checked against the sum itself;
//                                         needs about 33 GiB free where --dir points (checked first)
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, readSync, closeSync, statSync, statfsSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { demoProblem, encodeComplexMatrixNpy, encodeFloat64VectorNpy } from 'hpair';

const { values } = parseArgs({
  options: {
    full: { type: 'boolean' },
    sizes: { type: 'string' },
    budgets: { type: 'string' },
    rounds: { type: 'string' },
    workers: { type: 'string' },
    kernel: { type: 'string' },
    dir: { type: 'string' },
    out: { type: 'string' },
    'past-2-32': { type: 'boolean' },
  },
});
const list = (text: string): number[] => text.split(',').map(Number);
const sizes = values.sizes !== undefined ? list(values.sizes) : values.full === true ? [2048, 8192] : [2048];
const budgets = values.budgets !== undefined ? list(values.budgets) : [0.25, 0.5];
const rounds = Number(values.rounds ?? 3);
const outFile = values.out ?? 'bench-results-ooc.json';
const cli = fileURLToPath(new URL('../cli.js', import.meta.url));
const extra = [...(values.workers === undefined ? [] : ['--workers', values.workers]), ...(values.kernel === undefined ? [] : ['--kernel', values.kernel])];
const MiB = 2 ** 20;

/** The CPU as /proc/cpuinfo names it (family and model too: virtual machines often say only "AMD EPYC"). */
function cpuName(): string {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const field = (name: string): string | undefined => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(info)?.[1];
    return `${field('model name') ?? cpus()[0]?.model}, family ${field('cpu family')} model ${field('model')}, ${availableParallelism()} vCPUs`;
  } catch {
    return `${cpus()[0]?.model ?? 'unknown'}, ${availableParallelism()} vCPUs`;
  }
}

interface Run {
  seconds: number;
  /** CPU time of the whole process (every thread), user + system: less swayed than wall time by other tenants. */
  cpuSeconds: number;
  peakRssMB: number;
  summary: Record<string, unknown>;
}

/** One `hpair compute` in a fresh process: wall time from spawn to exit, and the process's peak RSS. */
function compute(args: string[]): Promise<Run> {
  // The child reports its own peak RSS as it exits (worker threads included), from /proc: getrusage's maxRSS
  // survives exec, so a child of this (big) process would report this process's size.
  const hook = `import { readFileSync } from 'node:fs';
process.on('exit', () => {
  const kb = /VmHWM:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? process.resourceUsage().maxRSS;
  const { user, system } = process.cpuUsage();
  process.stderr.write('maxrss ' + kb + ' cpu ' + (user + system) + '\\n');
});`;
  const rss = `data:text/javascript,${encodeURIComponent(hook)}`;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['--import', rss, cli, 'compute', ...args, ...extra, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      if (code !== 0) return reject(new Error(`hpair compute ${args.join(' ')} exited ${code}: ${stderr}`));
      const kb = Number(/maxrss (\d+)/.exec(stderr)?.[1] ?? Number.NaN);
      const cpu = Number(/ cpu (\d+)/.exec(stderr)?.[1] ?? Number.NaN) / 1e6;
      resolve({ seconds, cpuSeconds: cpu, peakRssMB: kb / 1024, summary: JSON.parse(stdout) as Record<string, unknown> });
    });
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Whether two files hold the same bytes (read in 16 MiB pieces). */
function sameFile(a: string, b: string): boolean {
  if (statSync(a).size !== statSync(b).size) return false;
  const [fa, fb] = [openSync(a, 'r'), openSync(b, 'r')];
  const [x, y] = [Buffer.alloc(16 * MiB), Buffer.alloc(16 * MiB)];
  try {
    for (let at = 0; ; at += x.length) {
      const n = readSync(fa, x, 0, x.length, at);
      if (readSync(fb, y, 0, y.length, at) !== n || !x.subarray(0, n).equals(y.subarray(0, n))) return false;
      if (n === 0) return true;
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

/**
 * H past 2^32 values (a typed array's limit, and far past the 4 GiB one buffer may span when handed to a worker),
 * computed the way a user would: no --max-memory, so out of core is chosen by itself with its default budget.
 * Entries at the corners, the diagonal and the block edges are checked against the sum evaluated here.
 */
async function past232(): Promise<void> {
  const N = 46_400;
  const M = 64;
  const n = N - 1;
  const dir = values.dir ?? mkdtempSync(join(tmpdir(), 'hpair-bench-ooc-'));
  const hBytes = 16 * n * n;
  const fs = statfsSync(dir);
  const free = fs.bavail * fs.bsize;
  if (free < hBytes * 1.02 + 256 * MiB) {
    console.log(`past 2^32: skipped, H needs ${(hBytes / 2 ** 30).toFixed(1)} GiB but ${dir} has ${(free / 2 ** 30).toFixed(1)} GiB free (choose another --dir)`);
    if (values.dir === undefined) rmSync(dir, { recursive: true, force: true });
    return;
  }
  const expp = join(dir, 'E-past.npy');
  const distance = join(dir, 'D-past.npy');
  const out = join(dir, 'H-past.npy');
  const problem = demoProblem(N, M);
  writeFileSync(expp, encodeComplexMatrixNpy(problem.expp));
  writeFileSync(distance, encodeFloat64VectorNpy(problem.distance));
  try {
    console.log(`past 2^32: N = ${N}, M = ${M}, H ${n}×${n} = ${2 * n * n} values (${(hBytes / 2 ** 30).toFixed(1)} GiB), no --max-memory; ${cpuName()}; ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM`);
    const run = await compute(['--expp', expp, '--distance', distance, '--out', out]);
    const e = problem.expp.data;
    const d = problem.distance;
    const entry = (i: number, j: number): [number, number] => {
      let re = 0;
      let im = 0;
      for (let m = 1; m < M; m++) {
        const ar = e[2 * (i * M + m)] - e[2 * (n * M + m)];
        const ai = e[2 * (i * M + m) + 1] - e[2 * (n * M + m) + 1];
        const br = e[2 * (j * M + m)] - e[2 * (n * M + m)];
        const bi = e[2 * (j * M + m) + 1] - e[2 * (n * M + m) + 1];
        re += (ar * br + ai * bi) / d[m];
        im += (ai * br - ar * bi) / d[m];
      }
      return [re, im];
    };
    const b = Number(run.summary.blockSize);
    const picks: Array<[number, number]> = [[0, 0], [n - 1, n - 1], [n - 1, 0], [0, n - 1], [b - 1, b], [b, b - 1], [b, b], [n - 1, n - 2], [n >> 1, n >> 2]];
    const next = ((seed) => () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32))(7);
    for (let k = 0; k < 40; k++) picks.push([Math.floor(next() * n), Math.floor(next() * n)]);
    const fd = openSync(out, 'r');
    let worst = 0;
    try {
      const head = Buffer.alloc(12);
      readSync(fd, head, 0, 12, 0);
      const dataOffset = head[6] === 1 ? 10 + head.readUInt16LE(8) : 12 + head.readUInt32LE(8);
      const cell = Buffer.alloc(16);
      for (const [i, j] of picks) {
        readSync(fd, cell, 0, 16, dataOffset + 16 * (i * n + j));
        const [re, im] = entry(i, j);
        const scale = Math.max(1e-300, Math.hypot(re, im));
        worst = Math.max(worst, Math.hypot(cell.readDoubleLE(0) - re, cell.readDoubleLE(8) - im) / scale);
      }
    } finally {
      closeSync(fd);
    }
    console.log(
      `  ${run.seconds.toFixed(1)} s (CPU ${run.cpuSeconds.toFixed(1)} s), peak RSS ${run.peakRssMB.toFixed(0)} MiB, ${String(run.summary.kernel)} × ${String(run.summary.workers)}, ` +
        `blocks of ${b} (${String(run.summary.blocks)}), budget ${(Number(run.summary.maxMemory) / 2 ** 30).toFixed(1)} GiB; ${picks.length} sampled entries, worst relative error ${worst.toExponential(2)}`,
    );
    writeFileSync(outFile, `${JSON.stringify({ scenario: 'past-2-32', cpu: cpuName(), node: process.version, N, M, seconds: run.seconds, cpuSeconds: run.cpuSeconds, peakRssMiB: run.peakRssMB, summary: run.summary, sampled: picks.length, worstRelativeError: worst }, null, 2)}\n`);
    if (!(worst < 1e-10)) {
      console.log('  SAMPLED ENTRIES DIFFER');
      process.exitCode = 1;
    }
  } finally {
    for (const path of [expp, distance, out]) rmSync(path, { force: true });
    if (values.dir === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

if (values['past-2-32'] === true) {
  await past232();
  process.exit();
}

const cpu = cpuName();
console.log(`hpair out of core against in memory, ${rounds} interleaved rounds; ${cpu}; ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; Node ${process.version}`);
const rows: Array<Record<string, unknown>> = [];
for (const N of sizes) {
  const dir = values.dir ?? mkdtempSync(join(tmpdir(), 'hpair-bench-ooc-'));
  const expp = join(dir, `E${N}.npy`);
  const distance = join(dir, `D${N}.npy`);
  {
    const problem = demoProblem(N, N);
    writeFileSync(expp, encodeComplexMatrixNpy(problem.expp));
    writeFileSync(distance, encodeFloat64VectorNpy(problem.distance));
  }
  const hBytes = 16 * (N - 1) ** 2;
  const variants = [
    { name: 'in memory', budget: undefined as number | undefined, out: join(dir, `H${N}-mem.npy`) },
    ...budgets.map((fraction) => ({ name: `--max-memory ${fraction} H`, budget: Math.floor(fraction * hBytes), out: join(dir, `H${N}-${fraction}.npy`) })),
  ];
  const runs = new Map<string, Run[]>(variants.map((v) => [v.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const variant of variants) {
      const args = ['--expp', expp, '--distance', distance, '--out', variant.out];
      if (variant.budget !== undefined) args.push('--max-memory', String(variant.budget));
      const run = await compute(args);
      runs.get(variant.name)!.push(run);
      process.stdout.write(`  N = ${N} round ${round + 1}: ${variant.name.padEnd(22)} ${run.seconds.toFixed(2)} s (CPU ${run.cpuSeconds.toFixed(1)} s), peak RSS ${run.peakRssMB.toFixed(0)} MiB\n`);
    }
  }
  const base = median(runs.get('in memory')!.map((r) => r.seconds));
  const baseCpu = median(runs.get('in memory')!.map((r) => r.cpuSeconds));
  for (const variant of variants) {
    const mine = runs.get(variant.name)!;
    const seconds = median(mine.map((r) => r.seconds));
    const cpuSeconds = median(mine.map((r) => r.cpuSeconds));
    const summary = mine[0].summary;
    const identical = variant.budget === undefined ? true : sameFile(variant.out, variants[0].out);
    rows.push({
      N,
      M: N,
      variant: variant.name,
      maxMemoryMiB: variant.budget === undefined ? undefined : variant.budget / MiB,
      blockSize: summary.blockSize,
      blocks: summary.blocks,
      kernel: summary.kernel,
      workers: summary.workers,
      medianSeconds: seconds,
      seconds: mine.map((r) => r.seconds),
      overheadPercent: variant.budget === undefined ? 0 : (100 * (seconds - base)) / base,
      medianCpuSeconds: cpuSeconds,
      cpuSeconds: mine.map((r) => r.cpuSeconds),
      cpuOverheadPercent: variant.budget === undefined ? 0 : (100 * (cpuSeconds - baseCpu)) / baseCpu,
      peakRssMiB: median(mine.map((r) => r.peakRssMB)),
      bitIdentical: identical,
    });
  }
  if (values.dir === undefined) rmSync(dir, { recursive: true, force: true });
  else for (const variant of variants) rmSync(variant.out, { force: true });
}

console.log(`\n| N = M | run | block | blocks | median s | vs in memory | median CPU s | vs in memory | peak RSS MiB | same bytes |`);
console.log(`|---|---|---|---|---|---|---|---|---|---|`);
for (const row of rows) {
  const budget = row.maxMemoryMiB === undefined ? 'in memory' : `--max-memory ${(row.maxMemoryMiB as number).toFixed(0)} MiB (${String(row.variant).replace('--max-memory ', '')})`;
  const percent = (value: number): string => (row.maxMemoryMiB === undefined ? '' : `${value >= 0 ? '+' : ''}${value.toFixed(1)} %`);
  console.log(
    `| ${row.N} | ${budget} | ${row.blockSize ?? ''} | ${row.blocks ?? ''} | ${(row.medianSeconds as number).toFixed(2)} | ${percent(row.overheadPercent as number)} | ` +
      `${(row.medianCpuSeconds as number).toFixed(1)} | ${percent(row.cpuOverheadPercent as number)} | ${(row.peakRssMiB as number).toFixed(0)} | ${row.bitIdentical ? 'yes' : 'NO'} |`,
  );
}
writeFileSync(outFile, `${JSON.stringify({ cpu, node: process.version, rounds, rows }, null, 2)}\n`);
console.log(`\nwrote ${outFile}`);
