/** The one error type of maas: a stable code, the exit code it maps to, and the fix. */

export const EXIT_CODES = {
  ok: 0,
  internal: 1,
  usage: 2,
  config: 3,
  notFound: 4,
  remote: 5,
  conflict: 6,
  invalidModel: 7,
  checkFailed: 8,
  cancelled: 130,
} as const;

/** Every code maas can report, with the exit code DESIGN.md assigns to its family. */
const CODE_EXITS = {
  MAAS_INTERNAL: EXIT_CODES.internal,
  MAAS_USAGE: EXIT_CODES.usage,
  MAAS_CONFIG_INVALID: EXIT_CODES.config,
  MAAS_REGISTRY_NOT_FOUND: EXIT_CODES.config,
  MAAS_REGISTRY_EXISTS: EXIT_CODES.conflict,
  MAAS_GIT_FAILED: EXIT_CODES.config,
  MAAS_FILE_NOT_FOUND: EXIT_CODES.notFound,
  MAAS_MODEL_NOT_FOUND: EXIT_CODES.notFound,
  MAAS_VERSION_NOT_FOUND: EXIT_CODES.notFound,
  MAAS_ALIAS_NOT_FOUND: EXIT_CODES.notFound,
  /** a remote name that maas.yaml does not define (`maas remote rm NAME`). */
  MAAS_REMOTE_NAME_NOT_FOUND: EXIT_CODES.notFound,
  MAAS_VERSION_CONFLICT: EXIT_CODES.conflict,
  MAAS_VERSION_IN_USE: EXIT_CODES.conflict,
  MAAS_REGISTRY_LOCKED: EXIT_CODES.conflict,
  MAAS_MODEL_INVALID: EXIT_CODES.invalidModel,
  MAAS_RUNTIME_UNAVAILABLE: EXIT_CODES.invalidModel,
  MAAS_BREAKING_CHANGE: EXIT_CODES.checkFailed,
  MAAS_VERIFY_FAILED: EXIT_CODES.checkFailed,
  MAAS_ACCURACY_FAILED: EXIT_CODES.checkFailed,
  /** a conversion produced a graph onnxruntime refuses: maas's defect. */
  MAAS_CONVERSION_FAILED: EXIT_CODES.internal,
  MAAS_DEVICE_UNAVAILABLE: EXIT_CODES.config,
  MAAS_REMOTE_UNREACHABLE: EXIT_CODES.remote,
  MAAS_REMOTE_UNAUTHORIZED: EXIT_CODES.remote,
  MAAS_REMOTE_NOT_FOUND: EXIT_CODES.remote,
  MAAS_REMOTE_REJECTED: EXIT_CODES.remote,
  MAAS_DIGEST_MISMATCH: EXIT_CODES.remote,
  MAAS_ARCHIVE_UNSAFE: EXIT_CODES.remote,
  MAAS_BAD_INPUT: EXIT_CODES.usage,
  MAAS_PAYLOAD_TOO_LARGE: EXIT_CODES.usage,
  /** a request body compressed in a way the server cannot undo (HTTP 415). */
  MAAS_UNSUPPORTED_ENCODING: EXIT_CODES.usage,
  MAAS_UNAUTHORIZED: EXIT_CODES.usage,
  MAAS_FORBIDDEN: EXIT_CODES.usage,
  MAAS_OVERLOADED: EXIT_CODES.internal,
  /** a version that cannot fit the serving memory budget beside the pinned ones: the budget is the user's to change. */
  MAAS_BUDGET_EXCEEDED: EXIT_CODES.config,
  MAAS_TIMEOUT: EXIT_CODES.internal,
  MAAS_INFERENCE_FAILED: EXIT_CODES.internal,
  MAAS_MODEL_NOT_READY: EXIT_CODES.internal,
  MAAS_CANCELLED: EXIT_CODES.cancelled,
} as const;

export type ErrorCode = keyof typeof CODE_EXITS;

/** Every code, for the README's table and its test. */
export const ERROR_CODES = Object.keys(CODE_EXITS) as ErrorCode[];

export interface MaasErrorOptions {
  hint?: string;
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class MaasError extends Error {
  override readonly name = 'MaasError';
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: MaasErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    Object.setPrototypeOf(this, new.target.prototype);
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }

  get exitCode(): number {
    return CODE_EXITS[this.code];
  }

  toJSON(): { code: ErrorCode; message: string; hint?: string; details?: Record<string, unknown> } {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      ...(this.details === undefined ? {} : { details: this.details }),
    };
  }
}

export function isMaasError(error: unknown): error is MaasError {
  return error instanceof MaasError;
}

/** Node's errno errors carry a `code` string such as ENOENT. */
export function errnoCode(error: unknown): string | undefined {
  if (error && typeof error === 'object' && 'code' in error && typeof error.code === 'string') return error.code;
  return undefined;
}

/** The message of anything thrown, for wrapping foreign errors. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A value from a request, cut for an error message: a client's 1 MB name is not sent back whole.
 * The cut never splits a character: half a surrogate pair is not text (grpc-js throws on it).
 */
export function clipped(value: string, max = 100): string {
  if (value.length <= max) return value;
  const end = /[\uD800-\uDBFF]/.test(value.charAt(max - 1)) ? max - 1 : max;
  return `${value.slice(0, end)}…`;
}
