import { HpairError, type HpairErrorCode } from '../shared/errors.js';
import type { ErrorRecord } from '../shared/protocol.js';

/**
 * A worker's error as plain data (structured clone keeps neither classes nor `code`). Only hpair's own
 * code may pass a code on: `trusted` is true for HpairErrors raised by the worker machinery or a built-in
 * kernel, never for anything a user's kernel threw (it could not otherwise be told from ours).
 */
export function toRecord(error: unknown, trusted: boolean): ErrorRecord {
  if (error instanceof Error) {
    const code = trusted && error instanceof HpairError ? error.code : undefined;
    return { name: error.name, message: error.message, stack: error.stack, code };
  }
  return { name: 'Error', message: String(error), stack: undefined, code: undefined };
}

/** Rebuilds a worker's error on this thread: hpair's own keep their code; anything a kernel threw is KERNEL_FAILED. */
export function fromRecord(record: ErrorRecord): HpairError {
  const original = Object.assign(new Error(record.message), { name: record.name, stack: record.stack });
  if (record.code !== undefined) {
    return new HpairError(record.code as HpairErrorCode, record.message, { cause: original });
  }
  return new HpairError('KERNEL_FAILED', `the kernel threw ${record.name}: ${record.message}`, { cause: original });
}
