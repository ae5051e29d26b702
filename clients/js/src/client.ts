import { ApiError, NetworkError, SekishoError, SessionExpiredError, detailOf, type MfaChallenge } from './errors.js';
import { MfaApi, challengeError, challengeToken, factorBody, isMfaAnswer, mfaError, type LoginResult, type MfaFactor } from './mfa.js';
import { estimateSkew, tokenTimes } from './jwt.js';
import {
  browserPlatform,
  memoryStorage,
  webStorage,
  type GenerationStore,
  type Platform,
  type TabChannel,
  type TabMessage,
  type TokenStorage,
} from './platform.js';

export type Mode = 'session' | 'jwt';

/** `unknown` until `restore()` (or a login) has answered; then one of the other two. */
export type Status = 'unknown' | 'anonymous' | 'authenticated';

/** The user as `GET /api/auth/me/` returns it (Django's `auth.User` shape). */
export interface User {
  id: number | string;
  username: string;
  email: string;
  first_name: string;
  last_name: string;
  is_staff: boolean;
  is_superuser: boolean;
  groups: string[];
  permissions: string[];
  [field: string]: unknown;
}

export interface Paths {
  token: string;
  refresh: string;
  blacklist: string;
  csrf: string;
  login: string;
  logout: string;
  me: string;
  /** The second step of a session login. */
  loginMfa: string;
  /** The second step of a token login. */
  tokenMfa: string;
  mfa: string;
  mfaTotp: string;
  mfaTotpConfirm: string;
  mfaTotpDisable: string;
  mfaRecoveryCodes: string;
}

export const DEFAULT_PATHS: Paths = {
  token: '/api/token/',
  refresh: '/api/token/refresh/',
  blacklist: '/api/token/blacklist/',
  csrf: '/api/auth/csrf/',
  login: '/api/auth/login/',
  logout: '/api/auth/logout/',
  me: '/api/auth/me/',
  loginMfa: '/api/auth/login/mfa/',
  tokenMfa: '/api/token/mfa/',
  mfa: '/api/auth/mfa/',
  mfaTotp: '/api/auth/mfa/totp/',
  mfaTotpConfirm: '/api/auth/mfa/totp/confirm/',
  mfaTotpDisable: '/api/auth/mfa/totp/disable/',
  mfaRecoveryCodes: '/api/auth/mfa/recovery-codes/',
};

export type LogoutReason =
  /** `logout()` was called in this tab. */
  | 'user'
  /** The server refused the refresh (revoked, expired, reused) or the session ended. */
  | 'expired'
  /** Another tab logged out (or saw the login end). */
  | 'other_tab';

export interface LogoutEvent {
  reason: LogoutReason;
  error?: SekishoError;
}

export interface Events {
  /** `status` or `user` changed. */
  change: { status: Status; user: User | null };
  login: { user: User | null };
  logout: LogoutEvent;
  /** New tokens: from this tab's refresh (`network`) or adopted from another tab (`tab`). */
  refresh: { source: 'network' | 'tab'; expiresAt: number | null };
}

export interface ClientOptions {
  mode: Mode;
  /** Where sekisho answers, e.g. `https://api.example.com`. Default: the page's own origin. */
  baseURL?: string;
  paths?: Partial<Paths>;
  /** Default `csrftoken` (sekisho's `csrf.cookie_name`). */
  csrfCookieName?: string;
  /** Default `X-CSRFToken` (sekisho's `csrf.header_name`). */
  csrfHeaderName?: string;
  /**
   * JWT mode: where the refresh token is kept. `memory` (default) keeps it out of reach of
   * storage-scraping XSS and loses it on reload (other open tabs hand it over); `session` keeps it
   * per tab across reloads; `local` keeps it across restarts; or any `TokenStorage`.
   */
  storage?: 'memory' | 'session' | 'local' | TokenStorage;
  /** Also keep the access token in `storage` (default false: memory only). */
  persistAccess?: boolean;
  /**
   * JWT mode with the server's `jwt.refresh_cookie = true`: the refresh token lives only in an
   * HttpOnly cookie; refresh sends an empty body with the CSRF header.
   */
  refreshCookie?: boolean;
  /** Refresh shortly before the access token expires, and before sending an expired one. Default true. */
  proactiveRefresh?: boolean;
  /** How long before expiry the proactive refresh runs, in ms. Default: a quarter of the token's lifetime, at most 30 s. */
  refreshMargin?: number;
  /** Coordinate tabs (one refresh at a time, shared tokens, shared logout). Default true. */
  crossTab?: boolean;
  /** Names the storage keys, the lock and the channel; two clients on one origin need different names. Default `sekisho`. */
  name?: string;
  /** Upper bound on one refresh (and on waiting for another tab's), in ms. Default 15000. */
  refreshTimeout?: number;
  /** How long `restore()` waits for another tab to hand over its login, in ms. Default 250. */
  syncTimeout?: number;
  onLogout?: (event: LogoutEvent) => void;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
  /** Replaces parts of the browser environment (for tests and unusual hosts). */
  platform?: Partial<Platform>;
}

/**
 * One request's view of authentication, produced by `prepareRequest` and consumed by
 * `handleResponse`. Adapters (axios, fetch, your own) carry it between the two.
 */
export interface Attempt {
  /** Headers to set on the request. */
  headers: Record<string, string>;
  /** Set when the request must carry cookies to another origin. */
  credentials?: 'include';
  /** Whether the URL belongs to the API (tokens are never sent anywhere else). */
  api: boolean;
  /** The access token sent, if any. */
  token: string | null;
  /** Whether a CSRF token was sent. */
  csrf: boolean;
  /** Whether this is the retry (a request is retried at most once). */
  retried: boolean;
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** How long a tab that finds the tokens changed waits for the other tab's message, in ms. */
const ADOPT_TIMEOUT = 1000;
type Listener<K extends keyof Events> = (event: Events[K]) => void;

export class SekishoClient {
  readonly mode: Mode;
  readonly paths: Paths;
  /** The current user's second factors (TOTP enrolment, recovery codes). */
  readonly mfa: MfaApi;
  private readonly base: string;
  private readonly o: Required<Pick<ClientOptions, 'csrfCookieName' | 'csrfHeaderName' | 'persistAccess' | 'refreshCookie' | 'proactiveRefresh' | 'crossTab' | 'name' | 'refreshTimeout' | 'syncTimeout'>> & Pick<ClientOptions, 'refreshMargin' | 'onLogout'>;
  private readonly p: Platform;
  private readonly storage: TokenStorage;
  private readonly persistent: boolean;
  private readonly channel: TabChannel | null;
  private readonly gens: GenerationStore;
  private readonly apiOrigin: string | null;
  private readonly crossOrigin: boolean;
  private readonly tabId = Math.random().toString(36).slice(2);
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();
  private readonly genWaiters = new Set<() => void>();

  private access: string | null = null;
  private refreshToken: string | null = null;
  private accessExpiresAt: number | null = null;
  private accessLifetime: number | null = null;
  private skew = 0;
  private gen = 0;
  private _status: Status = 'unknown';
  private _user: User | null = null;
  private refreshing: Promise<string> | null = null;
  private csrfFetching: Promise<string> | null = null;
  private csrfFromBody: string | null = null;
  private restoring: Promise<User | null> | null = null;
  private timer: unknown = null;

  constructor(options: ClientOptions) {
    if (options.mode !== 'session' && options.mode !== 'jwt') {
      throw new TypeError("options.mode must be 'session' or 'jwt'");
    }
    this.mode = options.mode;
    this.paths = { ...DEFAULT_PATHS, ...options.paths };
    this.base = (options.baseURL ?? '').replace(/\/+$/, '');
    this.o = {
      csrfCookieName: options.csrfCookieName ?? 'csrftoken',
      csrfHeaderName: options.csrfHeaderName ?? 'X-CSRFToken',
      persistAccess: options.persistAccess ?? false,
      refreshCookie: options.refreshCookie ?? false,
      proactiveRefresh: options.proactiveRefresh ?? true,
      crossTab: options.crossTab ?? true,
      name: options.name ?? 'sekisho',
      refreshTimeout: options.refreshTimeout ?? 15000,
      syncTimeout: options.syncTimeout ?? 250,
      refreshMargin: options.refreshMargin,
      onLogout: options.onLogout,
    };
    this.p = { ...browserPlatform(options.fetch), ...options.platform };
    const s = options.storage ?? 'memory';
    this.storage = s === 'memory' ? memoryStorage() : s === 'local' || s === 'session' ? webStorage(s) : s;
    this.persistent = s !== 'memory';
    const pageOrigin = this.p.origin;
    let apiOrigin: string | null = null;
    try {
      apiOrigin = new URL(this.base || '/', pageOrigin ?? undefined).origin;
    } catch {
      apiOrigin = pageOrigin;
    }
    this.apiOrigin = apiOrigin;
    this.crossOrigin = !!pageOrigin && !!apiOrigin && apiOrigin !== pageOrigin;
    const prefix = `${this.o.name}:${this.mode}`;
    this.channel = this.o.crossTab ? this.p.channel(prefix) : null;
    this.channel?.onMessage((m) => this.onTabMessage(m));
    this.gens = this.o.crossTab && this.mode === 'jwt' ? this.p.generation(prefix) : this.p.generation('');
    if (this.mode === 'jwt') this.loadStored();
    this.mfa = new MfaApi(this);
  }

  // -------------------------------------------------------------------------------------------
  // State and events

  get status(): Status {
    return this._status;
  }

  get user(): User | null {
    return this._user;
  }

  get isAuthenticated(): boolean {
    return this._status === 'authenticated';
  }

  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends keyof Events>(event: K, listener: (event: Events[K]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => void set.delete(listener as Listener<never>);
  }

  private emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    for (const l of [...(this.listeners.get(event) ?? [])]) {
      try {
        (l as Listener<K>)(payload);
      } catch (e) {
        // A listener's bug must not break the client's state machine.
        setTimeout(() => {
          throw e;
        });
      }
    }
  }

  private changed(): void {
    this.emit('change', { status: this._status, user: this._user });
  }

  /** An absolute URL (or path) of a sekisho endpoint. */
  url(path: string): string {
    return this.base + path;
  }

  /** Stops timers and cross-tab listening. */
  destroy(): void {
    this.cancelTimer();
    this.channel?.close();
    this.listeners.clear();
  }

  // -------------------------------------------------------------------------------------------
  // Login, logout, restore

  /**
   * Finds out whether the user is logged in: session mode asks `GET /api/auth/me/`; JWT mode
   * takes the login over from another open tab, or refreshes with the stored refresh token (or
   * the refresh cookie). Call it once at startup (the Vue plugin does).
   */
  restore(): Promise<User | null> {
    if (!this.restoring) {
      const p = this.mode === 'session' ? this.restoreSession() : this.restoreJwt();
      this.restoring = p;
      const clear = () => {
        if (this.restoring === p) this.restoring = null;
      };
      p.then(clear, clear);
    }
    return this.restoring;
  }

  private async restoreSession(): Promise<User | null> {
    const res = await this.raw(this.paths.me, { method: 'GET' });
    if (res.ok) {
      this.setSessionUser((await readJson(res)) as User, false);
      return this._user;
    }
    if (res.status === 401 || res.status === 403) {
      this.setAnonymous();
      return null;
    }
    throw new ApiError(res.status, await readJson(res));
  }

  private async restoreJwt(): Promise<User | null> {
    const was = this._status;
    if (!this.access && !this.refreshToken) {
      // Another tab may hold the login in memory: ask for it.
      await this.waitForGeneration(this.gen + 1, this.o.syncTimeout);
    }
    if (this.persistent || this.o.refreshCookie) {
      // Storage and the cookie always hold the newest refresh token any tab wrote: start from
      // the shared generation rather than wait for a hand-over nobody will send.
      this.gen = Math.max(this.gen, await this.gens.read());
    }
    try {
      if (!this.access || this.expiresWithin(this.sendMargin())) {
        if (!this.refreshToken && !this.o.refreshCookie) {
          this.setAnonymous();
          return null;
        }
        await this.refresh();
      }
      if (!this._user) this._user = await this.fetchUser(this.access);
      this._status = 'authenticated';
      if (was !== 'authenticated') this.emit('login', { user: this._user });
      this.changed();
      return this._user;
    } catch (e) {
      if (e instanceof SessionExpiredError || (e instanceof ApiError && e.status === 401)) {
        if (this._status !== 'anonymous') this.setAnonymous();
        return null;
      }
      throw e;
    }
  }

  /**
   * Logs in (session or token pair, per mode) and returns the user. When the account has a
   * second factor, rejects with `MfaRequiredError` (code `mfa_required`, or
   * `mfa_enrolment_required` when the server wants one enrolled first) and nothing is issued
   * yet: finish with `completeLogin(error.challenge, { code })`.
   */
  async login(username: string, password: string): Promise<User> {
    const creds = { username, password };
    const done = this.mode === 'session' ? await this.loginSession(this.paths.login, creds) : await this.loginJwt(this.paths.token, creds);
    return done.user;
  }

  /**
   * The second step of a login that answered `MfaRequiredError`: the challenge and a TOTP
   * `code` or a `recoveryCode`. Ends in the state `login()` would have (session cookie and
   * rotated CSRF token, or tokens stored where this client keeps them; the user; the other
   * tabs told). For an enrolment challenge the code confirms the new factor, and the result
   * carries its recovery codes (shown once). A wrong code rejects with `mfa_code_invalid` (the
   * challenge still stands); an expired or used challenge with `mfa_challenge_invalid`.
   */
  async completeLogin(challenge: MfaChallenge | string, factor: MfaFactor): Promise<LoginResult<User>> {
    const body = factorBody(factor, challengeToken(challenge));
    return this.mode === 'session' ? this.loginSession(this.paths.loginMfa, body) : this.loginJwt(this.paths.tokenMfa, body);
  }

  private async loginSession(path: string, input: Record<string, string>): Promise<LoginResult<User>> {
    // Through `fetch` for the CSRF header (login is CSRF-protected); its 401s are not treated
    // as an ended session (see `handleResponse`).
    const res = await this.fetch(this.url(path), jsonInit('POST', input));
    const body = await readJson(res);
    if (!res.ok) throw loginError(res.status, body, path === this.paths.loginMfa, this.p.now());
    // The CSRF token rotates at login; the next unsafe request re-reads the cookie.
    this.csrfFromBody = null;
    const user = (body as { user?: User } | null)?.user ?? null;
    this.setSessionUser(user, true);
    this.gen += 1;
    this.channel?.post({ type: 'session', gen: this.gen, user });
    return { user: user as User, recoveryCodes: recoveryCodesOf(body) };
  }

  private async loginJwt(path: string, input: Record<string, string>): Promise<LoginResult<User>> {
    const sentAt = this.p.now();
    const res = await this.raw(path, jsonInit('POST', input), this.o.refreshCookie);
    const body = (await readJson(res)) as { access?: string; refresh?: string } | null;
    if (!res.ok || !body?.access) throw loginError(res.status, body, path === this.paths.tokenMfa, this.p.now());
    this.noteSkew(body.access, sentAt, this.p.now());
    const user = await this.fetchUser(body.access);
    await this.p.lock(this.lockName(), this.o.refreshTimeout, async () => {
      const shared = await this.gens.read();
      this.gen = Math.max(shared, this.gen) + 1;
      this.setTokens(body.access as string, body.refresh ?? null);
      this._user = user;
      await this.gens.write(this.gen);
      this.broadcastTokens();
    });
    this.emit('login', { user });
    this.changed();
    return { user, recoveryCodes: recoveryCodesOf(body) };
  }

  /**
   * Adopts what the server answers when it ends every other login of the user and continues
   * this one (a second factor added or removed): in session mode the cookies already changed
   * (a new session id and CSRF token), so the cached CSRF token is dropped; in JWT mode the
   * answer's new pair replaces the tokens of the revoked family, here and in every tab.
   */
  async continueLogin(body: unknown): Promise<void> {
    if (this.mode === 'session') {
      this.csrfFromBody = null;
      return;
    }
    const b = body as { access?: unknown; refresh?: unknown } | null;
    if (typeof b?.access !== 'string') return;
    const access = b.access;
    const refresh = typeof b.refresh === 'string' ? b.refresh : null;
    await this.p.lock(this.lockName(), this.o.refreshTimeout, async () => {
      const shared = await this.gens.read();
      this.gen = Math.max(shared, this.gen) + 1;
      this.setTokens(access, refresh);
      await this.gens.write(this.gen);
      this.broadcastTokens();
    });
    this.changed();
  }

  /**
   * Logs out here and in every other tab. The server is told (session logout, or the refresh
   * family blacklisted) on a best-effort basis: local state is cleared even if that call fails.
   */
  async logout(): Promise<void> {
    try {
      if (this.mode === 'session') {
        await this.fetch(this.url(this.paths.logout), { method: 'POST' });
      } else if (this.o.refreshCookie || this.refreshToken) {
        const init = this.o.refreshCookie
          ? { method: 'POST', headers: { [this.o.csrfHeaderName]: await this.csrfToken() } }
          : jsonInit('POST', { refresh: this.refreshToken });
        await this.raw(this.paths.blacklist, init, this.o.refreshCookie);
      }
    } catch {
      // Offline: still forget the credentials locally.
    }
    if (this.mode === 'jwt') {
      await this.p.lock(this.lockName(), this.o.refreshTimeout, () => this.endLogin('user', true));
    } else {
      await this.endLogin('user', true);
    }
  }

  /** `GET /api/auth/me/` through the client (refreshing if needed). */
  async me(): Promise<User> {
    const res = await this.fetch(this.url(this.paths.me));
    const body = await readJson(res);
    if (!res.ok) throw new ApiError(res.status, body);
    this._user = body as User;
    this.changed();
    return this._user;
  }

  private async fetchUser(access: string | null): Promise<User> {
    const headers: Record<string, string> = access ? { Authorization: `Bearer ${access}` } : {};
    const res = await this.raw(this.paths.me, { method: 'GET', headers });
    const body = await readJson(res);
    if (!res.ok) throw new ApiError(res.status, body);
    return body as User;
  }

  // -------------------------------------------------------------------------------------------
  // Tokens

  /** A usable access token (refreshing first when it is about to expire), or null when logged out. */
  async getAccessToken(): Promise<string | null> {
    if (this.mode !== 'jwt') return null;
    if (this.access && !(this.o.proactiveRefresh && this.expiresWithin(this.sendMargin()))) return this.access;
    if (!this.canRefresh()) return this.access;
    return this.refresh();
  }

  /**
   * Refreshes the token pair. Single-flight: every caller during one refresh shares it, and
   * across tabs only one refresh runs at a time; a tab that finds another tab already refreshed
   * adopts that result instead of presenting a rotated-away token.
   */
  refresh(): Promise<string> {
    if (this.mode !== 'jwt') return Promise.reject(new SekishoError('http', 'refresh() is for JWT mode'));
    if (!this.refreshing) {
      const startGen = this.gen;
      const startAccess = this.access;
      const p = this.p.lock(this.lockName(), this.o.refreshTimeout, () => this.refreshLocked(startGen, startAccess));
      this.refreshing = p;
      const clear = () => {
        if (this.refreshing === p) this.refreshing = null;
      };
      p.then(clear, clear);
    }
    return this.refreshing;
  }

  private async refreshLocked(startGen: number, startAccess: string | null): Promise<string> {
    const shared = await this.gens.read();
    if (shared > startGen || this.gen > startGen) {
      // Tokens changed since this refresh was asked for (another tab refreshed, logged in or
      // out): take its result rather than present a token it has rotated away.
      // Its message was posted before it released the lock, so it is at most moments away.
      if (this.gen < shared) await this.waitForGeneration(shared, ADOPT_TIMEOUT);
      if (this.gen >= shared) {
        if (this._status === 'anonymous' && !this.access) {
          throw new SessionExpiredError('Logged out in another tab.');
        }
        if (this.access && this.access !== startAccess && !this.expiresWithin(this.sendMargin())) {
          return this.access;
        }
      }
    }
    if (this.persistent && !this.o.refreshCookie) {
      this.refreshToken = this.storage.get(this.key('refresh')) ?? this.refreshToken;
    }
    if (!this.o.refreshCookie && !this.refreshToken) {
      const error = new SessionExpiredError('Not logged in.');
      if (this._status === 'authenticated') await this.endLogin('expired', false, undefined, error);
      throw error;
    }
    return this.refreshOverNetwork(shared);
  }

  private async refreshOverNetwork(shared: number): Promise<string> {
    const sentAt = this.p.now();
    let res: Response;
    let body: unknown;
    for (let csrfRetry = 0; ; csrfRetry++) {
      const init: RequestInit = this.o.refreshCookie
        ? { method: 'POST', headers: { [this.o.csrfHeaderName]: await this.csrfToken(csrfRetry > 0) } }
        : jsonInit('POST', { refresh: this.refreshToken });
      res = await this.raw(this.paths.refresh, init, this.o.refreshCookie);
      body = await readJson(res);
      if (res.status === 403 && csrfRetry === 0 && isStaleCsrf(body)) continue;
      break;
    }
    const tokens = body as { access?: string; refresh?: string } | null;
    if (res.ok && tokens?.access) {
      this.noteSkew(tokens.access, sentAt, this.p.now());
      this.gen = Math.max(shared, this.gen) + 1;
      // The rotated refresh token is stored before anything else can fail.
      this.setTokens(tokens.access, tokens.refresh ?? null);
      await this.gens.write(this.gen);
      this.broadcastTokens();
      this.emit('refresh', { source: 'network', expiresAt: this.accessExpiresAt });
      return tokens.access;
    }
    if (res.status === 400 || res.status === 401 || res.status === 403) {
      const error = new SessionExpiredError(
        `The refresh was refused (${res.status}${detailOf(body) ? `: ${detailOf(body)}` : ''}); please log in again.`,
        res.status,
        body,
      );
      await this.endLogin('expired', true, shared, error);
      throw error;
    }
    // 5xx, 429…: the login may well be fine; keep it and let the caller try again later.
    throw new ApiError(res.status, body);
  }

  private setTokens(access: string, refresh: string | null): void {
    this.access = access;
    if (refresh && !this.o.refreshCookie) {
      this.refreshToken = refresh;
      this.storage.set(this.key('refresh'), refresh);
    }
    if (this.o.persistAccess) this.storage.set(this.key('access'), access);
    const times = tokenTimes(access);
    this.accessExpiresAt = times ? times.exp * 1000 - this.skew : null;
    this.accessLifetime = times && times.iat !== null ? (times.exp - times.iat) * 1000 : null;
    this._status = 'authenticated';
    this.schedule();
  }

  private loadStored(): void {
    if (!this.persistent) return;
    this.refreshToken = this.o.refreshCookie ? null : this.storage.get(this.key('refresh'));
    const access = this.o.persistAccess ? this.storage.get(this.key('access')) : null;
    if (access) {
      this.access = access;
      const t = tokenTimes(access);
      this.accessExpiresAt = t ? t.exp * 1000 : null;
      this.accessLifetime = t && t.iat !== null ? (t.exp - t.iat) * 1000 : null;
    }
    // Stored tokens are the newest any tab wrote: start from the shared generation.
    void this.gens.read().then((g) => {
      if (g > this.gen) this.gen = g;
    });
  }

  private clearTokens(): void {
    this.access = null;
    this.refreshToken = null;
    this.accessExpiresAt = null;
    this.accessLifetime = null;
    this.storage.remove(this.key('refresh'));
    this.storage.remove(this.key('access'));
    this.cancelTimer();
  }

  private canRefresh(): boolean {
    return this.o.refreshCookie ? this._status === 'authenticated' || !!this.access : !!this.refreshToken;
  }

  private noteSkew(access: string, sentAt: number, receivedAt: number): void {
    const t = tokenTimes(access);
    if (t && t.iat !== null) this.skew = estimateSkew(t.iat, sentAt, receivedAt);
  }

  /** Estimated `server clock − local clock`, in ms (0 when within the measurement's noise). */
  get clockSkew(): number {
    return this.skew;
  }

  /** When the access token expires, in local-clock ms, or null. */
  get accessTokenExpiresAt(): number | null {
    return this.accessExpiresAt;
  }

  private expiresWithin(ms: number): boolean {
    return this.accessExpiresAt !== null && this.p.now() + ms >= this.accessExpiresAt;
  }

  /** A token this close to expiry is refreshed before it is sent. */
  private sendMargin(): number {
    return this.accessLifetime ? Math.min(2000, this.accessLifetime / 10) : 1000;
  }

  private proactiveMargin(): number {
    if (this.o.refreshMargin !== undefined) return this.o.refreshMargin;
    return this.accessLifetime ? Math.min(30000, this.accessLifetime / 4) : 30000;
  }

  private schedule(): void {
    this.cancelTimer();
    if (!this.o.proactiveRefresh || !this.access || this.accessExpiresAt === null) return;
    const margin = this.proactiveMargin();
    const delay = Math.min(Math.max(0, this.accessExpiresAt - margin - this.p.now()), 2 ** 31 - 1);
    this.timer = this.p.setTimeout(() => {
      this.timer = null;
      if (this.expiresWithin(margin + 50)) {
        this.refresh().catch(() => {
          /* failures already ended the login or will be retried by the next request */
        });
      } else {
        this.schedule();
      }
    }, delay);
  }

  private cancelTimer(): void {
    if (this.timer !== null) this.p.clearTimeout(this.timer);
    this.timer = null;
  }

  // -------------------------------------------------------------------------------------------
  // CSRF

  /**
   * The CSRF token to send: the `csrftoken` cookie, read right before use (it rotates at
   * login); when there is none, one `GET /api/auth/csrf/` (shared by concurrent callers) sets it.
   * `force` fetches a fresh one even if a cookie exists (after a stale-token 403).
   */
  async csrfToken(force = false): Promise<string> {
    if (!force) {
      const have = this.p.readCookie(this.o.csrfCookieName) ?? this.csrfFromBody;
      if (have) return have;
    }
    if (!this.csrfFetching) {
      const p = (async () => {
        const res = await this.raw(this.paths.csrf, { method: 'GET' }, true);
        const body = (await readJson(res)) as { csrfToken?: string } | null;
        if (!res.ok) throw new ApiError(res.status, body);
        this.csrfFromBody = body?.csrfToken ?? null;
        return this.p.readCookie(this.o.csrfCookieName) ?? this.csrfFromBody ?? '';
      })();
      this.csrfFetching = p;
      const clear = () => {
        if (this.csrfFetching === p) this.csrfFetching = null;
      };
      p.then(clear, clear);
    }
    return this.csrfFetching;
  }

  // -------------------------------------------------------------------------------------------
  // The request pipeline shared by every adapter

  /** Whether tokens and CSRF headers may be sent to `url` (only to the API's own origin). */
  isApiUrl(url: string): boolean {
    try {
      return new URL(url, this.p.origin ?? this.apiOrigin ?? undefined).origin === this.apiOrigin;
    } catch {
      return false;
    }
  }

  /**
   * Step 1 of a request: the headers it must carry. JWT mode: `Authorization: Bearer`, after a
   * refresh if the token is (about to be) expired. Session mode: `X-CSRFToken` on unsafe
   * methods, after fetching a CSRF cookie if there is none. Pass the previous attempt when
   * retrying.
   */
  async prepareRequest(method: string, url: string, previous?: Attempt): Promise<Attempt> {
    const attempt: Attempt = {
      headers: {},
      api: this.isApiUrl(url),
      token: null,
      csrf: false,
      retried: !!previous,
    };
    if (!attempt.api) return attempt;
    if (this.crossOrigin) attempt.credentials = 'include';
    if (this.mode === 'jwt') {
      const token = await this.getAccessToken();
      if (token) {
        attempt.token = token;
        attempt.headers.Authorization = `Bearer ${token}`;
      }
    } else if (UNSAFE.has(method.toUpperCase())) {
      attempt.headers[this.o.csrfHeaderName] = await this.csrfToken();
      attempt.csrf = true;
    }
    return attempt;
  }

  /**
   * Step 2: given the response status (and a way to read its JSON body), whether to retry the
   * request once. A 401 with a token waits for the single shared refresh (rejecting with
   * `SessionExpiredError` if it fails); a CSRF 403 fetches a fresh token. Never true twice.
   */
  async handleResponse(attempt: Attempt, status: number, readBody: () => Promise<unknown>): Promise<boolean> {
    if (!attempt.api) return false;
    // A login's "second factor required" (or a wrong code, or a dead challenge) is a 401 too,
    // but no credential expired: refreshing or ending the login would be wrong.
    if (status === 401 && (attempt.token || this._status === 'authenticated') && isMfaAnswer(await readBody())) return false;
    if (this.mode === 'jwt') {
      if (status !== 401 || !attempt.token || attempt.retried) return false;
      await this.refreshAfter(attempt.token);
      return true;
    }
    if (status === 403 && attempt.csrf && !attempt.retried && isStaleCsrf(await readBody())) {
      await this.csrfToken(true);
      return true;
    }
    if (status === 401 && this._status === 'authenticated') {
      // The session ended server-side (expired, revoked, logged out elsewhere).
      await this.endLogin('expired', true);
    }
    return false;
  }

  /** A refresh for a request that failed with `token`, unless the token was already replaced. */
  private refreshAfter(token: string): Promise<string> {
    if (this.access && this.access !== token && !this.expiresWithin(0)) return Promise.resolve(this.access);
    if (!this.canRefresh() && !this.refreshing) {
      return Promise.reject(new SessionExpiredError('The access token was refused and there is no refresh token.'));
    }
    return this.refresh();
  }

  /**
   * `fetch` with authentication: same signature and result as `window.fetch`; a 401 (JWT) or a
   * stale-CSRF 403 (session) is retried once after the shared refresh / CSRF fetch. Rejects with
   * `SessionExpiredError` when the refresh is refused.
   */
  async fetch(input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> {
    const isRequest = typeof Request !== 'undefined' && input instanceof Request;
    const url = isRequest ? (input as Request).url : String(input);
    const method = (init.method ?? (isRequest ? (input as Request).method : 'GET')).toUpperCase();
    let attempt = await this.prepareRequest(method, url);
    for (;;) {
      const headers = new Headers(isRequest ? (input as Request).headers : undefined);
      new Headers(init.headers).forEach((v, k) => headers.set(k, v));
      for (const [k, v] of Object.entries(attempt.headers)) headers.set(k, v);
      const res = await this.p.fetch(isRequest ? (input as Request).clone() : input, {
        ...init,
        headers,
        ...(attempt.credentials ? { credentials: attempt.credentials } : {}),
      });
      const retry = await this.handleResponse(attempt, res.status, () => readJson(res.clone()));
      if (!retry) return res;
      attempt = await this.prepareRequest(method, url, attempt);
    }
  }

  /** A call to one of sekisho's own endpoints, without the retry machinery. */
  private async raw(path: string, init: RequestInit, withCookies = false): Promise<Response> {
    const ctrl = typeof AbortController === 'function' ? new AbortController() : null;
    const timer = ctrl ? this.p.setTimeout(() => ctrl.abort(), this.o.refreshTimeout) : null;
    try {
      return await this.p.fetch(this.url(path), {
        ...init,
        credentials: withCookies || this.mode === 'session' ? (this.crossOrigin ? 'include' : 'same-origin') : 'same-origin',
        ...(ctrl ? { signal: ctrl.signal } : {}),
      });
    } catch (e) {
      if (ctrl?.signal.aborted) {
        throw new NetworkError('timeout', `${path} did not answer within ${this.o.refreshTimeout} ms`, e);
      }
      throw new NetworkError('network', `${path} could not be reached`, e);
    } finally {
      if (timer !== null) this.p.clearTimeout(timer);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Ending a login, and the other tabs

  private setSessionUser(user: User | null, isLogin: boolean): void {
    const was = this._status;
    this._user = user;
    this._status = 'authenticated';
    if (isLogin || was !== 'authenticated') this.emit('login', { user });
    this.changed();
  }

  private setAnonymous(): void {
    this.clearTokens();
    this._user = null;
    this._status = 'anonymous';
    this.changed();
  }

  private async endLogin(reason: LogoutReason, broadcast: boolean, shared?: number, error?: SekishoError): Promise<void> {
    const was = this._status;
    this.clearTokens();
    this._user = null;
    this._status = 'anonymous';
    if (broadcast) {
      // Above every generation any tab has seen, or tabs that are ahead would ignore it.
      if (shared === undefined && this.mode === 'jwt') shared = await this.gens.read();
      this.gen = Math.max(shared ?? 0, this.gen) + 1;
      if (this.mode === 'jwt') await this.gens.write(this.gen);
      this.channel?.post({ type: 'logout', gen: this.gen, reason });
    }
    this.wakeGenWaiters();
    this.changed();
    if (was === 'authenticated' || reason === 'user') {
      const event: LogoutEvent = error ? { reason, error } : { reason };
      this.emit('logout', event);
      try {
        this.o.onLogout?.(event);
      } catch (e) {
        setTimeout(() => {
          throw e;
        });
      }
    }
  }

  private broadcastTokens(): void {
    this.channel?.post({
      type: 'tokens',
      gen: this.gen,
      access: this.access,
      refresh: this.o.refreshCookie ? null : this.refreshToken,
      user: this._user,
    });
  }

  private onTabMessage(m: TabMessage): void {
    if (!m || typeof m !== 'object') return;
    switch (m.type) {
      case 'sync-request':
        if (m.from === this.tabId || this._status !== 'authenticated') return;
        if (this.mode === 'jwt' && this.access) this.broadcastTokens();
        if (this.mode === 'session') this.channel?.post({ type: 'session', gen: this.gen, user: this._user });
        return;
      case 'tokens': {
        if (this.mode !== 'jwt' || m.gen <= this.gen || !m.access) return;
        const wasIn = this._status === 'authenticated';
        this.gen = m.gen;
        this.setTokens(m.access, m.refresh);
        if (m.user) this._user = m.user as User;
        this.wakeGenWaiters();
        this.emit('refresh', { source: 'tab', expiresAt: this.accessExpiresAt });
        if (!wasIn) this.emit('login', { user: this._user });
        this.changed();
        return;
      }
      case 'session':
        if (this.mode !== 'session') return;
        this.gen = Math.max(this.gen, m.gen);
        this.setSessionUser(m.user as User | null, false);
        return;
      case 'logout':
        if (this.mode === 'jwt' && m.gen <= this.gen) return;
        this.gen = Math.max(this.gen, m.gen);
        void this.endLogin('other_tab', false);
        return;
    }
  }

  private wakeGenWaiters(): void {
    for (const w of [...this.genWaiters]) w();
  }

  /** Waits (bounded) until this tab has seen generation `target`, asking the others for it. */
  private waitForGeneration(target: number, ms: number): Promise<void> {
    if (this.gen >= target || !this.channel) return Promise.resolve();
    this.channel.post({ type: 'sync-request', from: this.tabId });
    return new Promise<void>((resolve) => {
      const done = () => {
        this.genWaiters.delete(check);
        this.p.clearTimeout(timer);
        resolve();
      };
      const check = () => {
        if (this.gen >= target) done();
      };
      const timer = this.p.setTimeout(done, ms);
      this.genWaiters.add(check);
    });
  }

  private lockName(): string {
    return `${this.o.name}:refresh`;
  }

  private key(what: 'refresh' | 'access'): string {
    return `${this.o.name}.${what}`;
  }
}

export function createClient(options: ClientOptions): SekishoClient {
  return new SekishoClient(options);
}

function jsonInit(method: string, body: unknown): RequestInit {
  return { method, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
}

async function readJson(res: Response): Promise<unknown> {
  try {
    const text = await res.text();
    return text ? (JSON.parse(text) as unknown) : null;
  } catch {
    return null;
  }
}

function recoveryCodesOf(body: unknown): string[] | null {
  const codes = (body as { recovery_codes?: unknown } | null)?.recovery_codes;
  return Array.isArray(codes) ? codes.filter((c): c is string => typeof c === 'string') : null;
}

/** A CSRF 403 that a fresh token can fix (not an untrusted `Origin`). */
export function isStaleCsrf(body: unknown): boolean {
  const d = detailOf(body);
  return !!d && d.startsWith('CSRF Failed:') && !d.includes('Origin checking failed');
}

function loginError(status: number, body: unknown, secondStep: boolean, now: number): ApiError {
  const challenge = challengeError(status, body, now);
  if (challenge) return challenge;
  // The second step: a wrong code, an expired challenge, a malformed code (400 field errors).
  if (secondStep) return mfaError(status, body);
  if (status === 401) return new ApiError(status, body, 'invalid_credentials');
  if (status === 403 && detailOf(body)?.startsWith('CSRF Failed:')) return new ApiError(status, body, 'csrf_failed');
  return new ApiError(status, body);
}
