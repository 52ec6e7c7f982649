// One H job in a fresh process, reporting peak RSS against the budget the fast-kernel issue sets:
// inputs + H + packed panels + 100 MB. Run by bench/main.ts as `node memory-probe.js N [kernel]`.
import { createPool, demoProblem, hermitianJobBytes, type KernelChoice } from 'hpair';

const size = Number(process.argv[2]);
const pool = createPool({ kernel: (process.argv[3] ?? 'auto') as KernelChoice, inlineFlops: 0 });
await pool.ready();
const { expp, distance } = demoProblem(size, size);
const h = await pool.hermitian(expp, distance);
const MB = 2 ** 20;
const need = hermitianJobBytes(size, size, pool.kernel);
const inputs = expp.data.byteLength + distance.byteLength;
const report = {
  n: size,
  kernel: pool.kernel,
  peakRssMB: process.resourceUsage().maxRSS / 1024,
  inputsMB: inputs / MB,
  hMB: need.h / MB,
  panelsMB: need.panels / MB,
  budgetMB: (inputs + need.h + need.panels) / MB + 100,
  check: h.data[0],
};
await pool.close();
process.stdout.write(`${JSON.stringify(report)}\n`);
