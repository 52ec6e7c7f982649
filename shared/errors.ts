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
  /**
   * A worker died (exit, uncaught error, out of memory) while running the job, or a user kernel left its
   * thread changed (a built-in replaced) so it could not be trusted with the job.
   */
  | 'WORKER_CRASHED'
  /**
   * The pool's watchdog fired: the job's workers completed no tile and answered nothing for `watchdogMs`
   * (a kernel stuck in a tile, or a thread a user kernel broke). Those threads were terminated and replaced.
   */
  | 'WORKER_UNRESPONSIVE'
  /** The pool was closed before or while the job waited. */
  | 'POOL_CLOSED'
  /** The job needs more memory than typed arrays allow or than `maxBytes` permits. */
  | 'TOO_LARGE'
  /** A user kernel threw; `cause` carries its message and stack. */
  | 'KERNEL_FAILED'
  /** A callback of yours (onProgress) threw or its promise rejected; reported on the pool's 'error' event, `cause` carries it. */
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
    if (isOwnError(error)) throw error;
    throw new HpairError('INVALID_ARGUMENT', `${what} could not be read (${describeError(error)})`, { cause: error });
  }
}

/** `instanceof` on a Proxy runs its getPrototypeOf trap, which may throw: this never does. */
function isOwnError(value: unknown): value is HpairError {
  try {
    return value instanceof HpairError;
  } catch {
    return false;
  }
}

/**
 * "Name: message" of anything thrown, for an error message of ours. Never throws: a thrown value's `name` or
 * `message` may be a throwing getter, a Proxy, or an object whose toString throws.
 */
export function describeError(error: unknown): string {
  try {
    if (error instanceof Error) {
      const name = String(error.name);
      const message = String(error.message);
      return `${name}: ${message}`;
    }
    if (typeof error === 'string') return error;
    return `a thrown ${error === null ? 'null' : typeof error}`;
  } catch {
    return 'an error whose message cannot be read';
  }
}
