// A small fake of sekisho's HTTP contract (token pair, rotation, me, CSRF-protected session
// endpoints) for unit tests of the client's state machine. It keeps a record of every call so
// tests can count refreshes and see which tokens were presented.
import { createClient, memoryGeneration, type ClientOptions, type SekishoClient } from '../src/index.js';
import type { GenerationStore, LockFn, TabChannel, TabMessage } from '../src/platform.js';

export const ORIGIN = 'http://app.test';

function b64url(s: string): string {
  return btoa(s).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

export function makeToken(claims: Record<string, unknown>): string {
  return `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}.sig`;
}

export interface Call {
  method: string;
  path: string;
  headers: Headers;
  body: unknown;
}

type RefreshBehaviour = 'ok' | 'reject' | 'error500' | 'network' | 'hang';

/**
 * The user's second factor as the fake keeps it. The "TOTP" is a list of codes in the order an
 * authenticator app would show them; a code counts once, and only codes after the last used
 * one count (sekisho's step rule).
 */
export class FakeMfa {
  /** The codes of the confirmed (or pending) factor; `nextCode()` hands them out. */
  codes = ['111111', '222222', '333333', '444444', '555555', '666666'];
  confirmed = false;
  pending = false;
  /** Staff must enrol before logging in (`mfa.required_for_staff`). */
  enrolRequired = false;
  recovery = new Set<string>();
  lastUsed = -1;
  challengeLifetime = 300;
  challenges = new Map<string, { flow: 'session' | 'token'; purpose: 'verify' | 'enrol'; expiresAt: number }>();
  private handed = -1;

  /** The next code the app would show (each call a later one). */
  nextCode(): string {
    this.handed = Math.max(this.handed, this.lastUsed) + 1;
    return this.codes[this.handed];
  }

  /** Uses `code` up if it is one of the codes after the last used one. */
  use(code: unknown): boolean {
    const i = this.codes.indexOf(String(code));
    if (i < 0 || i <= this.lastUsed) return false;
    this.lastUsed = i;
    return true;
  }

  newRecoveryCodes(): string[] {
    const codes = Array.from({ length: 10 }, (_, i) => `rc${String(i).padStart(3, '0')}-${Math.random().toString(36).slice(2, 7)}`);
    this.recovery = new Set(codes);
    return codes;
  }
}

export class FakeServer {
  /** Server clock minus the client's, in ms. */
  skewMs = 0;
  accessLifetime = 300;
  rotate = true;
  refreshBehaviour: RefreshBehaviour = 'ok';
  /** When set, refresh answers only after this promise resolves. */
  refreshGate: Promise<void> | null = null;
  /** When true, every API call answers 401 whatever the token. */
  rejectEverything = false;
  /** `jwt.refresh_cookie = true`: the refresh token only in a cookie (the jar), refresh needs the CSRF header. */
  refreshCookie = false;
  mfa = new FakeMfa();
  calls: Call[] = [];
  jar = new Map<string, string>();
  private seq = 0;
  currentRefresh: string | null = null;
  private validAccess = new Set<string>();
  private csrfForSession = new Map<string, string>();
  user = { id: 1, username: 'ann', email: '', first_name: '', last_name: '', is_staff: false, is_superuser: false, groups: [], permissions: [] };

  nowSec(): number {
    return Math.floor((Date.now() + this.skewMs) / 1000);
  }

  issueAccess(lifetime = this.accessLifetime): string {
    const iat = this.nowSec();
    const t = makeToken({ token_type: 'access', iat, exp: iat + lifetime, jti: `a${++this.seq}` });
    this.validAccess.add(t);
    return t;
  }

  issuePair(): { access: string; refresh: string } {
    const iat = this.nowSec();
    this.currentRefresh = makeToken({ token_type: 'refresh', iat, exp: iat + 86400, jti: `r${++this.seq}` });
    return { access: this.issueAccess(), refresh: this.currentRefresh };
  }

  /** A pair as the token endpoints answer it (in refresh-cookie mode: the cookie and `access`). */
  private pairResponse(extra: Record<string, unknown> = {}): Response {
    const pair = this.issuePair();
    if (!this.refreshCookie) return json(200, { ...pair, ...extra });
    this.jar.set('refresh_token', pair.refresh);
    return json(200, { access: pair.access, ...extra });
  }

  /** The 401 a first step answers when a second factor is due, or null. */
  private gate(flow: 'session' | 'token'): Response | null {
    const m = this.mfa;
    const purpose = m.confirmed ? 'verify' : m.enrolRequired ? 'enrol' : null;
    if (!purpose) return null;
    const token = `ch${++this.seq}`.padEnd(32, '0');
    m.challenges.set(token, { flow, purpose, expiresAt: Date.now() + m.challengeLifetime * 1000 });
    const code = purpose === 'verify' ? 'mfa_required' : 'mfa_enrolment_required';
    return json(401, {
      detail: purpose === 'verify' ? 'Second factor required.' : 'Second factor enrolment required.',
      code,
      [code]: true,
      challenge: token,
      methods: purpose === 'verify' ? ['totp', 'recovery'] : ['totp'],
      expires_in: m.challengeLifetime,
    });
  }

  /** The code or recovery code of a request body, as sekisho validates it (400 field errors). */
  private factorOf(body: Record<string, unknown> | null): { kind: 'code' | 'recovery_code'; value: string } | Response {
    const code = body?.code;
    const rc = body?.recovery_code;
    if (code !== undefined && rc !== undefined) return json(400, { non_field_errors: ['Give exactly one of code and recovery_code.'] });
    if (rc !== undefined) return { kind: 'recovery_code', value: String(rc) };
    if (code === undefined || code === '') return json(400, { code: ['This field is required.'] });
    if (!/^[0-9]{6}$/.test(String(code))) return json(400, { code: ['Enter a valid 6-digit code.'] });
    return { kind: 'code', value: String(code) };
  }

  private useFactor(f: { kind: 'code' | 'recovery_code'; value: string }): boolean {
    if (f.kind === 'code') return this.mfa.confirmed && this.mfa.use(f.value);
    return this.mfa.recovery.delete(f.value);
  }

  private wrongCodeField(f: { kind: 'code' | 'recovery_code' }): Response {
    return json(400, { [f.kind]: ['The code is incorrect or has already been used.'] });
  }

  /** The second step of a login: the challenge, then the code; answers the first step's success. */
  private secondStep(flow: 'session' | 'token', body: Record<string, unknown> | null): Response | { recovery: string[] | null } {
    if (!body?.challenge) return json(400, { challenge: ['This field is required.'] });
    const f = this.factorOf(body);
    if (f instanceof Response) return f;
    const ch = this.mfa.challenges.get(String(body.challenge));
    if (!ch || ch.flow !== flow || Date.now() >= ch.expiresAt) {
      return json(401, { detail: 'The second-factor challenge is invalid or has expired.', code: 'mfa_challenge_invalid' });
    }
    let recovery: string[] | null = null;
    if (ch.purpose === 'enrol') {
      if (f.kind !== 'code' || !this.mfa.pending || !this.mfa.use(f.value)) return this.codeInvalid();
      this.mfa.pending = false;
      this.mfa.confirmed = true;
      recovery = this.mfa.newRecoveryCodes();
    } else if (!this.useFactor(f)) {
      return this.codeInvalid();
    }
    this.mfa.challenges.delete(String(body.challenge));
    return { recovery };
  }

  private codeInvalid(): Response {
    return json(401, { detail: 'The code is incorrect or has already been used.', code: 'mfa_code_invalid' });
  }

  /**
   * A factor change ends every other login: a bearer caller's family is replaced (the old
   * refresh token stops working) and the new pair answered; a session caller continues under a
   * new session id with a CSRF token bound to it.
   */
  private continued(via: 'bearer' | 'session' | null, body: Record<string, unknown>): Response {
    if (via === 'bearer') return this.pairResponse(body);
    return this.startSession(body, false);
  }

  /** `/api/auth/mfa/…` for an authenticated caller (or, to begin, the holder of an enrolment challenge). */
  private mfaRoute(method: string, path: string, body: Record<string, unknown> | null, via: 'bearer' | 'session' | null): Response {
    const authed = via !== null;
    const m = this.mfa;
    if (method === 'POST' && path === '/api/auth/mfa/totp/' && body?.challenge) {
      const ch = m.challenges.get(String(body.challenge));
      if (!ch || ch.purpose !== 'enrol' || Date.now() >= ch.expiresAt) {
        return json(401, { detail: 'The second-factor challenge is invalid or has expired.', code: 'mfa_challenge_invalid' });
      }
      return this.beginTotp();
    }
    if (!authed) return json(401, { detail: 'Authentication credentials were not provided.' });
    switch (`${method} ${path}`) {
      case 'GET /api/auth/mfa/':
        return json(200, {
          totp: m.confirmed,
          totp_pending: m.pending,
          recovery_codes_left: m.recovery.size,
          methods: m.confirmed ? (m.recovery.size ? ['totp', 'recovery'] : ['totp']) : [],
        });
      case 'POST /api/auth/mfa/totp/':
        return this.beginTotp();
      case 'POST /api/auth/mfa/totp/confirm/': {
        const f = this.factorOf(body);
        if (f instanceof Response) return f;
        if (!m.pending || !m.use(f.value)) return this.wrongCodeField(f);
        m.pending = false;
        m.confirmed = true;
        return this.continued(via, { recovery_codes: m.newRecoveryCodes() });
      }
      case 'POST /api/auth/mfa/totp/disable/':
      case 'POST /api/auth/mfa/recovery-codes/': {
        const f = this.factorOf(body);
        if (f instanceof Response) return f;
        if (!m.confirmed) return json(400, { detail: 'No second factor is enrolled.', code: 'mfa_not_enrolled' });
        if (!this.useFactor(f)) return this.wrongCodeField(f);
        if (path.endsWith('/disable/')) {
          m.confirmed = false;
          m.recovery.clear();
          return this.continued(via, {});
        }
        return json(200, { recovery_codes: m.newRecoveryCodes() });
      }
    }
    return json(404, { detail: 'Not found.' });
  }

  private beginTotp(): Response {
    if (this.mfa.confirmed) return json(409, { detail: 'A second factor is already enrolled.', code: 'mfa_already_enrolled' });
    this.mfa.pending = true;
    return json(200, {
      secret: 'JBSWY3DPEHPK3PXP',
      otpauth_uri: 'otpauth://totp/sekisho:ann?secret=JBSWY3DPEHPK3PXP&issuer=sekisho',
      qr_svg: '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 29 29"><path d="M0 0h7v7H0z"/></svg>',
    });
  }

  /** Makes every access token issued so far invalid (as if it expired). */
  expireAccessTokens(): void {
    this.validAccess.clear();
  }

  get refreshToken(): string | null {
    return this.currentRefresh;
  }

  count(path: string): number {
    return this.calls.filter((c) => c.path === path).length;
  }

  fetch: typeof fetch = async (input, init) => {
    const req = new Request(new URL(String(input instanceof Request ? input.url : input), ORIGIN), init);
    const url = new URL(req.url);
    const text = req.method === 'GET' ? '' : await req.text();
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = text;
    }
    this.calls.push({ method: req.method, path: url.pathname, headers: req.headers, body });
    // A retry loop that never ends would otherwise spin on microtasks and hang the run.
    if (this.calls.length > 2000) throw new Error('runaway: more than 2000 requests');
    return this.route(req.method, url.pathname, req.headers, body as Record<string, unknown> | null, init?.signal ?? null);
  };

  private async route(method: string, path: string, headers: Headers, body: Record<string, unknown> | null, signal: AbortSignal | null): Promise<Response> {
    const bearer = headers.get('authorization')?.replace(/^Bearer /i, '') ?? null;
    switch (`${method} ${path}`) {
      case 'POST /api/token/':
        if (body?.password !== 'pw') return json(401, { detail: 'No active account found with the given credentials' });
        return this.gate('token') ?? this.pairResponse();
      case 'POST /api/token/mfa/': {
        const passed = this.secondStep('token', body);
        if (passed instanceof Response) return passed;
        return this.pairResponse(passed.recovery ? { recovery_codes: passed.recovery } : {});
      }
      case 'POST /api/token/refresh/': {
        if (this.refreshCookie) {
          const fail = this.csrfFailure(headers);
          if (fail) return json(403, { detail: fail });
          if (!body?.refresh) body = { ...body, refresh: this.jar.get('refresh_token') };
        }
        if (this.refreshGate) await this.refreshGate;
        if (this.refreshBehaviour === 'network') throw new TypeError('Failed to fetch');
        if (this.refreshBehaviour === 'hang') {
          return new Promise<Response>((_, reject) => {
            signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
          });
        }
        if (this.refreshBehaviour === 'error500') return json(500, { detail: 'A server error occurred.' });
        if (this.refreshBehaviour === 'reject' || body?.refresh !== this.currentRefresh) {
          return json(401, { detail: 'Token is blacklisted', code: 'token_not_valid' });
        }
        if (!this.rotate) return json(200, { access: this.issueAccess() });
        return this.pairResponse();
      }
      case 'POST /api/token/blacklist/':
        this.currentRefresh = null;
        this.jar.delete('refresh_token');
        return json(200, {});
      case 'GET /api/auth/csrf/': {
        const token = `csrf${++this.seq}`;
        this.jar.set('csrftoken', token);
        return json(200, { csrfToken: token });
      }
      case 'POST /api/auth/login/': {
        const fail = this.csrfFailure(headers);
        if (fail) return json(403, { detail: fail });
        if (body?.password !== 'pw') return json(401, { detail: 'No active account found with the given credentials' });
        return this.gate('session') ?? this.startSession();
      }
      case 'POST /api/auth/login/mfa/': {
        const fail = this.csrfFailure(headers);
        if (fail) return json(403, { detail: fail });
        const passed = this.secondStep('session', body);
        if (passed instanceof Response) return passed;
        return this.startSession(passed.recovery ? { recovery_codes: passed.recovery } : {});
      }
      case 'POST /api/auth/logout/': {
        const fail = this.csrfFailure(headers);
        if (fail) return json(403, { detail: fail });
        this.jar.delete('sessionid');
        return json(200, {});
      }
    }
    const mfa = path.startsWith('/api/auth/mfa/');
    if (mfa && method === 'POST' && path === '/api/auth/mfa/totp/' && body?.challenge) return this.mfaRoute(method, path, body, null);
    // Any other path is a protected API endpoint.
    if (this.rejectEverything) return json(401, { detail: 'Given token not valid for any token type', code: 'token_not_valid' });
    if (bearer) {
      if (!this.validAccess.has(bearer)) return json(401, { detail: 'Given token not valid for any token type', code: 'token_not_valid' });
      if (mfa) return this.mfaRoute(method, path, body, 'bearer');
      return json(200, path === '/api/auth/me/' ? this.user : { ok: true, path, token: bearer });
    }
    const sid = this.jar.get('sessionid');
    if (!sid) return mfa ? this.mfaRoute(method, path, body, null) : json(401, { detail: 'Authentication credentials were not provided.' });
    if (method !== 'GET') {
      const fail = this.csrfFailure(headers);
      if (fail) return json(403, { detail: fail });
    }
    if (mfa) return this.mfaRoute(method, path, body, 'session');
    return json(200, path === '/api/auth/me/' ? this.user : { ok: true, path });
  }

  private startSession(extra: Record<string, unknown> = {}, withUser = true): Response {
    const old = this.jar.get('sessionid');
    if (old && !withUser) this.csrfForSession.delete(old);
    const sid = `s${++this.seq}`;
    this.jar.set('sessionid', sid);
    const rotated = `csrf${++this.seq}`;
    this.jar.set('csrftoken', rotated);
    this.csrfForSession.set(sid, rotated);
    return json(200, withUser ? { user: this.user, ...extra } : extra);
  }

  private csrfFailure(headers: Headers): string | null {
    const cookie = this.jar.get('csrftoken');
    if (!cookie) return 'CSRF Failed: CSRF cookie not set.';
    const header = headers.get('x-csrftoken');
    if (!header) return 'CSRF Failed: CSRF token missing.';
    const sid = this.jar.get('sessionid');
    const expected = sid ? this.csrfForSession.get(sid) : undefined;
    if (header !== cookie || (sid && expected !== cookie)) return 'CSRF Failed: CSRF token incorrect.';
    return null;
  }
}

export function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

/** An in-process stand-in for Web Locks shared by the "tabs" of one test. */
export function sharedLock(): LockFn & { holds: number } {
  const tails = new Map<string, Promise<unknown>>();
  const fn = (<T>(name: string, _timeout: number, f: () => Promise<T>): Promise<T> => {
    const tail = tails.get(name) ?? Promise.resolve();
    const run = tail.then(() => {
      fn.holds++;
      return f();
    });
    tails.set(name, run.then(() => undefined, () => undefined));
    return run;
  }) as LockFn & { holds: number };
  fn.holds = 0;
  return fn;
}

/** An in-process stand-in for BroadcastChannel: messages arrive asynchronously at the other tabs. */
export function sharedBus() {
  const members = new Map<string, Set<(m: TabMessage) => void>>();
  return (name: string): TabChannel => {
    const mine = new Set<(m: TabMessage) => void>();
    let set = members.get(name);
    if (!set) members.set(name, (set = new Set()));
    const group = set;
    const deliver = (m: TabMessage) => mine.forEach((l) => l(structuredClone(m)));
    group.add(deliver);
    return {
      post: (m) => {
        for (const other of group) if (other !== deliver) setTimeout(() => other(m), 0);
      },
      onMessage: (l) => void mine.add(l),
      close: () => void group.delete(deliver),
    };
  };
}

export interface Tab {
  client: SekishoClient;
}

export function jwtClient(server: FakeServer, options: Partial<ClientOptions> = {}, shared?: { lock: LockFn; bus: ReturnType<typeof sharedBus>; gen: GenerationStore }): SekishoClient {
  const gen = shared?.gen ?? memoryGeneration();
  return createClient({
    mode: 'jwt',
    ...options,
    platform: {
      fetch: server.fetch,
      origin: ORIGIN,
      readCookie: (n) => server.jar.get(n) ?? null,
      lock: shared?.lock ?? sharedLock(),
      channel: shared ? shared.bus : () => null,
      generation: () => gen,
      ...options.platform,
    },
  });
}

export function sessionClient(server: FakeServer, options: Partial<ClientOptions> = {}): SekishoClient {
  return createClient({
    mode: 'session',
    ...options,
    platform: {
      fetch: server.fetch,
      origin: ORIGIN,
      readCookie: (n) => server.jar.get(n) ?? null,
      lock: sharedLock(),
      channel: () => null,
      generation: () => memoryGeneration(),
      ...options.platform,
    },
  });
}

/** Resolves with how many ms the promise took, or rejects if it takes longer than `ms`. */
export async function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}
