import { HpairError, type HpairErrorCode } from '../shared/errors.js';
import type { ErrorRecord } from '../shared/protocol.js';

/**
 * A worker's error as plain data (structured clone keeps neither classes nor `code`). Only hpair's own
 * code may pass a code on: `trusted` is true for HpairErrors raised by the worker machinery or a built-in
 * kernel, never for anything a user's kernel threw (it could not otherwise be told from ours).
 * A user's kernel may throw anything: a Proxy whose traps throw, an Error whose `message` or `stack` is a
 * throwing getter, an object whose toString throws. Every part is read on its own and a part that cannot be
 * read is named as such, so the record is always built and the job always rejects with an HpairError.
 */
export function toRecord(error: unknown, trusted: boolean): ErrorRecord {
  const isError = attempt(() => error instanceof Error, false);
  if (isError) {
    const record = error as Error;
    const code = trusted && attempt(() => error instanceof HpairError, false) ? (error as HpairError).code : undefined;
    return {
      name: attempt(() => text(record.name), 'Error'),
      message: attempt(() => text(record.message), '(its message cannot be read)'),
      stack: attempt(() => (record.stack === undefined ? undefined : text(record.stack)), undefined),
      code,
    };
  }
  return { name: 'Error', message: attempt(() => text(error), '(a thrown value that cannot be read)'), stack: undefined, code: undefined };
}

/** A string primitive, or a throw: `String()` of a Symbol or of an object with a hostile toString may throw. */
function text(value: unknown): string {
  const result = String(value);
  if (typeof result !== 'string') throw new TypeError('not a string');
  return result;
}

function attempt<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}

/** Rebuilds a worker's error on this thread: hpair's own keep their code; anything a kernel threw is KERNEL_FAILED. */
export function fromRecord(record: ErrorRecord): HpairError {
  const original = Object.assign(new Error(record.message), { name: record.name, stack: record.stack });
  if (record.code !== undefined) {
    return new HpairError(record.code as HpairErrorCode, record.message, { cause: original });
  }
  return new HpairError('KERNEL_FAILED', `the kernel threw ${record.name}: ${record.message}`, { cause: original });
}
