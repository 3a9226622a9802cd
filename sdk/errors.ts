/**
 * The one error type edgewarden throws. Every error carries a stable `code` of the form
 * `EW_<AREA>_<WHAT>`; the README lists them all. `details` holds machine-readable context
 * (the input name, the log index, the firmware's reason code, ...).
 */
export class EdgewardenError<C extends string = string> extends Error {
  override readonly name = 'EdgewardenError';
  readonly code: C;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: C, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }
}

/** True when `err` is an {@link EdgewardenError}, optionally with the given code. */
export function isEdgewardenError(err: unknown, code?: string): err is EdgewardenError {
  return err instanceof EdgewardenError && (code === undefined || err.code === code);
}
