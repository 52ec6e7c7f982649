import { HpairError, type HpairErrorCode } from '../shared/errors.js';
import type { ErrorRecord } from './protocol.js';

/** A worker's error as plain data: structured clone keeps neither classes nor `code`. */
export function toRecord(error: unknown): ErrorRecord {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { name: error.name, message: error.message, stack: error.stack, code: typeof code === 'string' ? code : undefined };
  }
  return { name: 'Error', message: String(error), stack: undefined, code: undefined };
}

/** Rebuilds a worker's error on this thread: its own HpairErrors keep their code; anything else a kernel threw is KERNEL_FAILED. */
export function fromRecord(record: ErrorRecord): HpairError {
  const original = Object.assign(new Error(record.message), { name: record.name, stack: record.stack });
  if (record.name === 'HpairError' && record.code !== undefined) {
    return new HpairError(record.code as HpairErrorCode, record.message, { cause: original });
  }
  return new HpairError('KERNEL_FAILED', `the kernel threw ${record.name}: ${record.message}`, { cause: original });
}
