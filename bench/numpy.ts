// numpy as the peer a Python user would reach for, run on the same inputs in the same benchmark run.
import { spawnSync } from 'node:child_process';

export interface NumpyResult {
  medianMs: number;
  /** max |H_numpy − H_hpair| / max |H_numpy|, when hpair's H was given. */
  relativeError?: number;
}

const SCRIPT = `
import json, sys, time
import numpy as np
folder, reps, compare = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
expp = np.load(folder + "/expp.npy")
distance = np.load(folder + "/distance.npy")
A = expp[:-1, 1:] - expp[-1, 1:]
d = distance[1:]
times = []
for _ in range(reps + 1):
    t = time.perf_counter()
    H = (A / d) @ A.conj().T
    times.append(time.perf_counter() - t)
result = {"medianMs": float(np.median(times[1:]) * 1000)}
if compare:
    ours = np.load(folder + "/h.npy")
    result["relativeError"] = float(np.abs(ours - H).max() / np.abs(H).max())
print(json.dumps(result))
`;

export function numpyAvailable(): boolean {
  return spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
}

/** Times numpy's `(A/d) @ A.conj().T` (A formed outside the timed region) with `threads` BLAS threads. */
export function numpyHermitian(folder: string, threads: number, reps: number, compare: boolean): NumpyResult {
  const limit = String(threads);
  const run = spawnSync('python3', ['-c', SCRIPT, folder, String(reps), compare ? '1' : '0'], {
    encoding: 'utf8',
    env: { ...process.env, OPENBLAS_NUM_THREADS: limit, OMP_NUM_THREADS: limit, MKL_NUM_THREADS: limit },
    maxBuffer: 1 << 20,
  });
  if (run.status !== 0) throw new Error(`numpy benchmark failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as NumpyResult;
}
