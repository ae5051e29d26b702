// The JWT state machine: single-flight refresh, retry-once, failure fan-out, rotated-token
// storage. Each test names the mistake of the widely copied interceptor pattern it guards against.
import { afterEach, describe, expect, test, vi } from 'vitest';
import { ApiError, NetworkError, SessionExpiredError, memoryStorage } from '../src/index.js';
import { FakeServer, jwtClient, within } from './helpers.js';

afterEach(() => {
  vi.useRealTimers();
});

async function loggedIn(options = {}) {
  const server = new FakeServer();
  const client = jwtClient(server, { proactiveRefresh: false, ...options });
  await client.login('ann', 'pw');
  return { server, client };
}

describe('single-flight refresh', () => {
  test('20 parallel 401s make exactly one refresh; every request (the first included) is retried and resolves', async () => {
    const { server, client } = await loggedIn();
    server.expireAccessTokens();
    const responses = await within(2000, Promise.all(Array.from({ length: 20 }, (_, i) => client.fetch(`/api/data/${i}`))));
    expect(server.count('/api/token/refresh/')).toBe(1);
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
    const bodies = await Promise.all(responses.map((r) => r.json()));
    const fresh = new Set(bodies.map((b: { token: string }) => b.token));
    expect(fresh.size).toBe(1); // all retried with the one new token
    // 20 first attempts + 20 retries: no request was sent a third time.
    for (let i = 0; i < 20; i++) expect(server.count(`/api/data/${i}`)).toBe(2);
  });

  test('401s that arrive after the refresh finished reuse its result instead of refreshing again', async () => {
    const { server, client } = await loggedIn();
    const old = await client.getAccessToken();
    server.expireAccessTokens();
    await client.fetch('/api/data/a');
    expect(server.count('/api/token/refresh/')).toBe(1);
    // A straggler that was sent with the old token now gets its 401.
    const attempt = await client.prepareRequest('GET', '/api/data/b');
    const stale = { ...attempt, token: old, headers: { Authorization: `Bearer ${old}` } };
    expect(await client.handleResponse(stale, 401, async () => null)).toBe(true);
    expect(server.count('/api/token/refresh/')).toBe(1);
  });

  test('a refresh with the fake server gated: callers joining mid-flight share it', async () => {
    const { server, client } = await loggedIn();
    server.expireAccessTokens();
    let open!: () => void;
    server.refreshGate = new Promise<void>((r) => (open = r));
    const first = client.fetch('/api/data/1');
    await new Promise((r) => setTimeout(r, 10));
    const later = Array.from({ length: 5 }, (_, i) => client.fetch(`/api/data/later${i}`));
    await new Promise((r) => setTimeout(r, 10));
    open();
    const all = await within(2000, Promise.all([first, ...later]));
    expect(all.every((r) => r.status === 200)).toBe(true);
    expect(server.count('/api/token/refresh/')).toBe(1);
  });
});

describe('retry once', () => {
  test('a request still refused after the refresh is answered with its 401, not retried again', async () => {
    const { server, client } = await loggedIn();
    server.rejectEverything = true;
    const responses = await within(2000, Promise.all(Array.from({ length: 5 }, (_, i) => client.fetch(`/api/x/${i}`))));
    expect(responses.map((r) => r.status)).toEqual(Array(5).fill(401));
    for (let i = 0; i < 5; i++) expect(server.count(`/api/x/${i}`)).toBe(2);
    expect(server.count('/api/token/refresh/')).toBe(1);
  });

  test('a 401 of an anonymous request is not retried', async () => {
    const server = new FakeServer();
    const client = jwtClient(server);
    const r = await client.fetch('/api/data');
    expect(r.status).toBe(401);
    expect(server.count('/api/data')).toBe(1);
    expect(server.count('/api/token/refresh/')).toBe(0);
  });

  test('other statuses are returned as they are', async () => {
    const { server, client } = await loggedIn();
    server.rejectEverything = false;
    const attempt = await client.prepareRequest('GET', '/api/data');
    expect(await client.handleResponse(attempt, 403, async () => ({ detail: 'You do not have permission to perform this action.' }))).toBe(false);
    expect(await client.handleResponse(attempt, 500, async () => null)).toBe(false);
  });
});

describe('failure fan-out', () => {
  test('a refused refresh rejects every waiter promptly with one SessionExpiredError and fires onLogout once', async () => {
    const onLogout = vi.fn();
    const { server, client } = await loggedIn({ onLogout });
    const logoutEvents: unknown[] = [];
    client.on('logout', (e) => logoutEvents.push(e));
    server.expireAccessTokens();
    server.refreshBehaviour = 'reject';
    const started = Date.now();
    const results = await within(2000, Promise.allSettled(Array.from({ length: 20 }, (_, i) => client.fetch(`/api/data/${i}`))));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    const errors = results.map((r) => (r as PromiseRejectedResult).reason);
    expect(errors.every((e) => e instanceof SessionExpiredError && e.code === 'session_expired')).toBe(true);
    expect(new Set(errors).size).toBe(1); // one clear error shared by all
    expect(server.count('/api/token/refresh/')).toBe(1);
    expect(onLogout).toHaveBeenCalledTimes(1);
    expect(onLogout.mock.calls[0][0].reason).toBe('expired');
    expect(logoutEvents).toHaveLength(1);
    expect(client.status).toBe('anonymous');
    expect(client.user).toBeNull();
  });

  test('a hanging refresh is bounded by refreshTimeout: every waiter rejects with a timeout', async () => {
    const { server, client } = await loggedIn({ refreshTimeout: 200 });
    server.expireAccessTokens();
    server.refreshBehaviour = 'hang';
    const results = await within(2000, Promise.allSettled(Array.from({ length: 10 }, (_, i) => client.fetch(`/api/data/${i}`))));
    const errors = results.map((r) => (r as PromiseRejectedResult).reason);
    expect(errors.every((e) => e instanceof NetworkError && e.code === 'timeout')).toBe(true);
    // The server never said no: the login is kept, and the next request refreshes again.
    expect(client.status).toBe('authenticated');
    server.refreshBehaviour = 'ok';
    expect((await client.fetch('/api/data/again')).status).toBe(200);
  });

  test('an unreachable server or a 5xx rejects the waiters but does not log out', async () => {
    const onLogout = vi.fn();
    const { server, client } = await loggedIn({ onLogout });
    server.expireAccessTokens();
    server.refreshBehaviour = 'network';
    const r1 = await Promise.allSettled([client.fetch('/api/a'), client.fetch('/api/b')]);
    expect(r1.map((r) => (r as PromiseRejectedResult).reason.code)).toEqual(['network', 'network']);
    server.refreshBehaviour = 'error500';
    const r2 = await Promise.allSettled([client.fetch('/api/a')]);
    expect((r2[0] as PromiseRejectedResult).reason).toBeInstanceOf(ApiError);
    expect(onLogout).not.toHaveBeenCalled();
    expect(client.status).toBe('authenticated');
  });

  test('after the login ended, requests go out anonymously instead of hanging', async () => {
    const { server, client } = await loggedIn();
    server.expireAccessTokens();
    server.refreshBehaviour = 'reject';
    await expect(client.fetch('/api/data')).rejects.toBeInstanceOf(SessionExpiredError);
    const r = await within(1000, client.fetch('/api/data'));
    expect(r.status).toBe(401);
    expect(server.calls.at(-1)?.headers.get('authorization')).toBeNull();
  });
});

describe('rotated refresh token', () => {
  test('is always stored, and the next refresh presents it (never the rotated-away one)', async () => {
    const storage = memoryStorage();
    const { server, client } = await loggedIn({ storage });
    const first = server.refreshToken;
    expect(storage.get('sekisho.refresh')).toBe(first);
    for (let round = 0; round < 3; round++) {
      server.expireAccessTokens();
      expect((await client.fetch('/api/data')).status).toBe(200);
      expect(storage.get('sekisho.refresh')).toBe(server.refreshToken);
    }
    const presented = server.calls.filter((c) => c.path === '/api/token/refresh/').map((c) => (c.body as { refresh: string }).refresh);
    expect(new Set(presented).size).toBe(3);
    expect(presented[0]).toBe(first);
    expect(storage.get('sekisho.access')).toBeNull(); // access tokens stay in memory by default
  });

  test('without rotation the old refresh token is kept', async () => {
    const storage = memoryStorage();
    const { server, client } = await loggedIn({ storage });
    server.rotate = false;
    const token = server.refreshToken;
    server.expireAccessTokens();
    expect((await client.fetch('/api/data')).status).toBe(200);
    expect(storage.get('sekisho.refresh')).toBe(token);
  });

  test('a new client restores the login from storage', async () => {
    const storage = memoryStorage();
    const { server } = await loggedIn({ storage });
    const again = jwtClient(server, { storage, proactiveRefresh: false });
    const user = await again.restore();
    expect(user?.username).toBe('ann');
    expect(again.status).toBe('authenticated');
    expect(server.count('/api/token/refresh/')).toBe(1);
  });
});

describe('login and logout', () => {
  test('wrong password is an invalid_credentials ApiError and leaves the client anonymous', async () => {
    const server = new FakeServer();
    const client = jwtClient(server);
    const err = await client.login('ann', 'nope').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe('invalid_credentials');
    expect((err as ApiError).detail).toBe('No active account found with the given credentials');
    expect(client.isAuthenticated).toBe(false);
  });

  test('logout blacklists the refresh token, clears state and fires logout', async () => {
    const storage = memoryStorage();
    const { server, client } = await loggedIn({ storage });
    const token = server.refreshToken;
    const events: string[] = [];
    client.on('logout', (e) => events.push(e.reason));
    await client.logout();
    const call = server.calls.find((c) => c.path === '/api/token/blacklist/');
    expect((call?.body as { refresh: string }).refresh).toBe(token);
    expect(events).toEqual(['user']);
    expect(client.status).toBe('anonymous');
    expect(storage.get('sekisho.refresh')).toBeNull();
    expect((await client.fetch('/api/data')).status).toBe(401);
  });

  test('tokens are sent only to the API origin', async () => {
    const { client } = await loggedIn();
    const foreign = await client.prepareRequest('GET', 'https://tracker.example/pixel');
    expect(foreign.headers).toEqual({});
    expect(foreign.api).toBe(false);
    const own = await client.prepareRequest('GET', 'http://app.test/api/data');
    expect(own.headers.Authorization).toMatch(/^Bearer /);
  });
});
