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
 * - `mfa_required` / `mfa_enrolment_required`: the password was right and a second factor is
 *   needed (a `MfaRequiredError` with the challenge): ask for a code, or enrol one first.
 * - `mfa_code_invalid`: the second step's code was wrong or already used; the challenge still
 *   stands, so the user may try again.
 * - `mfa_challenge_invalid`: the challenge expired or was used up; log in again from the start.
 * - `invalid_input`: a 400 with field errors (`ApiError.fields`), e.g. a wrong code when
 *   enrolling, disabling or regenerating recovery codes.
 * - `http`: any other non-2xx answer to one of the client's own calls (login, logout, me).
 */
export type ErrorCode =
  | 'session_expired'
  | 'invalid_credentials'
  | 'network'
  | 'timeout'
  | 'csrf_failed'
  | 'mfa_required'
  | 'mfa_enrolment_required'
  | 'mfa_code_invalid'
  | 'mfa_challenge_invalid'
  | 'invalid_input'
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
  /** DRF field errors (`{"code": ["…"]}`) of a 400, or undefined. */
  get fields(): Record<string, string[]> | undefined {
    return fieldsOf(this.body);
  }
}

/** `mfa_required`: ask for a code. `mfa_enrolment_required`: enrol a factor first (see `purpose`). */
export type MfaMethod = 'totp' | 'recovery' | (string & {});

/**
 * A login waiting for its second factor, as the first step answered it. `token` is a secret
 * (it stands for the password that was just checked): keep it in memory only.
 */
export interface MfaChallenge {
  token: string;
  /** `verify`: present a code. `enrol`: `mfa.beginTotp(challenge)`, then `completeLogin` with its first code. */
  purpose: 'verify' | 'enrol';
  /** What the second step accepts, e.g. `['totp', 'recovery']`. */
  methods: MfaMethod[];
  /** Lifetime the server gave the challenge, in seconds. */
  expiresIn: number;
  /** When it expires, in local-clock ms (for a countdown; the server decides). */
  expiresAt: number;
}

/**
 * The password was right and a second factor is needed. Nothing was issued: no session cookie,
 * no tokens. Pass `challenge` to `completeLogin()` with a code (after enrolling, for
 * `mfa_enrolment_required`).
 */
export class MfaRequiredError extends ApiError {
  declare readonly code: 'mfa_required' | 'mfa_enrolment_required';
  readonly challenge: MfaChallenge;
  constructor(status: number, body: unknown, challenge: MfaChallenge) {
    super(status, body, challenge.purpose === 'enrol' ? 'mfa_enrolment_required' : 'mfa_required');
    this.name = 'MfaRequiredError';
    this.challenge = challenge;
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

/** DRF's field-error shape: every value a list of strings (and no `detail`). */
export function fieldsOf(body: unknown): Record<string, string[]> | undefined {
  if (!body || typeof body !== 'object' || Array.isArray(body) || 'detail' in body) return undefined;
  const entries = Object.entries(body as Record<string, unknown>);
  if (!entries.length || !entries.every(([, v]) => Array.isArray(v) && v.every((m) => typeof m === 'string'))) return undefined;
  return Object.fromEntries(entries) as Record<string, string[]>;
}

function describe(status: number, body: unknown): string {
  const detail = detailOf(body) ?? Object.values(fieldsOf(body) ?? {})[0]?.[0];
  return detail ? `${status}: ${detail}` : `HTTP ${status}`;
}
