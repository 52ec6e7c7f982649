/**
 * Every failure hpair reports on purpose is an `HpairError` with a stable `code`.
 * Codes are part of the public API: match on `code`, never on `message`.
 */
export type HpairErrorCode =
  /** An argument has the wrong type, or an option is out of range. */
  | 'INVALID_ARGUMENT'
  /** Array lengths disagree with the declared shape, or `distance.length !== M`. */
  | 'SHAPE_MISMATCH'
  /** `expp` has no rows (N < 1). */
  | 'EMPTY_INPUT'
  /** A NaN or ±Infinity in `expp` or `distance`; the message names the first index. */
  | 'NON_FINITE'
  /** `distance[m] === 0` for some m ≥ 1 (the formula divides by it). */
  | 'ZERO_DISTANCE'
  /** H overflowed: an entry came out ±Infinity or NaN (values too large, or distances too small). */
  | 'OVERFLOW'
  /** A `.npy` file that is malformed, truncated, hostile or of an unsupported dtype/layout. */
  | 'BAD_NPY'
  /** A file could not be read or written, another run holds an output's lock, or Redis could not be reached. */
  | 'IO_ERROR'
  /** The job's `signal` was aborted. */
  | 'ABORTED'
  /** The job ran longer than its `timeoutMs`. */
  | 'TIMEOUT'
  /** The pool's queue already holds `maxQueue` jobs. */
  | 'QUEUE_FULL'
  /** A worker died (exit, uncaught error, out of memory) while running the job. */
  | 'WORKER_CRASHED'
  /** The pool was closed before or while the job waited. */
  | 'POOL_CLOSED'
  /** The job needs more memory than typed arrays allow or than `maxBytes` permits. */
  | 'TOO_LARGE'
  /** A user kernel threw; `cause` carries its message and stack. */
  | 'KERNEL_FAILED'
  /** A callback of yours (onProgress) threw; reported on the pool's 'error' event, `cause` carries it. */
  | 'CALLBACK_FAILED';

export class HpairError extends Error {
  override readonly name: string = 'HpairError';
  readonly code: HpairErrorCode;

  constructor(code: HpairErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * ABORTED, recognisable as Node's own aborts are: `name` is 'AbortError' and `cause` is the signal's
 * reason. It is an HpairError all the same (instanceof, `code`).
 */
export class HpairAbortError extends HpairError {
  override readonly name = 'AbortError';

  constructor(message: string, reason: unknown) {
    super('ABORTED', message, { cause: reason });
  }
}

export function isHpairError(value: unknown): value is HpairError {
  return value instanceof HpairError;
}

/**
 * Runs `read`, which reads a caller's arguments, and turns anything but an HpairError it throws (a Proxy
 * trap, a throwing getter) into INVALID_ARGUMENT, so every error a caller sees from hpair is an HpairError.
 */
export function readArguments<T>(what: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof HpairError) throw error;
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : 'a non-Error value';
    throw new HpairError('INVALID_ARGUMENT', `${what} could not be read (${reason})`, { cause: error });
  }
}
