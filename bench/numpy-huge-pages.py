# numpy's line H = (A / d) @ A.conj().T timed right after the previous call ("back to back") and after an idle
# pause ("spaced"), with numpy's transparent-huge-page advice on and off, the four cases taking turns in every
# round so that outside load falls on all of them alike. Per case: the median wall time of the line, the median
# system (kernel) time and minor page faults it cost. On a virtual machine whose balloon reports free memory to
# the hypervisor, the advice can make the spaced calls pay far more system time for the same number of faults
# (how much depends on the sizes and on the host's timing): the cause of the bench's long-lived peer running
# slower than a fresh process timing the line back to back (docs/performance.md, "The peers' memory: numpy's
# huge-page advice").
#
#   OPENBLAS_NUM_THREADS=1 python3 bench/numpy-huge-pages.py [N M [PAUSE_SECONDS [ROUNDS]]]
#   default: 256 65536 3 3 (the bench's tall shape, whose A/d is large beside its work)
import resource
import sys
import time

import numpy as np

try:
    from numpy._core import multiarray
except ImportError:  # numpy < 2
    from numpy.core import multiarray

args = sys.argv[1:]
n, m = (int(args[0]), int(args[1])) if len(args) >= 2 else (256, 65536)
pause = float(args[2]) if len(args) >= 3 else 3.0
rounds = int(args[3]) if len(args) >= 4 else 3

rng = np.random.default_rng(1)
expp = rng.standard_normal((n, m)) + 1j * rng.standard_normal((n, m))
distance = rng.random(m) + 0.5
A = expp[:-1, 1:] - expp[-1, 1:]
d = distance[1:]
held = {}


def line():
    held.clear()  # the previous H is freed before the call, as the bench's peer does
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    held['H'] = (A / d) @ A.conj().T
    wall = (time.perf_counter() - t) * 1000
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return wall, (r1.ru_stime - r0.ru_stime) * 1000, r1.ru_minflt - r0.ru_minflt


results = {}
line()
for _ in range(rounds):
    for advice in (True, False):
        multiarray._set_madvise_hugepage(advice)
        line()  # so that the back-to-back call follows one of its own kind
        results.setdefault((advice, 'back to back'), []).append(line())
        time.sleep(pause)
        results.setdefault((advice, f'spaced {pause:g} s'), []).append(line())
print(f'numpy {np.__version__}, N = {n}, M = {m}, {rounds} rounds')
for (advice, spacing), samples in results.items():
    median = lambda i: sorted(s[i] for s in samples)[len(samples) // 2]
    print(f"huge-page advice {'on ' if advice else 'off'} {spacing:>14}: line {median(0):8.1f} ms, system {median(1):7.1f} ms, "
          f"{median(2):7.0f} minor faults   (all: {', '.join(f'{s[0]:.0f}' for s in samples)} ms)")
