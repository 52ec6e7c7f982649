// Sample statistics and table formatting shared by the benchmarks.

export interface Summary {
  /** Median of the samples, ms. */
  median: number;
  /** 25th and 75th percentiles (linear interpolation between order statistics), ms: the spread shown. */
  p25: number;
  p75: number;
  /** Median absolute deviation, ms (not scaled by 1.4826). */
  mad: number;
  min: number;
  max: number;
  samples: number;
}

function quantile(sorted: readonly number[], q: number): number {
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new Error('no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const median = quantile(sorted, 0.5);
  const deviations = sorted.map((value) => Math.abs(value - median)).sort((a, b) => a - b);
  return {
    median,
    p25: quantile(sorted, 0.25),
    p75: quantile(sorted, 0.75),
    mad: quantile(deviations, 0.5),
    min: sorted[0],
    max: sorted[sorted.length - 1],
    samples: sorted.length,
  };
}

/**
 * The median over rounds of (reference's block median / entry's block median) in the same round: a speed
 * ratio whose two sides ran seconds apart, so slow drift on a shared host cancels out of it.
 */
export function pairedRatio(entry: readonly number[] | undefined, reference: readonly number[] | undefined): number | undefined {
  if (entry === undefined || reference === undefined || entry.length === 0 || entry.length !== reference.length) return undefined;
  return summarize(entry.map((value, round) => reference[round] / value)).median;
}

/** ms with about four significant digits. */
export function ms(value: number): string {
  return value.toFixed(value < 1 ? 3 : value < 10 ? 2 : value < 1000 ? 1 : 0);
}

/** A fraction as a whole percentage ('' when unknown). */
export function percent(value: number | undefined): string {
  return value === undefined || !Number.isFinite(value) ? '' : `${(value * 100).toFixed(0)} %`;
}

export function ratio(value: number | undefined): string {
  return value === undefined || !Number.isFinite(value) ? '' : `${value.toFixed(2)}×`;
}

/** A plain aligned text table: first row is the header, numbers right-aligned. */
export function textTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, c) => Math.max(title.length, ...rows.map((row) => row[c].length)));
  const numeric = header.map((_, c) => rows.every((row) => row[c] === '' || /^[-+0-9.,×e–% ]+$/.test(row[c])));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, c) => (numeric[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** A Markdown table with the same cells, for a report. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
}

/** Seconds since the benchmark started, for progress lines. */
const started = performance.now();
export function progress(text: string): void {
  process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${text}\n`);
}
