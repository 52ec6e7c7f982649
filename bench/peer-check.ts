// Checks that make a run's peer figures trustworthy, or fail the run saying why: every Python process (the
// long-lived peer and each fresh one) runs the OpenBLAS core chosen for it in every copy it loaded (numpy and
// scipy wheels bundle a copy each), on the thread count asked; and the peer's line, timed inside the run, is no
// slower than the same line in a fresh process started for that purpose, by more than the noise of the two.
import { basename } from 'node:path';
import type { OpenblasLibrary } from './python-peer.js';
import { summarize } from './stats.js';

const sameCore = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

function describe(lib: OpenblasLibrary): string {
  const version = /OpenBLAS\s+(\S+)/.exec(lib.config ?? '')?.[1];
  return `${lib.users.join(' and ')}'s OpenBLAS (${basename(lib.file)}${version === undefined ? '' : `, ${version}`})`;
}

/**
 * What is wrong with one process's OpenBLAS copies: one missing (numpy's, or scipy's when `scipy` is loaded),
 * one that cannot say its core, one that runs another core than `expected` (when one was chosen), or copies
 * that disagree (when none was). Empty when all is well.
 */
export function coreProblems(where: string, libs: readonly OpenblasLibrary[], expected: string | undefined, scipy: boolean): string[] {
  const problems: string[] = [];
  if (!libs.some((lib) => lib.users.includes('numpy'))) problems.push(`${where}: numpy's BLAS is not an OpenBLAS this bench can find, so its core cannot be checked`);
  if (scipy && !libs.some((lib) => lib.users.includes('scipy'))) problems.push(`${where}: scipy's BLAS is not an OpenBLAS this bench can find, so its core cannot be checked`);
  for (const lib of libs) {
    if (lib.coretype === undefined) problems.push(`${where}: ${describe(lib)} has no openblas_get_corename, so its core cannot be checked`);
    else if (expected !== undefined && !sameCore(lib.coretype, expected)) problems.push(`${where}: ${describe(lib)} runs ${lib.coretype} kernels, not the chosen ${expected}`);
  }
  const cores = [...new Set(libs.flatMap((lib) => (lib.coretype === undefined ? [] : [lib.coretype.toLowerCase()])))];
  if (expected === undefined && cores.length > 1) {
    problems.push(`${where}: the OpenBLAS copies run different cores (${libs.map((lib) => `${describe(lib)}: ${lib.coretype ?? '?'}`).join('; ')})`);
  }
  return problems;
}

/** A copy that runs another thread count than asked. Empty when all is well. */
export function threadProblems(where: string, libs: readonly OpenblasLibrary[], asked: number): string[] {
  return libs.filter((lib) => lib.threads !== asked).map((lib) => `${where}: ${describe(lib)} runs ${lib.threads ?? 'an unknown number of'} threads, not the ${asked} asked`);
}

export interface CleanVerdict {
  inRunMedianMs: number;
  cleanMedianMs: number;
  /** In-run median over the clean one (above 1: slower in the run). */
  ratio: number;
  /** The allowance: the larger of the tolerance and each side's relative spread, (p75 − p25) / median. */
  noise: number;
  ok: boolean;
}

/**
 * The in-run samples of a peer line against the same line's samples in a fresh process: it fails when the
 * in-run median is slower than the clean one by more than the noise. Faster in the run is never a failure
 * (a fresh process pays first-touch and warm-up costs the long-lived one has behind it).
 */
export function cleanVerdict(inRun: readonly number[], clean: readonly number[], tolerance: number): CleanVerdict {
  const a = summarize(inRun);
  const b = summarize(clean);
  const spread = (s: typeof a): number => (s.median > 0 ? (s.p75 - s.p25) / s.median : 0);
  const noise = Math.max(tolerance, spread(a), spread(b));
  const ratio = a.median / b.median;
  return { inRunMedianMs: a.median, cleanMedianMs: b.median, ratio, noise, ok: ratio <= 1 + noise };
}

/**
 * A peer call whose numpy advised huge pages on the arrays it allocated otherwise than the call asked, or cannot
 * say whether it did. The advice decides what numpy's line (and zherk's new C) pays to fault in its memory, so a
 * call that differs is not the variant the run claims to measure. Empty when all is well.
 */
export function hugePageProblems(where: string, reported: boolean | null | undefined, wanted: boolean): string[] {
  const chosen = wanted ? 'on' : 'off';
  if (reported === null || reported === undefined) return [`${where}: numpy cannot say whether it advises huge pages (the chosen advice is ${chosen}), so its memory use cannot be checked`];
  if (reported !== wanted) return [`${where}: numpy advises huge pages ${reported ? 'on' : 'off'}, not the chosen ${chosen}`];
  return [];
}

/**
 * Of the variants of each kind (numpy's line with the huge-page advice on and off, say), the key of the one with the
 * lowest median in the run: that one is the peer, the others are shown beside it. A variant with no samples is
 * never chosen; a tie keeps the earlier.
 */
export function fasterVariants(variants: readonly { key: string; kind: string; samples: readonly number[] }[]): Set<string> {
  const best = new Map<string, { key: string; median: number }>();
  for (const { key, kind, samples } of variants) {
    if (samples.length === 0) continue;
    const median = summarize(samples).median;
    const current = best.get(kind);
    if (current === undefined || median < current.median) best.set(kind, { key, median });
  }
  return new Set([...best.values()].map(({ key }) => key));
}
