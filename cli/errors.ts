import { HpairError, type HpairErrorCode } from '../shared/errors.js';

/**
 * How the CLI fails: every failure becomes one `CliFailure` with a code, a message, the exit code, and,
 * when one input or output is to blame, the flag and the file. It is printed as one line on stderr
 * (`hpair: --distance d.npy: …`) or, with --json, as one JSON object.
 */

/** Codes that mean "the input or the command line is wrong": exit 2. Any other HpairError is exit 1. */
const USER_ERRORS = new Set<HpairErrorCode>([
  'INVALID_ARGUMENT',
  'SHAPE_MISMATCH',
  'EMPTY_INPUT',
  'NON_FINITE',
  'ZERO_DISTANCE',
  'OVERFLOW',
  'BAD_NPY',
  'IO_ERROR',
  'TOO_LARGE',
]);

/** The CLI's own codes, beside HpairError's: a bad command line, a signal, anything unexpected. */
export type CliCode = HpairErrorCode | 'USAGE' | 'INTERRUPTED' | 'INTERNAL';

export type Flag = 'expp' | 'distance' | 'out';

export class CliFailure extends Error {
  override readonly name = 'CliFailure';

  constructor(
    readonly code: CliCode,
    message: string,
    readonly exitCode: number,
    readonly flag?: Flag,
    readonly file?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The line as printed, without `hpair: `: the flag and the file first, when there are any. */
  get text(): string {
    const where = this.flag === undefined ? '' : `--${this.flag} ${this.file ?? ''}: `;
    const hint = this.code === 'USAGE' && !/\(see hpair [^)]*--help\)$/.test(this.message) ? ' (see hpair --help)' : '';
    return `${where}${this.message}${hint}`.replace(/\s*\n\s*/g, ' ');
  }

  json(): string {
    const error: Record<string, string> = { code: this.code, message: this.text };
    if (this.flag !== undefined) error.flag = `--${this.flag}`;
    if (this.file !== undefined) error.file = this.file;
    return JSON.stringify({ error });
  }
}

export function usage(message: string): CliFailure {
  return new CliFailure('USAGE', message, 2);
}

/** An error about one flag's file: HpairErrors keep their code, anything else is IO_ERROR. */
export function about(flag: Flag, file: string, error: unknown): CliFailure {
  if (error instanceof CliFailure) return error.flag === undefined ? new CliFailure(error.code, error.message, error.exitCode, flag, file, { cause: error }) : error;
  if (error instanceof HpairError) return new CliFailure(error.code, error.message, USER_ERRORS.has(error.code) ? 2 : 1, flag, file, { cause: error });
  return new CliFailure('IO_ERROR', errnoText(error), 2, flag, file, { cause: error });
}

/** Any error as a CliFailure (exit 2 for the user's mistakes, 1 for the unexpected). */
export function toFailure(error: unknown): CliFailure {
  if (error instanceof CliFailure) return error;
  if (error instanceof HpairError) return new CliFailure(error.code, error.message, USER_ERRORS.has(error.code) ? 2 : 1, undefined, undefined, { cause: error });
  const message = error instanceof Error ? error.message : String(error);
  return new CliFailure('INTERNAL', `unexpected failure: ${message}`, 1, undefined, undefined, { cause: error });
}

/** `ENOENT: no such file or directory` from a Node error, without the syscall and path Node appends. */
export function errnoText(error: unknown): string {
  const { code, message } = error as NodeJS.ErrnoException;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
    const reason = /^E[A-Z]+: ([^,]+)/.exec(message ?? '')?.[1];
    return reason === undefined ? code : `${code}: ${reason}`;
  }
  return error instanceof Error ? error.message : String(error);
}
