// The bench's Markdown report (bench/report.ts), written from its JSON record: the machine's limits and each row's
// share of them are in it, where a reader of docs/results/bench.md looks, not only on the console.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { markdownReport } from '../bench/report.js';

const test = suite('bench report');

const record = {
  peak: { how: 'FMA chains', peaks: [{ isa: 'avx512', threads: 2, gflops: 200 }] },
  writeBandwidth: { how: 'slices', measurements: [{ threads: 2, kind: 'stream', bytesPerSecond: 40e9 }] },
  rows: [
    { what: 'hpair native-avx512', kind: 'hpair', kernel: 'native-avx512', n: 2048, workers: 2, gflops: 160, realGflops: 120, peak: { isa: 'avx512', threads: 2, gflops: 200 }, ofPeak: 0.6, medianMs: 1, p25Ms: 1, p75Ms: 1, samples: 5 },
    { what: 'OpenBLAS dgemm', kind: 'dgemm', kernel: 'BLAS', n: 2048, workers: 2, gflops: 150, realGflops: 150, peak: { isa: 'avx512', threads: 2, gflops: 200 }, ofPeak: 0.75, medianMs: 1, p25Ms: 1, p75Ms: 1, samples: 5 },
    { what: 'hpair native-avx512', kind: 'hpair', kernel: 'native-avx512', n: 8192, workers: 2, gflops: 90, writeBytesPerSecond: 8e9, ofWriteBandwidth: 0.2, writeLimit: { kind: 'stream', threads: 2, bytesPerSecond: 40e9 }, medianMs: 1, p25Ms: 1, p75Ms: 1, samples: 5 },
  ],
};

test('the machine limits, each row against its peak and dgemm, and H-write rows against the write bandwidth', () => {
  const md = markdownReport(record as Parameters<typeof markdownReport>[0]);
  assert.match(md, /## Machine limits/);
  assert.match(md, /\| avx512 \| 2 \| 200\.0 \|/, 'the FMA peak table');
  assert.match(md, /\| stream \| 2 \| 40\.00 \|/, 'the write bandwidth table');
  assert.match(md, /\| 2048 \| 2 \| hpair native-avx512 \| 120\.0 \| 200\.0 \(avx512, 2\) \| 60 % \| 0\.80× \|/, 'an hpair row: % of peak and × dgemm');
  assert.match(md, /\| 2048 \| 2 \| OpenBLAS dgemm \| 150\.0 \| 200\.0 \(avx512, 2\) \| 75 % \|  \|/, 'a peer row: % of peak');
  assert.match(md, /\| 8192 \| 2 \| hpair native-avx512 \| 8\.00 \| 40\.00 \(stream, 2\) \| 20 % \|/, 'an H-write row');
});

test('a run without a peak says so and prints no share of one', () => {
  const md = markdownReport({ peak: { unavailable: 'no addon' }, rows: [] } as Parameters<typeof markdownReport>[0]);
  assert.match(md, /FMA peak: not measured \(no addon\)/);
  assert.not.match(md, /% of peak/);
});

test.run();
