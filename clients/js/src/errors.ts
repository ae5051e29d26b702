/**
 * Typed errors. Every error the client itself raises is a `SekishoError`; `code` tells an app
 * what to do without parsing messages:
 *
 * - `session_expired`: the login is gone (the refresh was refused, or another tab logged out).
 *   Show the login screen. Every request that was waiting for the refresh gets this same error.
 * - `invalid_credentials`: login with a wrong username or password.
 * - `network` / `timeout`: the server could not be reached, or did not answer in time. Tokens
 *   are kept; trying again later may work.
 * - `csrf_failed`: the server refused the CSRF token even after one fresh fetch of it (usually
 *   an `Origin` that is not trusted).
 * - `http`: any other non-2xx answer to one of the client's own calls (login, logout, me).
 */
export type ErrorCode =
  | 'session_expired'
  | 'invalid_credentials'
  | 'network'
  | 'timeout'
  | 'csrf_failed'
  | 'http';

export class SekishoError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message);
    this.name = 'SekishoError';
    this.code = code;
    if (options && 'cause' in options) {
      Object.defineProperty(this, 'cause', { value: options.cause, configurable: true, writable: true });
    }
  }
}

/** The server answered one of the client's own calls with a non-2xx status. */
export class ApiError extends SekishoError {
  readonly status: number;
  /** The parsed JSON body (DRF/simplejwt shape), or null. */
  readonly body: unknown;
  constructor(status: number, body: unknown, code: ErrorCode = 'http') {
    super(code, describe(status, body));
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
  /** The `detail` string of a DRF error body, if any. */
  get detail(): string | undefined {
    return detailOf(this.body);
  }
}

/** The login is gone: the refresh was refused, or the session ended. Log in again. */
export class SessionExpiredError extends SekishoError {
  /** Set when the server refused the refresh (its status and body). */
  readonly status?: number;
  readonly body?: unknown;
  constructor(message = 'The login has expired; please log in again.', status?: number, body?: unknown) {
    super('session_expired', message);
    this.name = 'SessionExpiredError';
    if (status !== undefined) this.status = status;
    if (body !== undefined) this.body = body;
  }
}

/** The server could not be reached (`network`) or did not answer in time (`timeout`). */
export class NetworkError extends SekishoError {
  constructor(code: 'network' | 'timeout', message: string, cause?: unknown) {
    super(code, message, { cause });
    this.name = 'NetworkError';
  }
}

export function detailOf(body: unknown): string | undefined {
  if (body && typeof body === 'object' && 'detail' in body) {
    const d = (body as { detail: unknown }).detail;
    if (typeof d === 'string') return d;
  }
  return undefined;
}

function describe(status: number, body: unknown): string {
  const detail = detailOf(body);
  return detail ? `${status}: ${detail}` : `HTTP ${status}`;
}
