// The Markdown report of a bench run, written from its JSON record only: every figure in it comes from the run,
// beside the host it ran on, so published results are never copied by hand. `npm run bench` writes it next to
// its JSON (FILE.json → FILE.md); for a record already on disk:
//   node dist/bench/report.js FILE.json [OUT.md]
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { percent, ratio } from './stats.js';

/** One size's peak RSS: `hpair compute` and the Python peers' lines, each in a fresh process. */
export interface MemoryRecord {
  n: number;
  cli?: { peakRssMB: number; kernel?: string };
  numpy?: { peakRssMB: number };
  zherk?: { peakRssMB: number };
}

export const MEMORY_HEADER = ['N = M', 'hpair compute peak RSS MB', 'kernel', 'numpy line MB', 'hpair / numpy', 'zherk line MB'];

/** The peak-RSS table's rows, for the console and the Markdown report alike. */
export function memoryCells(rows: readonly MemoryRecord[]): string[][] {
  return rows.map((row) => [
    String(row.n),
    row.cli === undefined ? '' : row.cli.peakRssMB.toFixed(0),
    row.cli?.kernel ?? '',
    row.numpy === undefined ? '' : row.numpy.peakRssMB.toFixed(0),
    row.cli !== undefined && row.numpy !== undefined ? ratio(row.cli.peakRssMB / row.numpy.peakRssMB) : '',
    row.zherk === undefined ? '' : row.zherk.peakRssMB.toFixed(0),
  ]);
}

/** The parts of bench/main.ts's record the report reads; everything is optional, so older records still load. */
interface BenchRecord {
  command?: string;
  host?: {
    cpuModel?: string;
    cpuFamily?: number;
    cpuModelNumber?: number;
    vendor?: string;
    flags?: Record<string, boolean>;
    cores?: number;
    logicalCpus?: number;
    caches?: { level: number; type: string; size: string; sharedWithCpus: string }[];
    memoryGB?: number;
    loadAverage?: number[];
    node?: string;
    v8?: string;
    execArgv?: string[];
    platform?: string;
    commit?: string;
    dirty?: boolean;
    date?: string;
  };
  kernelStatus?: { kernel: string; supported: boolean; reason?: string }[];
  auto?: { kernel?: string; whyNotNative?: string } | string;
  python?: { python?: string; numpy?: string; scipy?: string | null; openblas?: { coretype?: string; config?: string; threads?: number }[] } | null;
  blasCore?: { coretype?: string; inherited?: string; how?: string; probes?: { candidate: string; core?: string; ms?: number; error?: string }[] } | null;
  flopsFormula?: string;
  realFlopsFormula?: string;
  peerCheck?: { checked?: boolean; how?: string; failures?: string[] };
  peak?: { how?: string; unavailable?: string; peaks?: { isa: string; threads: number; gflops: number }[] };
  writeBandwidth?: { how?: string; measurements?: { threads: number; kind: string; bytesPerSecond: number }[] };
  rows?: BenchRow[];
  scaling?: { n: number; what: string; workers: number; ratio: number; paired?: number; rounds: number }[];
  bitIdentity?: { n: number; m: number; kernel: string; workers: number[]; schedules?: string[]; identical: boolean }[];
  memory?: MemoryRecord[];
  smallJobs?: { kernel: string; ran: string; n: number; medianMs: number; p25Ms: number; p75Ms: number; samples: number; inline: boolean }[];
  abort?: { n: number; kernel: string; medianMs: number; maxMs: number };
  eventLoopDelay?: { n: number; kernel: string; jobMs: number; p50Ms: number; p99Ms: number; maxMs: number };
  loadAverageAtEnd?: number[];
}

interface BenchRow {
  what: string;
  kind: string;
  kernel: string;
  n: number;
  workers: number;
  gflops: number;
  realGflops?: number;
  speedup?: number;
  vsNumpy?: number;
  vsZherk?: number;
  relErrVsNumpy?: number;
  pairedVsNumpy?: number;
  pairedVsZherk?: number;
  othersCpu?: number;
  /** The slower of a peer's two huge-page variants in its group: shown, never compared against. */
  alternate?: boolean;
  peak?: { isa: string; threads: number; gflops: number };
  ofPeak?: number;
  writeBytesPerSecond?: number;
  ofWriteBandwidth?: number;
  writeLimit?: { kind: string; threads: number; bytesPerSecond: number };
  medianMs: number;
  p25Ms: number;
  p75Ms: number;
  samples: number;
}

const ms = (value: number): string => (value >= 1000 ? value.toFixed(0) : value >= 100 ? value.toFixed(1) : value >= 1 ? value.toFixed(2) : value.toFixed(3));
const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return [`| ${header.map(cell).join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.map(cell).join(' | ')} |`)].join('\n');
}

/** The report's Markdown, from a bench record. */
export function markdownReport(record: BenchRecord): string {
  const host = record.host ?? {};
  const out: string[] = [];
  out.push('# hpair bench results', '');
  out.push('Written by `bench/report.ts` from the JSON record of one `npm run bench` run. Nothing here is edited by hand.', '');
  if (record.command !== undefined) out.push(`Command: \`${record.command}\``, '');

  out.push('## Host', '');
  const flags = Object.entries(host.flags ?? {})
    .filter(([, on]) => on)
    .map(([flag]) => flag)
    .join(', ');
  const caches = (host.caches ?? []).map((c) => `L${c.level} ${c.type} ${c.size}`).join(', ');
  const facts: [string, string][] = [
    ['date', host.date ?? ''],
    ['hpair commit', host.commit === undefined ? '(no git)' : `${host.commit}${host.dirty === true ? ' (uncommitted changes)' : ''}`],
    ['CPU', `${host.cpuModel ?? '?'}${host.cpuFamily === undefined ? '' : ` (family ${host.cpuFamily}, model ${host.cpuModelNumber ?? '?'})`}`],
    ['CPU flags the kernels use', flags],
    ['cores', `${host.cores ?? '?'} (${host.logicalCpus ?? '?'} logical)`],
    ['caches', caches],
    ['memory', host.memoryGB === undefined ? '' : `${host.memoryGB.toFixed(1)} GB`],
    ['load average at start / end', `${(host.loadAverage ?? []).map((l) => l.toFixed(2)).join(', ')} / ${(record.loadAverageAtEnd ?? []).map((l) => l.toFixed(2)).join(', ')}`],
    ['Node / V8', `${host.node ?? '?'} / ${host.v8 ?? '?'}${host.execArgv !== undefined && host.execArgv.length > 0 ? ` (${host.execArgv.join(' ')})` : ''}`],
    ['platform', host.platform ?? ''],
  ];
  if (record.python) {
    facts.push(['Python peers', `Python ${record.python.python ?? '?'}, numpy ${record.python.numpy ?? '?'}, scipy ${record.python.scipy ?? '–'}`]);
    facts.push(['their BLAS', (record.python.openblas ?? []).map((lib) => `${lib.coretype ?? '?'} (${lib.config?.split(' ').slice(0, 2).join(' ') ?? ''})`).join('; ')]);
  }
  if (record.blasCore) facts.push(['peers\' OPENBLAS_CORETYPE', `${record.blasCore.coretype ?? '(unset: OpenBLAS detects)'}: ${record.blasCore.how ?? ''}; inherited ${record.blasCore.inherited ?? '(unset)'}`]);
  out.push(table(['', ''], facts), '');

  if (record.kernelStatus !== undefined) {
    out.push('Kernels on this host:', '');
    out.push(table(['kernel', 'runs here', 'why not'], record.kernelStatus.map((k) => [k.kernel, k.supported ? 'yes' : 'no', k.reason ?? ''])), '');
    const auto = typeof record.auto === 'string' ? record.auto : record.auto?.kernel;
    if (auto !== undefined) out.push(`\`auto\` picks \`${auto}\`.`, '');
  }

  const peaks = record.peak?.peaks ?? [];
  const bandwidths = record.writeBandwidth?.measurements ?? [];
  if (peaks.length > 0 || bandwidths.length > 0 || record.peak?.unavailable !== undefined) {
    out.push('## Machine limits', '');
    if (record.peak?.unavailable !== undefined) out.push(`FMA peak: not measured (${record.peak.unavailable}).`, '');
    if (peaks.length > 0) {
      out.push(record.peak?.how ?? '', '');
      out.push(table(['ISA', 'threads', 'FMA peak GFLOP/s'], peaks.map((p) => [p.isa, String(p.threads), p.gflops.toFixed(1)])), '');
    }
    if (bandwidths.length > 0) {
      out.push(record.writeBandwidth?.how ?? '', '');
      out.push(table(['stores', 'threads', 'write bandwidth GB/s'], bandwidths.map((b) => [b.kind, String(b.threads), (b.bytesPerSecond / 1e9).toFixed(2)])), '');
    }
  }

  // A run whose peers did not run as they do alone says so where its figures are read, not only on the console.
  const peerFailures = record.peerCheck?.failures ?? [];
  if (peerFailures.length > 0) {
    out.push('## Peer check: failed', '');
    out.push('The peers below ran slower in this run than in a fresh process, so their figures, and every ratio against them, do not show what they can do; hpair\'s own figures stand.', '');
    for (const failure of peerFailures) out.push(`- ${failure}`);
    out.push('');
  } else if (record.peerCheck?.checked === false) {
    out.push('The peers were not checked in this run (`--no-peer-check`, or no Python).', '');
  }

  const rows = record.rows ?? [];
  if (rows.length > 0) {
    out.push('## H against numpy and zherk', '');
    out.push(
      `Median and p25–p75 of each entry's samples. GFLOP/s counts useful work, ${record.flopsFormula ?? '8·(N−1)·N/2·(M−1)'} flops, except the dgemm row (its own real rate). × numpy and × zherk: the peer's median over this entry's, like for like; paired: the median over rounds of the same round's ratio; others' CPU: the share of the cores other processes used during that group.`,
      '',
    );
    out.push(
      table(
        ['N = M', 'workers', 'what', 'median ms', 'p25–p75 ms', 'samples', 'GFLOP/s', 'vs 1 worker', '× numpy', '× zherk', 'paired × numpy / zherk', 'max rel. err', "others' CPU"],
        rows.map((row) => [
          String(row.n),
          String(row.workers),
          `${row.kind === 'hpair' && !row.what.slice(6).startsWith(row.kernel) ? `${row.what} (ran ${row.kernel})` : row.what}${row.alternate === true ? ' (other advice)' : ''}`,
          ms(row.medianMs),
          `${ms(row.p25Ms)}–${ms(row.p75Ms)}`,
          String(row.samples),
          row.gflops.toFixed(1),
          ratio(row.speedup),
          ratio(row.vsNumpy),
          ratio(row.vsZherk),
          row.kind === 'hpair' && (row.pairedVsNumpy !== undefined || row.pairedVsZherk !== undefined) ? `${ratio(row.pairedVsNumpy) || '–'} / ${ratio(row.pairedVsZherk) || '–'}` : '',
          row.relErrVsNumpy === undefined ? '' : row.relErrVsNumpy.toExponential(1),
          percent(row.othersCpu),
        ]),
      ),
      '',
    );
    const real = rows.flatMap((row) => {
      const dgemm = rows.find((other) => other.kind === 'dgemm' && other.n === row.n && other.workers === row.workers);
      if (row.realGflops === undefined || (row.kind !== 'hpair' && row.ofPeak === undefined)) return [];
      return [[
        String(row.n),
        String(row.workers),
        row.what,
        row.realGflops.toFixed(1),
        row.peak === undefined ? '' : `${row.peak.gflops.toFixed(1)} (${row.peak.isa}, ${row.peak.threads})`,
        percent(row.ofPeak),
        row.kind === 'hpair' && dgemm?.realGflops !== undefined ? ratio(row.realGflops / dgemm.realGflops) : '',
      ]];
    });
    if (real.length > 0) {
      out.push('### Real-flop rate against the FMA peak and OpenBLAS dgemm', '');
      out.push(`Executed real flops (${record.realFlopsFormula ?? 'see the record'}) per second, against the FMA peak of the row's ISA on its thread count (hpair's native kernels: their own ISA; the others: the best ISA) and against dgemm's rate on the same threads in the same group.`, '');
      out.push(table(['N = M', 'workers', 'what', 'real GFLOP/s', 'FMA peak GFLOP/s (ISA, threads)', '% of peak', '× dgemm rate'], real), '');
    }
    const writes = rows.filter((row) => row.ofWriteBandwidth !== undefined && row.writeBytesPerSecond !== undefined);
    if (writes.length > 0) {
      out.push('### H-write-bound rows against the write bandwidth', '');
      out.push("Bytes of H written per second (hpair and numpy: the whole H; zherk: its lower triangle) against the machine's write bandwidth on the row's thread count, the faster of ordinary and streaming stores.", '');
      out.push(
        table(
          ['N = M', 'workers', 'what', 'GB/s written', 'write bandwidth GB/s (stores, threads)', '% of bandwidth'],
          writes.map((row) => [
            String(row.n),
            String(row.workers),
            row.what,
            (row.writeBytesPerSecond! / 1e9).toFixed(2),
            row.writeLimit === undefined ? '' : `${(row.writeLimit.bytesPerSecond / 1e9).toFixed(2)} (${row.writeLimit.kind}, ${row.writeLimit.threads})`,
            percent(row.ofWriteBandwidth),
          ]),
        ),
        '',
      );
    }
  }

  if ((record.scaling ?? []).length > 0) {
    out.push('## Scaling, paired within rounds', '');
    out.push(table(['N = M', 'what', 'workers', 'ratio of medians', 'paired', 'rounds'], record.scaling!.map((s) => [String(s.n), s.what, String(s.workers), ratio(s.ratio), ratio(s.paired), String(s.rounds)])), '');
  }

  if ((record.memory ?? []).length > 0) {
    out.push('## Peak RSS', '');
    out.push('`hpair compute` against numpy\'s and zherk\'s lines as scripts, each in a fresh process.', '');
    out.push(
      table(
        MEMORY_HEADER,
        memoryCells(record.memory!),
      ),
      '',
    );
  }

  if ((record.smallJobs ?? []).length > 0) {
    out.push('## Small jobs', '');
    out.push('A warm N = M = 64 job, inline on the calling thread and sent to the workers (`inlineFlops: 0`).', '');
    out.push(
      table(
        ['kernel', 'ran', 'N = M', 'median ms', 'p25–p75 ms', 'samples', 'inline'],
        record.smallJobs!.map((j) => [j.kernel, j.ran, String(j.n), ms(j.medianMs), `${ms(j.p25Ms)}–${ms(j.p75Ms)}`, String(j.samples), j.inline ? 'yes' : 'no']),
      ),
      '',
    );
  }

  if (record.abort !== undefined || record.eventLoopDelay !== undefined) {
    out.push('## Responsiveness', '');
    const lines: string[][] = [];
    if (record.abort !== undefined) lines.push([`abort during an N = M = ${record.abort.n} job (${record.abort.kernel})`, `median ${ms(record.abort.medianMs)} ms, max ${ms(record.abort.maxMs)} ms`]);
    const loop = record.eventLoopDelay;
    if (loop !== undefined) lines.push([`event-loop delay during a ${ms(loop.jobMs)} ms N = M = ${loop.n} job (${loop.kernel})`, `p50 ${ms(loop.p50Ms)} ms, p99 ${ms(loop.p99Ms)} ms, max ${ms(loop.maxMs)} ms`]);
    out.push(table(['what', 'measured'], lines), '');
  }

  if ((record.bitIdentity ?? []).length > 0) {
    out.push('## Bit-identity across worker counts', '');
    out.push(
      table(
        ['kernel', 'N', 'M', 'workers', 'schedules', 'identical'],
        record.bitIdentity!.map((b) => [b.kernel, String(b.n), String(b.m), b.workers.join(', '), (b.schedules ?? []).join(', '), b.identical ? 'yes' : '**NO**']),
      ),
      '',
    );
  }
  return `${out.join('\n').trimEnd()}\n`;
}

/** Where the report of a record at `jsonPath` goes: the same name with `.md`. */
export function reportPath(jsonPath: string): string {
  return jsonPath.endsWith('.json') ? `${jsonPath.slice(0, -'.json'.length)}.md` : `${jsonPath}.md`;
}

/** Writes the report of `record` (or of the record in `jsonPath`) beside it; returns the report's path. */
export function writeMarkdownReport(jsonPath: string, record?: unknown, to = reportPath(jsonPath)): string {
  const data = (record ?? JSON.parse(readFileSync(jsonPath, 'utf8'))) as BenchRecord;
  writeFileSync(to, markdownReport(data));
  return to;
}

// Bundled into main.js too, where import.meta.url is main.js's: only report.js itself runs as a command.
const self = fileURLToPath(import.meta.url);
if (process.argv[1] === self && /[\\/]report\.js$/.test(self)) {
  const [jsonPath, to] = process.argv.slice(2);
  if (jsonPath === undefined) {
    process.stderr.write('usage: node dist/bench/report.js FILE.json [OUT.md]\n');
    process.exit(2);
  }
  process.stdout.write(`${writeMarkdownReport(jsonPath, undefined, to)}\n`);
}
