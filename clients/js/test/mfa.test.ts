// Second factors: a login that answers "second factor required" issues nothing and raises a
// typed error with the challenge; completeLogin ends in exactly the state a plain login would;
// the 401s of the second step never look like an expired login to the interceptors; the
// enrolment helpers map wrong codes to field errors.
import axios, { AxiosError, type AxiosAdapter, type AxiosResponse } from 'axios';
import { describe, expect, test, vi } from 'vitest';
import { ApiError, MfaRequiredError, SekishoError, memoryGeneration, memoryStorage, type TokenStorage } from '../src/index.js';
import { attachAxios } from '../src/axios.js';
import { FakeServer, ORIGIN, jwtClient, sessionClient, sharedBus, sharedLock, within } from './helpers.js';

/** A fake server whose user has a confirmed TOTP factor and ten recovery codes. */
function enrolled(): { server: FakeServer; recovery: string[] } {
  const server = new FakeServer();
  server.mfa.confirmed = true;
  return { server, recovery: server.mfa.newRecoveryCodes() };
}

async function challengeOf(p: Promise<unknown>): Promise<MfaRequiredError> {
  const e = await p.then(
    () => {
      throw new Error('the login resolved; a second factor was expected');
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(MfaRequiredError);
  return e as MfaRequiredError;
}

/** A storage that shows what the client wrote. */
function visibleStorage(): TokenStorage & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return { data, get: (k) => data.get(k) ?? null, set: (k, v) => void data.set(k, v), remove: (k) => void data.delete(k) };
}

function axiosFor(server: FakeServer) {
  const adapter: AxiosAdapter = async (config) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(config.headers.toJSON())) if (v != null) headers[k] = String(v);
    const res = await server.fetch(new URL(config.url ?? '', config.baseURL ?? ORIGIN).toString(), {
      method: (config.method ?? 'get').toUpperCase(),
      headers,
      body: config.data,
    });
    const data = await res.json();
    const response: AxiosResponse = { data, status: res.status, statusText: '', headers: {}, config, request: {} };
    if (config.validateStatus?.(res.status) ?? true) return response;
    throw new AxiosError(`Request failed with status code ${res.status}`, AxiosError.ERR_BAD_REQUEST, config, {}, response);
  };
  return axios.create({ baseURL: ORIGIN, adapter });
}

describe('JWT mode', () => {
  test('login raises MfaRequiredError with the challenge; nothing is stored or fetched until the factor passes', async () => {
    const { server } = enrolled();
    const storage = visibleStorage();
    const onLogin = vi.fn();
    const client = jwtClient(server, { proactiveRefresh: false, storage });
    client.on('login', onLogin);
    const before = Date.now();
    const e = await challengeOf(client.login('ann', 'pw'));
    expect(e).toBeInstanceOf(ApiError);
    expect(e).toBeInstanceOf(SekishoError);
    expect(e.code).toBe('mfa_required');
    expect(e.status).toBe(401);
    expect(e.challenge.purpose).toBe('verify');
    expect(e.challenge.methods).toEqual(['totp', 'recovery']);
    expect(e.challenge.expiresIn).toBe(300);
    expect(e.challenge.token).toMatch(/^ch/);
    expect(e.challenge.expiresAt).toBeGreaterThanOrEqual(before + 300_000);
    expect(e.challenge.expiresAt).toBeLessThanOrEqual(Date.now() + 300_000);
    // No token, no user, no `me` call, no event: the first step issued nothing.
    expect(storage.data.size).toBe(0);
    expect(await client.getAccessToken()).toBeNull();
    expect(client.isAuthenticated).toBe(false);
    expect(client.user).toBeNull();
    expect(server.count('/api/auth/me/')).toBe(0);
    expect(onLogin).not.toHaveBeenCalled();

    const result = await client.completeLogin(e.challenge, { code: server.mfa.nextCode() });
    expect(result.user.username).toBe('ann');
    expect(result.recoveryCodes).toBeNull();
    expect(client.status).toBe('authenticated');
    expect(client.user?.username).toBe('ann');
    expect(onLogin).toHaveBeenCalledTimes(1);
    expect(storage.data.get('sekisho.refresh')).toBe(server.refreshToken);
    const token = await client.getAccessToken();
    const r = await client.fetch('/api/data');
    expect(r.status).toBe(200);
    expect(server.calls.at(-1)?.headers.get('authorization')).toBe(`Bearer ${token}`);
    const body = server.calls.find((c) => c.path === '/api/token/mfa/')?.body;
    expect(body).toEqual({ challenge: e.challenge.token, code: '111111' });
  });

  test('the completed login is the state a plain login produces: same storage keys, refresh and logout work', async () => {
    const plainServer = new FakeServer();
    const plainStorage = visibleStorage();
    const plain = jwtClient(plainServer, { proactiveRefresh: false, storage: plainStorage, persistAccess: true });
    await plain.login('ann', 'pw');

    const { server } = enrolled();
    const storage = visibleStorage();
    const client = jwtClient(server, { proactiveRefresh: false, storage, persistAccess: true });
    const e = await challengeOf(client.login('ann', 'pw'));
    await client.completeLogin(e.challenge.token, { code: server.mfa.nextCode() }); // the token string works too
    expect([...storage.data.keys()].sort()).toEqual([...plainStorage.data.keys()].sort());
    expect(client.accessTokenExpiresAt).not.toBeNull();

    server.expireAccessTokens();
    expect((await client.fetch('/api/after-expiry')).status).toBe(200);
    expect(server.count('/api/token/refresh/')).toBe(1);
    await client.logout();
    expect(storage.data.size).toBe(0);
    expect(server.count('/api/token/blacklist/')).toBe(1);
  });

  test('a recovery code works once; the same one is refused (mfa_code_invalid) and the challenge still stands', async () => {
    const { server, recovery } = enrolled();
    const client = jwtClient(server, { proactiveRefresh: false });
    const first = await challengeOf(client.login('ann', 'pw'));
    await client.completeLogin(first.challenge, { recoveryCode: recovery[0] });
    expect(client.isAuthenticated).toBe(true);
    expect(server.calls.find((c) => c.path === '/api/token/mfa/')?.body).toEqual({ challenge: first.challenge.token, recovery_code: recovery[0] });
    await client.logout();

    const second = await challengeOf(client.login('ann', 'pw'));
    const err = await client.completeLogin(second.challenge, { recoveryCode: recovery[0] }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).not.toBeInstanceOf(MfaRequiredError);
    expect((err as ApiError).code).toBe('mfa_code_invalid');
    expect((err as ApiError).status).toBe(401);
    expect(client.isAuthenticated).toBe(false);
    await client.completeLogin(second.challenge, { recoveryCode: recovery[1] });
    expect(client.isAuthenticated).toBe(true);
  });

  test('a wrong code: mfa_code_invalid, no tokens, no refresh, no logout event; the right code then works', async () => {
    const { server } = enrolled();
    const storage = visibleStorage();
    const onLogout = vi.fn();
    const client = jwtClient(server, { proactiveRefresh: false, storage, onLogout });
    const e = await challengeOf(client.login('ann', 'pw'));
    const err = await client.completeLogin(e.challenge, { code: '999999' }).catch((x: unknown) => x);
    expect((err as ApiError).code).toBe('mfa_code_invalid');
    expect((err as ApiError).detail).toBe('The code is incorrect or has already been used.');
    expect(storage.data.size).toBe(0);
    expect(await client.getAccessToken()).toBeNull();
    expect(server.count('/api/token/refresh/')).toBe(0);
    expect(onLogout).not.toHaveBeenCalled();
    await client.completeLogin(e.challenge, { code: server.mfa.nextCode() });
    expect(client.isAuthenticated).toBe(true);
  });

  test('a malformed code is a 400 field error (invalid_input), sent as the user typed it minus spaces', async () => {
    const { server } = enrolled();
    const client = jwtClient(server, { proactiveRefresh: false });
    const e = await challengeOf(client.login('ann', 'pw'));
    const err = (await client.completeLogin(e.challenge, { code: ' 12ab ' }).catch((x: unknown) => x)) as ApiError;
    expect(err.code).toBe('invalid_input');
    expect(err.status).toBe(400);
    expect(err.fields).toEqual({ code: ['Enter a valid 6-digit code.'] });
    expect(err.message).toBe('400: Enter a valid 6-digit code.');
    expect(server.calls.at(-1)?.body).toEqual({ challenge: e.challenge.token, code: '12ab' });
  });

  test('an expired challenge: mfa_challenge_invalid, nothing issued', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const { server } = enrolled();
      server.mfa.challengeLifetime = 60;
      const client = jwtClient(server, { proactiveRefresh: false });
      const e = await challengeOf(client.login('ann', 'pw'));
      vi.setSystemTime(Date.now() + 61_000);
      expect(Date.now()).toBeGreaterThan(e.challenge.expiresAt);
      const err = (await client.completeLogin(e.challenge, { code: server.mfa.nextCode() }).catch((x: unknown) => x)) as ApiError;
      expect(err.code).toBe('mfa_challenge_invalid');
      expect(err.status).toBe(401);
      expect(client.isAuthenticated).toBe(false);
      expect(server.refreshToken).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });

  test('a challenge logs in once', async () => {
    const { server } = enrolled();
    const client = jwtClient(server, { proactiveRefresh: false });
    const e = await challengeOf(client.login('ann', 'pw'));
    await client.completeLogin(e.challenge, { code: server.mfa.nextCode() });
    const again = jwtClient(server, { proactiveRefresh: false });
    const err = (await again.completeLogin(e.challenge, { code: server.mfa.nextCode() }).catch((x: unknown) => x)) as ApiError;
    expect(err.code).toBe('mfa_challenge_invalid');
    expect(again.isAuthenticated).toBe(false);
  });

  test('refresh-cookie mode: the second step leaves the refresh token in the cookie only, and refresh uses it', async () => {
    const { server } = enrolled();
    server.refreshCookie = true;
    const storage = visibleStorage();
    const client = jwtClient(server, { proactiveRefresh: false, refreshCookie: true, storage });
    const e = await challengeOf(client.login('ann', 'pw'));
    expect(server.jar.has('refresh_token')).toBe(false);
    await client.completeLogin(e.challenge, { code: server.mfa.nextCode() });
    expect(server.jar.get('refresh_token')).toBe(server.refreshToken);
    expect(storage.data.size).toBe(0);
    server.expireAccessTokens();
    expect((await client.fetch('/api/data')).status).toBe(200);
    const refresh = server.calls.find((c) => c.path === '/api/token/refresh/');
    expect(refresh?.headers.get('x-csrftoken')).toBeTruthy();
  });

  test('the other tabs adopt the login a second step completed', async () => {
    const { server } = enrolled();
    const shared = { lock: sharedLock(), bus: sharedBus(), gen: memoryGeneration() };
    const a = jwtClient(server, { proactiveRefresh: false }, shared);
    const b = jwtClient(server, { proactiveRefresh: false }, shared);
    await b.restore();
    expect(b.isAuthenticated).toBe(false);
    const e = await challengeOf(a.login('ann', 'pw'));
    await a.completeLogin(e.challenge, { code: server.mfa.nextCode() });
    await within(1000, new Promise<void>((r) => b.on('login', () => r())));
    expect(b.user?.username).toBe('ann');
    expect(await b.getAccessToken()).toBe(await a.getAccessToken());
  });
});

describe('session mode', () => {
  test('login raises MfaRequiredError and sets no session cookie; completeLogin sends the CSRF header and starts the session', async () => {
    const { server } = enrolled();
    const client = sessionClient(server);
    const e = await challengeOf(client.login('ann', 'pw'));
    expect(e.code).toBe('mfa_required');
    expect(server.jar.has('sessionid')).toBe(false);
    expect(client.isAuthenticated).toBe(false);
    const anonymousCsrf = server.jar.get('csrftoken');

    const result = await client.completeLogin(e.challenge, { code: server.mfa.nextCode() });
    expect(result.user.username).toBe('ann');
    const step = server.calls.find((c) => c.path === '/api/auth/login/mfa/');
    expect(step?.headers.get('x-csrftoken')).toBe(anonymousCsrf);
    expect(server.jar.has('sessionid')).toBe(true);
    expect(client.status).toBe('authenticated');
    // The CSRF token rotated with the session; the next unsafe request sends the new one.
    const r = await client.fetch('/api/items/', { method: 'POST', body: '{}' });
    expect(r.status).toBe(200);
    expect(server.calls.at(-1)?.headers.get('x-csrftoken')).toBe(server.jar.get('csrftoken'));
    expect(server.jar.get('csrftoken')).not.toBe(anonymousCsrf);
  });

  test('a wrong code keeps the visitor anonymous with no session cookie', async () => {
    const { server } = enrolled();
    const onLogout = vi.fn();
    const client = sessionClient(server, { onLogout });
    const e = await challengeOf(client.login('ann', 'pw'));
    const err = (await client.completeLogin(e.challenge, { code: '000000' }).catch((x: unknown) => x)) as ApiError;
    expect(err.code).toBe('mfa_code_invalid');
    expect(server.jar.has('sessionid')).toBe(false);
    expect(client.isAuthenticated).toBe(false);
    expect(onLogout).not.toHaveBeenCalled();
  });

  test('a recovery code completes the session login once', async () => {
    const { server, recovery } = enrolled();
    const client = sessionClient(server);
    const e = await challengeOf(client.login('ann', 'pw'));
    await client.completeLogin(e.challenge, { recoveryCode: recovery[3] });
    expect(client.isAuthenticated).toBe(true);
    await client.logout();
    const e2 = await challengeOf(client.login('ann', 'pw'));
    const err = (await client.completeLogin(e2.challenge, { recoveryCode: recovery[3] }).catch((x: unknown) => x)) as ApiError;
    expect(err.code).toBe('mfa_code_invalid');
    expect(server.jar.has('sessionid')).toBe(false);
  });
});

describe('the interceptors never treat a second-factor 401 as an expired login', () => {
  test('JWT: logging in again while logged in gets mfa_required — no refresh, the login is kept', async () => {
    const server = new FakeServer();
    const onLogout = vi.fn();
    const client = jwtClient(server, { proactiveRefresh: false, onLogout });
    await client.login('ann', 'pw');
    server.mfa.confirmed = true;
    // An app posting to the login endpoints with the client's own fetch (bearer attached).
    const res = await client.fetch('/api/token/', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username: 'ann', password: 'pw' }) });
    expect(res.status).toBe(401);
    expect((await res.json()).code).toBe('mfa_required');
    const code = await client.fetch('/api/token/mfa/', { method: 'POST', body: JSON.stringify({ challenge: 'ch-none', code: '123456' }) });
    expect(code.status).toBe(401);
    expect(server.count('/api/token/refresh/')).toBe(0);
    expect(server.count('/api/token/')).toBe(2); // not retried
    expect(client.isAuthenticated).toBe(true);
    expect(onLogout).not.toHaveBeenCalled();
  });

  test('JWT: handleResponse does not refresh for any of the second-factor 401 bodies, but does for token_not_valid', async () => {
    const server = new FakeServer();
    const client = jwtClient(server, { proactiveRefresh: false });
    await client.login('ann', 'pw');
    const attempt = await client.prepareRequest('POST', '/api/token/mfa/');
    expect(attempt.token).toBeTruthy();
    for (const code of ['mfa_required', 'mfa_enrolment_required', 'mfa_code_invalid', 'mfa_challenge_invalid']) {
      expect(await client.handleResponse(attempt, 401, async () => ({ detail: 'x', code }))).toBe(false);
    }
    expect(server.count('/api/token/refresh/')).toBe(0);
    // The control: an expired token still gets the refresh and one retry.
    server.expireAccessTokens();
    expect(await client.handleResponse(attempt, 401, async () => ({ detail: 'Token is expired', code: 'token_not_valid' }))).toBe(true);
    expect(server.count('/api/token/refresh/')).toBe(1);
  });

  test('session: a second-factor 401 while logged in does not end the session', async () => {
    const server = new FakeServer();
    const onLogout = vi.fn();
    const client = sessionClient(server, { onLogout });
    await client.login('ann', 'pw');
    server.mfa.confirmed = true;
    const other = await client.login('ann', 'pw').catch((x: unknown) => x);
    expect(other).toBeInstanceOf(MfaRequiredError);
    expect(client.isAuthenticated).toBe(true);
    expect(onLogout).not.toHaveBeenCalled();
    // The control: a plain 401 still means the session ended.
    server.jar.delete('sessionid');
    await client.fetch('/api/items/');
    expect(onLogout).toHaveBeenCalledWith({ reason: 'expired' });
  });

  test('axios: a second-factor 401 reaches the caller as it is, no refresh, no retry', async () => {
    const server = new FakeServer();
    const client = jwtClient(server, { proactiveRefresh: false });
    const api = axiosFor(server);
    attachAxios(api, client);
    await client.login('ann', 'pw');
    server.mfa.confirmed = true;
    const err = (await api.post('/api/token/', { username: 'ann', password: 'pw' }).catch((x: unknown) => x)) as AxiosError<{ code: string }>;
    expect(err.response?.status).toBe(401);
    expect(err.response?.data.code).toBe('mfa_required');
    expect(server.count('/api/token/')).toBe(2);
    expect(server.count('/api/token/refresh/')).toBe(0);
    expect(client.isAuthenticated).toBe(true);
  });
});

describe('client.mfa: enrolment, disabling, recovery codes', () => {
  test.each(['jwt', 'session'] as const)('%s: status, begin, a wrong then a right code, regenerate, disable', async (mode) => {
    const server = new FakeServer();
    const client = mode === 'jwt' ? jwtClient(server, { proactiveRefresh: false }) : sessionClient(server);
    await client.login('ann', 'pw');
    expect(await client.mfa.status()).toEqual({ totp: false, totpPending: false, recoveryCodesLeft: 0, methods: [] });

    const enrolment = await client.mfa.beginTotp();
    expect(enrolment.secret).toBe('JBSWY3DPEHPK3PXP');
    expect(enrolment.otpauthUri).toMatch(/^otpauth:\/\/totp\//);
    expect(enrolment.qrSvg).toMatch(/^<svg/);
    expect(enrolment.qrImageUrl.startsWith('data:image/svg+xml;charset=utf-8,')).toBe(true);
    expect(decodeURIComponent(enrolment.qrImageUrl.slice(enrolment.qrImageUrl.indexOf(',') + 1))).toBe(enrolment.qrSvg);
    expect(enrolment.qrImageUrl).not.toMatch(/[<>"]/);
    expect((await client.mfa.status()).totpPending).toBe(true);

    const wrong = (await client.mfa.confirmTotp('999999').catch((x: unknown) => x)) as ApiError;
    expect(wrong).toBeInstanceOf(ApiError);
    expect(wrong.code).toBe('invalid_input');
    expect(wrong.status).toBe(400);
    expect(wrong.fields).toEqual({ code: ['The code is incorrect or has already been used.'] });
    expect(wrong.message).toBe('400: The code is incorrect or has already been used.');
    expect(client.isAuthenticated).toBe(true);

    const codes = await client.mfa.confirmTotp(server.mfa.nextCode());
    expect(codes).toHaveLength(10);
    expect(await client.mfa.status()).toEqual({ totp: true, totpPending: false, recoveryCodesLeft: 10, methods: ['totp', 'recovery'] });

    const again = (await client.mfa.beginTotp().catch((x: unknown) => x)) as ApiError;
    expect(again.status).toBe(409);
    expect(again.detail).toBe('A second factor is already enrolled.');

    const fresh = await client.mfa.regenerateRecoveryCodes({ code: server.mfa.nextCode() });
    expect(fresh).toHaveLength(10);
    expect(fresh).not.toContain(codes[0]);
    const stale = (await client.mfa.disableTotp({ recoveryCode: codes[0] }).catch((x: unknown) => x)) as ApiError;
    expect(stale.code).toBe('invalid_input');
    expect(stale.fields?.recovery_code).toEqual(['The code is incorrect or has already been used.']);
    await client.mfa.disableTotp({ recoveryCode: fresh[0] });
    expect((await client.mfa.status()).totp).toBe(false);
    if (mode === 'session') {
      // Every write carried the CSRF header; those after the confirmation passed the check of
      // the new session's token (the fake binds it to the session id, as the server does).
      for (const c of server.calls.filter((x) => x.method === 'POST' && x.path.startsWith('/api/auth/mfa/'))) {
        expect(c.headers.get('x-csrftoken')).toBeTruthy();
      }
    }
  });

  test.each([false, true])('jwt (refresh cookie %s): a factor change ends the old family; the client adopts the new pair', async (refreshCookie) => {
    const server = new FakeServer();
    server.refreshCookie = refreshCookie;
    const client = jwtClient(server, { proactiveRefresh: false, refreshCookie });
    await client.login('ann', 'pw');
    const before = await client.getAccessToken();
    const oldRefresh = server.currentRefresh;
    await client.mfa.beginTotp();
    await client.mfa.confirmTotp(server.mfa.nextCode());
    expect(server.currentRefresh).not.toBe(oldRefresh);
    const after = await client.getAccessToken();
    expect(after).not.toBe(before);
    // The refresh that follows uses the new family's token, so the login survives.
    server.expireAccessTokens();
    expect((await client.me()).username).toBe('ann');
    expect(server.calls.filter((c) => c.path === '/api/token/refresh/')).toHaveLength(1);
    await client.mfa.disableTotp({ code: server.mfa.nextCode() });
    server.expireAccessTokens();
    expect((await client.me()).username).toBe('ann');
    expect(client.isAuthenticated).toBe(true);
  });

  test('a factor must be exactly one of code and recoveryCode (checked before any request)', async () => {
    const { server } = enrolled();
    const client = jwtClient(server, { proactiveRefresh: false });
    const e = await challengeOf(client.login('ann', 'pw'));
    const calls = server.calls.length;
    // @ts-expect-error both at once is a type error too
    await expect(client.completeLogin(e.challenge, { code: '111111', recoveryCode: 'x' })).rejects.toThrow(TypeError);
    // @ts-expect-error neither
    await expect(client.mfa.disableTotp({})).rejects.toThrow(TypeError);
    await expect(client.completeLogin('', { code: '111111' })).rejects.toThrow(TypeError);
    expect(server.calls.length).toBe(calls);
  });

  test('logged out: the helpers reject with the server\'s 401 (not a second-factor code)', async () => {
    const server = new FakeServer();
    const client = jwtClient(server, { proactiveRefresh: false });
    const err = (await client.mfa.status().catch((x: unknown) => x)) as ApiError;
    expect(err.status).toBe(401);
    expect(err.code).toBe('http');
    expect(err.detail).toBe('Authentication credentials were not provided.');
  });
});

describe('enrolment required (mfa.required_for_staff)', () => {
  test.each(['jwt', 'session'] as const)('%s: the challenge enrols, and completing the login with the first code confirms it', async (mode) => {
    const server = new FakeServer();
    server.mfa.enrolRequired = true;
    const storage = memoryStorage();
    const client = mode === 'jwt' ? jwtClient(server, { proactiveRefresh: false, storage }) : sessionClient(server);
    const e = await challengeOf(client.login('ann', 'pw'));
    expect(e.code).toBe('mfa_enrolment_required');
    expect(e.challenge.purpose).toBe('enrol');
    expect(e.challenge.methods).toEqual(['totp']);
    expect(server.jar.has('sessionid')).toBe(false);
    expect(client.isAuthenticated).toBe(false);

    const enrolment = await client.mfa.beginTotp(e.challenge);
    expect(enrolment.secret).toBeTruthy();
    expect(server.calls.at(-1)?.body).toEqual({ challenge: e.challenge.token });
    expect(server.calls.at(-1)?.headers.get('authorization')).toBeNull();
    expect(client.isAuthenticated).toBe(false);

    const wrong = (await client.completeLogin(e.challenge, { code: '999999' }).catch((x: unknown) => x)) as ApiError;
    expect(wrong.code).toBe('mfa_code_invalid');
    const result = await client.completeLogin(e.challenge, { code: server.mfa.nextCode() });
    expect(result.user.username).toBe('ann');
    expect(result.recoveryCodes).toHaveLength(10);
    expect(client.isAuthenticated).toBe(true);
    expect((await client.mfa.status()).totp).toBe(true);
    // From now on the login asks for the factor like anyone's.
    await client.logout();
    expect((await challengeOf(client.login('ann', 'pw'))).code).toBe('mfa_required');
  });

  test('a dead enrolment challenge: mfa_challenge_invalid from beginTotp', async () => {
    const server = new FakeServer();
    const client = jwtClient(server, { proactiveRefresh: false });
    const err = (await client.mfa.beginTotp('ch-unknown').catch((x: unknown) => x)) as ApiError;
    expect(err.code).toBe('mfa_challenge_invalid');
    expect(err.status).toBe(401);
  });
});
