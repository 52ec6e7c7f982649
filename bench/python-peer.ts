// The Python peers a user would reach for, in one long-lived python3 child that reads one JSON command per
// line on stdin and answers one JSON line on stdout. Kept alive for the whole run, so a numpy or zherk
// sample costs one round trip and can be interleaved with hpair's samples at no extra cost.
//
//   numpy: H = (A / d) @ A.conj().T            A = expp[:-1, 1:] − expp[-1, 1:], d = distance[1:], both formed
//                                               when the inputs are loaded, outside the timed region
//   zherk: C = scipy.linalg.blas.zherk(1.0, S, lower=1)   S = A · diag(d)^−½ (Fortran order), formed at load
//   zherk into c: the same into a C allocated at load (c=C, overwrite_c=1): zherk's best use for a caller
//          that computes the same shape again, as hpair's `out` is hpair's
//   dgemm: X @ Y.T with X = Re A, Y = Im A (C order, formed at load; two arrays, so numpy cannot turn it into
//          a syrk): one real product of the shape hpair's three are, at OpenBLAS's dgemm rate, as a measure
//          of what this machine's cores give a well-tuned real kernel (not a peer: it computes no H)
//
// Only the BLAS call is timed (time.perf_counter in Python); the child reports that time, so the pipe's
// round trip is not in the sample. BLAS threads are set per request through threadpoolctl when it is
// installed, else through OpenBLAS's own openblas_set_num_threads (found in the loaded libraries by ctypes).
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * Python that finds the OpenBLAS libraries this process loaded (on Linux from /proc/self/maps: the copies numpy
 * and scipy actually run, wherever they came from; elsewhere from threadpoolctl, else the copies the wheels bundle)
 * and their entry points (core name, configuration, thread count).
 * numpy and scipy wheels each bundle a copy of their own, often of different OpenBLAS versions, so each copy is
 * attributed to its user: call `openblas_paths()` right after importing numpy, then
 * `openblas_libraries(numpy_paths, scipy_imported)` after importing scipy. Shared with bench/blas-core.ts.
 */
export const OPENBLAS_LIBRARIES_PY = String.raw`
import ctypes, glob, os, sys
def openblas_paths():
    # Linux: exactly the files mapped now. Elsewhere: threadpoolctl's view of the loaded libraries, else the
    # copies numpy and scipy bundle next to themselves (numpy.libs, scipy.libs, .dylibs).
    seen = []
    try:
        with open('/proc/self/maps') as maps:
            for line in maps:
                parts = line.split()
                if len(parts) < 6:
                    continue
                path = parts[-1]
                if 'openblas' in os.path.basename(path).lower() and '.so' in path and path not in seen:
                    seen.append(path)
        return seen
    except OSError:
        pass
    try:
        import threadpoolctl
        return [info['filepath'] for info in threadpoolctl.threadpool_info() if info.get('internal_api') == 'openblas']
    except Exception:
        pass
    for name in ('numpy', 'scipy'):
        module = sys.modules.get(name)
        if module is None:
            continue
        here = os.path.dirname(module.__file__)
        for pattern in (os.path.join(os.path.dirname(here), name + '.libs', '*openblas*'), os.path.join(here, '.dylibs', '*openblas*')):
            for path in sorted(glob.glob(pattern)):
                if path not in seen:
                    seen.append(path)
    return seen

def openblas_libraries(numpy_paths, scipy_imported):
    found = []
    paths = openblas_paths()
    scipy_added = [path for path in paths if path not in numpy_paths]
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        def symbol(name):
            for prefix in ('', 'scipy_'):
                for suffix in ('', '64_', '_64'):
                    fn = getattr(lib, prefix + name + suffix, None)
                    if fn is not None:
                        return fn
            return None
        if path in numpy_paths:
            users = ['numpy'] + (['scipy'] if scipy_imported and not scipy_added else [])
        else:
            users = ['scipy']
        entry = {'file': path, 'users': users, 'get_corename': symbol('openblas_get_corename'), 'get_config': symbol('openblas_get_config'),
                 'set_threads': symbol('openblas_set_num_threads'), 'get_threads': symbol('openblas_get_num_threads')}
        for key in ('get_corename', 'get_config'):
            if entry[key] is not None:
                entry[key].restype = ctypes.c_char_p
        found.append(entry)
    return found

def library_facts(entry):
    lib = {'file': entry['file'], 'users': entry['users']}
    if entry['get_corename'] is not None:
        lib['coretype'] = entry['get_corename']().decode()
    if entry['get_config'] is not None:
        lib['config'] = entry['get_config']().decode()
    if entry['get_threads'] is not None:
        lib['threads'] = int(entry['get_threads']())
    return lib
`;

const SCRIPT = String.raw`
import json, platform, resource, sys, time
import numpy as np
${OPENBLAS_LIBRARIES_PY}
NUMPY_BLAS = openblas_paths()
try:
    import scipy
    import scipy.linalg.blas as sblas
except Exception:
    scipy = None
try:
    import threadpoolctl
except Exception:
    threadpoolctl = None
LIBS = openblas_libraries(NUMPY_BLAS, scipy is not None)

def set_threads(n):
    # Each copy is asked for its own count afterwards, by its own entry point, whichever way it was set.
    if threadpoolctl is not None:
        threadpoolctl.threadpool_limits(limits=n, user_api='blas')
        how = 'threadpoolctl'
    else:
        for entry in LIBS:
            if entry['set_threads'] is not None:
                entry['set_threads'](ctypes.c_int(n))
        how = 'openblas_set_num_threads'
    return how, [library_facts(entry) for entry in LIBS]

def blas_config(module):
    try:
        deps = module.show_config(mode='dicts')['Build Dependencies']['blas']
        return {k: deps.get(k) for k in ('name', 'version', 'openblas configuration')}
    except Exception as error:
        return {'error': str(error)}

def find_multiarray():
    for name in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        try:
            module = __import__(name, fromlist=['_get_madvise_hugepage'])
            if hasattr(module, '_get_madvise_hugepage') and hasattr(module, '_set_madvise_hugepage'):
                return module
        except Exception:
            continue
    return None
MULTIARRAY = find_multiarray()

def numpy_huge_pages():
    # Whether numpy advises huge pages on the big arrays it allocates now (NUMPY_MADVISE_HUGEPAGE at import, or
    # the last set_huge_pages), as numpy itself says; None when this numpy cannot say.
    return None if MULTIARRAY is None else bool(MULTIARRAY._get_madvise_hugepage())

def set_huge_pages(on):
    if MULTIARRAY is None:
        raise RuntimeError('this numpy cannot set its huge-page advice')
    MULTIARRAY._set_madvise_hugepage(bool(on))

def info():
    out = {'python': platform.python_version(), 'numpy': np.__version__, 'scipy': None if scipy is None else scipy.__version__,
           'numpyBlas': blas_config(np), 'scipyBlas': None if scipy is None else blas_config(scipy),
           'threadpoolctl': None if threadpoolctl is None else threadpoolctl.__version__, 'openblas': []}
    for entry in LIBS:
        out['openblas'].append(library_facts(entry))
    out['env'] = {k: v for k, v in os.environ.items() if k.startswith(('OPENBLAS_', 'GOTO', 'OMP_')) or k == 'NUMPY_MADVISE_HUGEPAGE'}
    out['numpyHugePages'] = numpy_huge_pages()
    if threadpoolctl is not None:
        out['threadpoolInfo'] = [{k: v for k, v in i.items() if k in ('internal_api', 'version', 'architecture', 'num_threads', 'filepath')}
                                 for i in threadpoolctl.threadpool_info()]
    return out

state = {}

def load(cmd):
    state.clear()
    expp = np.load(os.path.join(cmd['dir'], 'expp.npy'))
    distance = np.load(os.path.join(cmd['dir'], 'distance.npy'))
    state['A'] = expp[:-1, 1:] - expp[-1, 1:]
    state['d'] = distance[1:]
    state['X'] = np.ascontiguousarray(state['A'].real)
    state['Y'] = np.ascontiguousarray(state['A'].imag)
    del expp, distance
    reply = {'zherk': False}
    if scipy is None:
        reply['why'] = 'scipy is not installed'
    elif not bool(np.all(state['d'] > 0)):
        reply['why'] = 'zherk needs distance > 0'
    else:
        state['S'] = np.asfortranarray(state['A'] / np.sqrt(state['d']))
        n = state['S'].shape[0]
        state['Cinto'] = np.zeros((n, n), dtype=np.complex128, order='F')
        reply['zherk'] = True
    return reply

def checksum(h):
    n = h.shape[0]
    return float(h[0, 0].real + h[n - 1, n - 1].real + h[n // 2, n // 3].real + h[n // 2, n // 3].imag + h[n - 1, 0].imag)

def timed(line):
    # The line's wall time, and what it cost this process in the kernel: faulting in fresh memory shows there, as
    # system time and minor faults, whatever else shares the cores (CPU time, not wall time).
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    H = line()
    ms = (time.perf_counter() - t) * 1000
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return H, {'ms': ms, 'systemMs': (r1.ru_stime - r0.ru_stime) * 1000, 'minorFaults': r1.ru_minflt - r0.ru_minflt}

def run(cmd):
    if cmd.get('hugePages') is not None:
        set_huge_pages(cmd['hugePages'])  # outside the timed region; scipy's new C is a numpy array too
    if cmd['what'] == 'numpy':
        state.pop('H', None)
        A, d = state['A'], state['d']
        H, cost = timed(lambda: (A / d) @ A.conj().T)
        state['H'] = H
    elif cmd['what'] == 'zherk':
        state.pop('C', None)
        S = state['S']
        H, cost = timed(lambda: sblas.zherk(1.0, S, lower=1))
        state['C'] = H
    elif cmd['what'] == 'dgemm':
        X, Y = state['X'], state['Y']
        H, cost = timed(lambda: X @ Y.T)
    else:
        S, C = state['S'], state['Cinto']
        H, cost = timed(lambda: sblas.zherk(1.0, S, lower=1, c=C, overwrite_c=1))
        if not np.shares_memory(H, C):
            raise RuntimeError('zherk did not write into c')
    return {'checksum': checksum(H), 'hugePages': numpy_huge_pages(), **cost}

def compare(cmd):
    ours = np.load(cmd['file'], mmap_mode='r')
    reply = {}
    H = state.get('H')
    if H is not None:
        scale, worst = float(np.abs(H).max()), 0.0
        for r in range(0, H.shape[0], 256):
            worst = max(worst, float(np.abs(ours[r:r + 256] - H[r:r + 256]).max()))
        reply['vsNumpy'] = worst / scale
    C = state.get('C')
    if C is not None:
        scale, worst = float(np.abs(np.tril(C)).max()), 0.0
        for r in range(0, C.shape[0], 256):
            block = np.tril(np.asarray(ours[r:r + 256]) - C[r:r + 256], k=r)
            worst = max(worst, float(np.abs(block).max()))
        reply['vsZherk'] = worst / scale
    return reply

for line in sys.stdin:
    cmd = json.loads(line)
    try:
        op = cmd['op']
        if op == 'info':
            reply = info()
        elif op == 'load':
            reply = load(cmd)
        elif op == 'threads':
            how, libs = set_threads(int(cmd['n']))
            reply = {'how': how, 'threads': [lib.get('threads') for lib in libs], 'openblas': libs}
        elif op == 'run':
            reply = run(cmd)
        elif op == 'compare':
            reply = compare(cmd)
        elif op == 'free':
            state.clear()
            reply = {}
        else:
            raise ValueError('unknown op ' + str(op))
    except Exception as error:
        reply = {'error': type(error).__name__ + ': ' + str(error)}
    sys.stdout.write(json.dumps(reply) + '\n')
    sys.stdout.flush()
`;

export interface PeerInfo {
  python: string;
  numpy: string;
  scipy: string | null;
  numpyBlas: Record<string, unknown>;
  scipyBlas: Record<string, unknown> | null;
  threadpoolctl: string | null;
  openblas: OpenblasLibrary[];
  threadpoolInfo?: Record<string, unknown>[];
  /** The OPENBLAS_*, GOTO* and OMP_* variables the process saw, and NUMPY_MADVISE_HUGEPAGE. */
  env: Record<string, string>;
  /** Whether numpy advises transparent huge pages on its big arrays, as numpy reports it; null when it cannot say. */
  numpyHugePages: boolean | null;
}
/** One OpenBLAS copy loaded in a Python process, as that copy reports itself. */
export interface OpenblasLibrary {
  file: string;
  /** Which of numpy and scipy call it. */
  users: ('numpy' | 'scipy')[];
  /** openblas_get_corename(): the kernels it runs. */
  coretype?: string;
  config?: string;
  threads?: number;
}
export interface PeerSample {
  ms: number;
  checksum: number;
  /** System (kernel) CPU time the call cost the Python process, ms: page faults show here. */
  systemMs: number;
  /** Minor page faults during the call. */
  minorFaults: number;
  /** Whether numpy advised huge pages on the arrays the call allocated, as numpy says; null when it cannot say. */
  hugePages: boolean | null;
}
/** numpy's line, zherk with a new C per call, zherk into a C it reuses; dgemm, the real-flop rate reference. */
export type PeerKind = 'numpy' | 'zherk' | 'zherk-into' | 'dgemm';

/** Whether python3 can import numpy (the peers need it; scipy is optional). */
export function pythonHasNumpy(): boolean {
  return spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
}

export class PythonPeer {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #waiting: { resolve: (value: unknown) => void; reject: (error: Error) => void }[] = [];
  #failure: Error | undefined;

  /** `env`: the child's environment (bench/blas-core.ts sets OPENBLAS_CORETYPE in it). */
  constructor(env: NodeJS.ProcessEnv = process.env) {
    // One BLAS thread count is set per request; start from the library defaults otherwise.
    this.#child = spawn('python3', ['-u', '-c', SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'], env });
    let stderr = '';
    this.#child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      const waiter = this.#waiting.shift();
      if (waiter === undefined) return;
      const reply = JSON.parse(line) as { error?: string };
      if (typeof reply.error === 'string') waiter.reject(new Error(`python peer: ${reply.error}`));
      else waiter.resolve(reply);
    });
    this.#child.on('exit', (code, signal) => {
      this.#failure = new Error(`python peer exited (${signal ?? code}): ${stderr.trim()}`);
      for (const waiter of this.#waiting.splice(0)) waiter.reject(this.#failure);
    });
  }

  #ask<T>(command: Record<string, unknown>): Promise<T> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise<T>((resolve, reject) => {
      this.#waiting.push({ resolve: resolve as (value: unknown) => void, reject });
      this.#child.stdin.write(`${JSON.stringify(command)}\n`);
    });
  }

  info(): Promise<PeerInfo> {
    return this.#ask<PeerInfo>({ op: 'info' });
  }
  /** Loads expp.npy and distance.npy from `dir` and forms A, d (and S for zherk) outside any timing. */
  load(dir: string): Promise<{ zherk: boolean; why?: string }> {
    return this.#ask({ op: 'load', dir });
  }
  /** Sets every copy's thread count; each copy reports its own count (and core) back. */
  threads(n: number): Promise<{ how: string; threads: (number | null)[]; openblas: OpenblasLibrary[] }> {
    return this.#ask({ op: 'threads', n });
  }
  /** `hugePages`: numpy's huge-page advice for the arrays this call allocates (set before the timed region). */
  run(what: PeerKind, hugePages?: boolean): Promise<PeerSample> {
    return this.#ask<PeerSample>({ op: 'run', what, ...(hugePages === undefined ? {} : { hugePages }) });
  }
  /** max |ours − numpy's last H| / max |H|, and the same over the lower triangle against zherk's last C. */
  compare(file: string): Promise<{ vsNumpy?: number; vsZherk?: number }> {
    return this.#ask({ op: 'compare', file });
  }
  free(): Promise<unknown> {
    return this.#ask({ op: 'free' });
  }
  /** The child's process id (for CPU accounting). */
  get pid(): number | undefined {
    return this.#child.pid;
  }
  close(): void {
    this.#child.stdin.end();
  }
}
