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
  calls: Call[] = [];
  jar = new Map<string, string>();
  private seq = 0;
  private currentRefresh: string | null = null;
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
        return json(200, this.issuePair());
      case 'POST /api/token/refresh/': {
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
        return json(200, this.issuePair());
      }
      case 'POST /api/token/blacklist/':
        this.currentRefresh = null;
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
        const sid = `s${++this.seq}`;
        this.jar.set('sessionid', sid);
        const rotated = `csrf${++this.seq}`;
        this.jar.set('csrftoken', rotated);
        this.csrfForSession.set(sid, rotated);
        return json(200, { user: this.user });
      }
      case 'POST /api/auth/logout/': {
        const fail = this.csrfFailure(headers);
        if (fail) return json(403, { detail: fail });
        this.jar.delete('sessionid');
        return json(200, {});
      }
    }
    // Any other path is a protected API endpoint.
    if (this.rejectEverything) return json(401, { detail: 'Given token not valid for any token type', code: 'token_not_valid' });
    if (bearer) {
      if (!this.validAccess.has(bearer)) return json(401, { detail: 'Given token not valid for any token type', code: 'token_not_valid' });
      return json(200, path === '/api/auth/me/' ? this.user : { ok: true, path, token: bearer });
    }
    const sid = this.jar.get('sessionid');
    if (!sid) return json(401, { detail: 'Authentication credentials were not provided.' });
    if (method !== 'GET') {
      const fail = this.csrfFailure(headers);
      if (fail) return json(403, { detail: fail });
    }
    return json(200, path === '/api/auth/me/' ? this.user : { ok: true, path });
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
