// Which OpenBLAS core type the Python peers run with. OpenBLAS (DYNAMIC_ARCH) picks its kernels by CPUID, and
// OPENBLAS_CORETYPE overrides that; an environment may set it for reasons of its own (this project's VMs export
// OPENBLAS_CORETYPE=Haswell), and a CPU newer than the OpenBLAS build may be mapped to an older core. Either way
// the peer could run 128/256-bit kernels on a CPU with AVX-512. A fair comparison gives the peer its best, so by
// default the bench times each candidate core on a short zherk + zgemm in a fresh python3 and runs the peers
// with the fastest; the choice, and every candidate's time, go into the JSON record.
//
// The choice is always handed to the peers as an explicit core name, the one the winning probe's copies
// reported (so "OpenBLAS's own detection" becomes the core it detected): numpy and scipy each bundle their own
// OpenBLAS, often of different versions, whose detection need not agree, and the peers are then checked
// (bench/peer-check.ts) against one name. Each probe reports the core of every copy it loaded, numpy's and
// scipy's, not of the first one found.
import { spawnSync } from 'node:child_process';
import { OPENBLAS_LIBRARIES_PY, type OpenblasLibrary } from './python-peer.js';

/** What `--blas-core` asked for: the fastest candidate, the inherited environment as is, or one core by name. */
export type BlasCoreRequest = { readonly kind: 'auto' } | { readonly kind: 'inherit' } | { readonly kind: 'named'; readonly name: string };

export interface BlasCoreChoice {
  /** OPENBLAS_CORETYPE for the peers; undefined: unset, OpenBLAS detects the CPU itself (--blas-core inherit only). */
  readonly coretype: string | undefined;
  /** The core every peer's every OpenBLAS copy must report; undefined: none chosen (they must agree). */
  readonly expected: string | undefined;
  /** OPENBLAS_CORETYPE as the bench found it in its environment. */
  readonly inherited: string | undefined;
  /** How it was chosen, in a few words. */
  readonly how: string;
  /** Per candidate ('detect' for unset): the core each OpenBLAS copy reported and the probe's best time (ms). */
  readonly probes: readonly BlasCoreProbe[];
}

export interface BlasCoreProbe {
  readonly candidate: string;
  /** Every copy loaded (numpy's, scipy's), as it reported itself. */
  readonly libs?: readonly OpenblasLibrary[];
  /** The core all copies reported, when they agree. */
  readonly core?: string;
  readonly ms?: number;
  readonly error?: string;
}

const PROBE = String.raw`
import json, time
import numpy as np
${OPENBLAS_LIBRARIES_PY}
NUMPY_BLAS = openblas_paths()
try:
    from scipy.linalg.blas import zherk
except Exception:
    zherk = None
LIBS = [library_facts(entry) for entry in openblas_libraries(NUMPY_BLAS, zherk is not None)]
rng = np.random.default_rng(7)
A = rng.standard_normal((640, 640)) + 1j * rng.standard_normal((640, 640))
S = np.asfortranarray(A)
B = A.conj().T.copy()
best = float('inf')
for _ in range(4):
    t = time.perf_counter()
    if zherk is not None:
        zherk(1.0, S, lower=1)
    A @ B
    best = min(best, time.perf_counter() - t)
print(json.dumps({'libs': LIBS, 'ms': best * 1000}))
`;

/**
 * `base` with OPENBLAS_CORETYPE set to `coretype`, or removed when it is undefined. An OPENBLAS_L2_SIZE set beside
 * the inherited core describes the cache that core's build was told of: it goes with that core, so it is removed
 * whenever the core is another one (or left to OpenBLAS's detection) and kept only with the inherited core.
 */
export function withCoretype(base: NodeJS.ProcessEnv, coretype: string | undefined, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, ...extra };
  const inherited = base.OPENBLAS_CORETYPE || undefined;
  if (coretype === undefined) delete env.OPENBLAS_CORETYPE;
  else env.OPENBLAS_CORETYPE = coretype;
  if (coretype !== inherited) delete env.OPENBLAS_L2_SIZE;
  return env;
}

/** The peers' environment: the bench's own, with OPENBLAS_CORETYPE set to the choice (or removed; see withCoretype). */
export function blasEnvironment(choice: BlasCoreChoice | undefined): NodeJS.ProcessEnv {
  return choice === undefined ? { ...process.env } : withCoretype(process.env, choice.coretype);
}

function probe(candidate: string | undefined): Omit<BlasCoreProbe, 'candidate'> {
  const env = withCoretype(process.env, candidate, { OPENBLAS_NUM_THREADS: '1' });
  const run = spawnSync('python3', ['-c', PROBE], { env, encoding: 'utf8', timeout: 60_000 });
  if (run.status !== 0) return { error: (run.stderr || String(run.error ?? run.signal)).trim().split('\n').pop() };
  const { libs, ms } = JSON.parse(run.stdout) as { libs: OpenblasLibrary[]; ms: number };
  const cores = [...new Set(libs.map((lib) => lib.coretype))];
  return { libs, ms, ...(cores.length === 1 && cores[0] !== undefined ? { core: cores[0] } : {}) };
}

/**
 * The core type for the peers. `auto` probes the inherited value, OpenBLAS's own detection, and the cores this
 * CPU can run that OpenBLAS has kernels for (SkylakeX and Cooperlake with AVX-512F, Haswell and Zen with AVX2),
 * one BLAS thread each, and keeps the fastest whose copies all report one core (a tie within 3 % keeps the
 * earlier, inherited first), naming that core explicitly.
 */
export function chooseBlasCore(request: BlasCoreRequest, cpuFlags: Readonly<Record<string, boolean>>): BlasCoreChoice {
  const inherited = process.env.OPENBLAS_CORETYPE || undefined;
  if (request.kind === 'inherit') return { coretype: inherited, expected: inherited, inherited, how: 'inherited (--blas-core inherit)', probes: [] };
  if (request.kind === 'named') return { coretype: request.name, expected: request.name, inherited, how: `--blas-core ${request.name}`, probes: [] };
  const candidates: (string | undefined)[] = [inherited, undefined];
  if (cpuFlags.avx512f) candidates.push('SkylakeX', 'Cooperlake');
  if (cpuFlags.avx2 && cpuFlags.fma) candidates.push('Haswell', 'Zen');
  const unique = [...new Set(candidates)];
  const probes: BlasCoreProbe[] = unique.map((candidate) => ({ candidate: candidate ?? 'detect', ...probe(candidate) }));
  let best: { probe: BlasCoreProbe; ms: number; core: string } | undefined;
  for (const p of probes) {
    if (p.ms === undefined || p.core === undefined) continue;
    if (best === undefined || p.ms < best.ms * 0.97) best = { probe: p, ms: p.ms, core: p.core };
  }
  if (best === undefined) return { coretype: inherited, expected: inherited, inherited, how: 'inherited (no probe ran with one core in every OpenBLAS copy)', probes };
  const named = best.probe.candidate === best.core ? '' : ` (${best.probe.candidate} runs ${best.core})`;
  return { coretype: best.core, expected: best.core, inherited, how: `fastest of ${probes.length} probed${named} (640² zherk + zgemm, 1 thread)`, probes };
}
