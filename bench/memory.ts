// Peak memory of a whole job as a user runs it: the hpair CLI on .npy files (`hpair compute … --json`), and
// numpy's line (and zherk's) as a Python script on the same files. Each runs in a fresh process; its peak RSS
// is the kernel's ru_maxrss for it, taken by a small python3 wrapper as RUSAGE_CHILDREN once the child has
// exited (or by /usr/bin/time -v when python3 is missing).
//
// Why a wrapper even for the Python scripts: Linux carries a process's peak RSS across fork and exec, so a
// script spawned straight from this benchmark (which holds GBs) reports the benchmark's peak as its own.
// The wrapper is a small process that starts the measured one (Python's subprocess uses vfork), so what is
// measured starts from ~10 MB. The scripts also print their own RUSAGE_SELF, kept in the JSON as a check.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PeakRss {
  /** Peak resident set size, MB (2^20 bytes). */
  peakRssMB: number;
  /** Wall time of the whole process, ms (load, compute, write). */
  wallMs: number;
  how: string;
  kernel?: string;
  /** For the Python lines: the script's own ru_maxrss (RUSAGE_SELF), MB; should match peakRssMB. */
  selfReportedMB?: number;
  /** The CLI's own compute time (its --json `seconds`), ms. */
  computeMs?: number;
  checksum?: number;
}

const CLI = fileURLToPath(new URL('../cli.js', import.meta.url));

const WRAPPER = String.raw`
import json, resource, subprocess, sys, time
t = time.perf_counter()
run = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
wall = (time.perf_counter() - t) * 1000
print(json.dumps({'status': run.returncode, 'stdout': run.stdout, 'stderr': run.stderr[-2000:], 'wallMs': wall,
                  'maxRssKB': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
`;

// The peers' lines exactly as a user writes them, each in its own process.
const NUMPY_LINE = String.raw`
import json, resource, sys, time
import numpy as np
t = time.perf_counter()
expp = np.load(sys.argv[1] + '/expp.npy')
distance = np.load(sys.argv[1] + '/distance.npy')
A = expp[:-1, 1:] - expp[-1, 1:]
d = distance[1:]
H = (A / d) @ A.conj().T
print(json.dumps({'maxRssKB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, 'wallMs': (time.perf_counter() - t) * 1000,
                  'checksum': float(H[0, 0].real + H[-1, -1].real)}))
`;
const ZHERK_LINE = String.raw`
import json, resource, sys, time
import numpy as np
from scipy.linalg.blas import zherk
t = time.perf_counter()
expp = np.load(sys.argv[1] + '/expp.npy')
distance = np.load(sys.argv[1] + '/distance.npy')
A = expp[:-1, 1:] - expp[-1, 1:]
S = np.asfortranarray(A / np.sqrt(distance[1:]))
del A, expp
C = zherk(1.0, S, lower=1)
print(json.dumps({'maxRssKB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, 'wallMs': (time.perf_counter() - t) * 1000,
                  'checksum': float(C[0, 0].real + C[-1, -1].real)}))
`;

function hasPython(): boolean {
  return spawnSync('python3', ['-c', ''], { stdio: 'ignore' }).status === 0;
}

/** Peak RSS of `hpair compute --expp dir/expp.npy --distance dir/distance.npy --out dir/h-cli.npy --json`. */
export function cliPeakRss(dir: string): PeakRss | { error: string } {
  const args = [CLI, 'compute', '--expp', join(dir, 'expp.npy'), '--distance', join(dir, 'distance.npy'), '--out', join(dir, 'h-cli.npy'), '--json'];
  let status: number | null;
  let stdout: string;
  let stderr: string;
  let maxRssKB: number;
  let wallMs: number;
  let how: string;
  if (hasPython()) {
    const run = spawnSync('python3', ['-c', WRAPPER, process.execPath, ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (run.status !== 0) return { error: `rss wrapper failed: ${run.stderr.trim()}` };
    const result = JSON.parse(run.stdout) as { status: number; stdout: string; stderr: string; wallMs: number; maxRssKB: number };
    ({ status, stdout, stderr, maxRssKB, wallMs } = result);
    how = 'ru_maxrss of the child (RUSAGE_CHILDREN, python3 wrapper)';
  } else if (existsSync('/usr/bin/time')) {
    const started = performance.now();
    const run = spawnSync('/usr/bin/time', ['-v', process.execPath, ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
    wallMs = performance.now() - started;
    ({ status, stdout, stderr } = run);
    const match = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
    if (match === null) return { error: '/usr/bin/time -v printed no maximum resident set size' };
    maxRssKB = Number(match[1]);
    how = '/usr/bin/time -v';
  } else {
    return { error: 'neither python3 nor /usr/bin/time is here to read the peak RSS of a child' };
  }
  if (status !== 0) return { error: `hpair compute failed (${status}): ${stderr.trim().split('\n')[0]}` };
  const json = JSON.parse(stdout) as { kernel?: string; checksum?: number; seconds?: number };
  const computeMs = json.seconds === undefined ? undefined : json.seconds * 1000;
  return { peakRssMB: maxRssKB / 1024, wallMs, how, kernel: json.kernel, computeMs, checksum: json.checksum };
}

/** Peak RSS of numpy's line (or scipy's zherk on A·diag(d)^−½) as a script on the same .npy files. */
export function pythonPeakRss(dir: string, which: 'numpy' | 'zherk', env: NodeJS.ProcessEnv = process.env): PeakRss | { error: string } {
  const run = spawnSync('python3', ['-c', WRAPPER, 'python3', '-c', which === 'numpy' ? NUMPY_LINE : ZHERK_LINE, dir], { encoding: 'utf8', maxBuffer: 1 << 20, env });
  if (run.status !== 0) return { error: `rss wrapper failed: ${run.stderr.trim()}` };
  const wrapped = JSON.parse(run.stdout) as { status: number; stdout: string; stderr: string; maxRssKB: number };
  if (wrapped.status !== 0) return { error: `${which} script failed: ${wrapped.stderr.trim().split('\n').pop() ?? ''}` };
  const result = JSON.parse(wrapped.stdout) as { maxRssKB: number; wallMs: number; checksum: number };
  return {
    peakRssMB: wrapped.maxRssKB / 1024,
    selfReportedMB: result.maxRssKB / 1024,
    wallMs: result.wallMs,
    how: 'ru_maxrss of the child (RUSAGE_CHILDREN, python3 wrapper)',
    checksum: result.checksum,
  };
}
