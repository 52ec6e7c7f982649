// What every hpair command line shares: `--help`/`-h` on each command, and a nearest-name suggestion for an
// unknown command or option. Each command keeps its own help text beside its parser and calls parseCommand.
import { parseArgs } from 'node:util';
import { KERNEL_VARIANTS } from '../kernel/kernel-names.js';

export type OptionSpec = Record<string, { type: 'string' | 'boolean' }>;
export type OptionValues = Record<string, string | boolean | undefined>;

/**
 * The `--kernel` choices for a help text: `auto`, `native` and the native variants (one per path of paths.h) on
 * the first line, the WebAssembly and JavaScript ones on the next, indented by `indent` to the option's column.
 */
export function kernelChoices(indent: number): string {
  const native = KERNEL_VARIANTS.filter((variant) => variant.startsWith('native-'));
  const rest = KERNEL_VARIANTS.filter((variant) => !variant.startsWith('native-'));
  return `auto (default: the fastest that runs here) | native | ${native.join(' | ')} |\n${' '.repeat(indent)}${rest.join(' | ')}`;
}

/** A command's name as typed (e.g. 'cluster submit'), its help text, and its options. */
export interface CommandSpec {
  readonly command: string;
  readonly help: string;
  readonly options: OptionSpec;
}

/**
 * Parses a command's arguments; with `--help` or `-h` anywhere among them (even beside a mistake) prints the
 * command's help to stdout and returns undefined, for the caller to return (exit 0). A bad command line
 * throws `failWith(message)`, with the nearest known option suggested for an unknown one.
 */
export function parseCommand(args: readonly string[], spec: CommandSpec, failWith: (message: string) => Error): OptionValues | undefined {
  const fail = (message: string): Error => failWith(`${message} (see hpair ${spec.command} --help)`);
  if (args.some((arg) => arg === '--help' || arg === '-h')) {
    process.stdout.write(`${spec.help.trimEnd()}\n`);
    return undefined;
  }
  try {
    return parseArgs({ args: [...args], options: spec.options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    const message = (error as Error).message.split('\n')[0];
    const unknown = /^Unknown option '(-{1,2}[^']*)'/.exec(message)?.[1];
    if (unknown !== undefined) {
      const known = Object.keys(spec.options).map((name) => `--${name}`);
      throw fail(`${spec.command}: unknown option '${unknown}'${didYouMean(unknown.split('=')[0], [...known, '--help'])}`);
    }
    const positional = /^Unexpected argument '([^']*)'/.exec(message)?.[1];
    if (positional !== undefined) throw fail(`${spec.command}: unexpected argument '${positional}' (options are given as --name value)`);
    throw fail(`${spec.command}: ${message.replace(/\. To specify a positional argument.*$/, '')}`);
  }
}

/** ' (did you mean X?)' for the nearest candidate, or '' when none is near enough to be a typo of it. */
export function didYouMean(typed: string, candidates: readonly string[]): string {
  const nearest = suggest(typed, candidates);
  return nearest === undefined ? '' : ` (did you mean ${nearest}?)`;
}

/**
 * The candidate nearest to `typed` by edit distance (insertions, deletions, substitutions and swaps of two
 * neighbours each cost 1), if it is within a third of the typed length (at least 1, at most 3), or one that
 * starts with what was typed (an abbreviation); ties go to the first candidate.
 */
export function suggest(typed: string, candidates: readonly string[]): string | undefined {
  const bare = (text: string): string => text.replace(/^-+/, '').toLowerCase();
  const word = bare(typed);
  if (word === '') return undefined;
  const limit = Math.min(3, Math.max(1, Math.floor(word.length / 3)));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(word, bare(candidate));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best !== undefined && bestDistance <= limit) return best;
  return word.length >= 3 ? candidates.find((candidate) => bare(candidate).startsWith(word)) : undefined;
}

/** Optimal string alignment distance (Levenshtein with adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}
