/** Errors by the API's `extensions.code`, so callers can `catch (e) { if (e instanceof NotFoundError) … }`. */

export type ErrorCode =
  | "UNAUTHENTICATED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "BAD_USER_INPUT"
  | "CONFLICT"
  | "RATE_LIMITED"
  | "INTERNAL_SERVER_ERROR";

export interface GraphQLErrorShape {
  message: string;
  path?: ReadonlyArray<string | number>;
  extensions?: Record<string, unknown>;
}

/** An error the API answered with; `code` is its `extensions.code`. */
export class MediagraphError extends Error {
  readonly code: string;
  readonly extensions: Record<string, unknown>;
  readonly path: ReadonlyArray<string | number> | undefined;

  constructor(error: GraphQLErrorShape) {
    super(error.message);
    this.name = new.target.name;
    this.extensions = error.extensions ?? {};
    this.code = typeof this.extensions.code === "string" ? this.extensions.code : "INTERNAL_SERVER_ERROR";
    this.path = error.path;
  }

  /** `extensions.reason` where the API gives one (e.g. SINCE_EXPIRED, ORIGIN_NOT_ALLOWED). */
  get reason(): string | undefined {
    return typeof this.extensions.reason === "string" ? this.extensions.reason : undefined;
  }

  /** The server's request id, to quote when reporting a problem. */
  get requestId(): string | undefined {
    return typeof this.extensions.requestId === "string" ? this.extensions.requestId : undefined;
  }
}

export class UnauthenticatedError extends MediagraphError {}
export class ForbiddenError extends MediagraphError {}
export class NotFoundError extends MediagraphError {}
export class BadUserInputError extends MediagraphError {}
export class ConflictError extends MediagraphError {}
export class InternalServerError extends MediagraphError {}
export class RateLimitedError extends MediagraphError {
  /** Seconds to wait at least before retrying. */
  get retryAfter(): number {
    return Number(this.extensions.retryAfter ?? 1);
  }
}

const BY_CODE: Record<string, new (error: GraphQLErrorShape) => MediagraphError> = {
  UNAUTHENTICATED: UnauthenticatedError,
  FORBIDDEN: ForbiddenError,
  NOT_FOUND: NotFoundError,
  BAD_USER_INPUT: BadUserInputError,
  CONFLICT: ConflictError,
  RATE_LIMITED: RateLimitedError,
  INTERNAL_SERVER_ERROR: InternalServerError,
};

/** The typed error for one GraphQL error (unknown codes stay a plain MediagraphError). */
export function toError(error: GraphQLErrorShape): MediagraphError {
  const code = error.extensions?.code;
  const Type = (typeof code === "string" && BY_CODE[code]) || MediagraphError;
  return new Type(error);
}

/** The API could not be reached, or answered with no GraphQL body (proxy error, CORS refusal…). */
export class NetworkError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "NetworkError";
  }
}

/** A PUT of bytes to storage failed (status 0: the request never got an answer). */
export class TransferError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`upload to storage failed with HTTP ${status}${body ? `: ${body.slice(0, 200)}` : ""}`);
    this.name = "TransferError";
  }
}

/** The caller cancelled (UploadTask.cancel or its AbortSignal). */
export class CancelledError extends Error {
  constructor() {
    super("cancelled");
    this.name = "CancelledError";
  }
}
