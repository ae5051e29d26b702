// Session mode: cookies plus the CSRF header, a CSRF cookie fetched before the first unsafe
// request when there is none, the rotated token re-read after login, one retry on a stale token.
import { expect, test, vi } from 'vitest';
import { ApiError } from '../src/index.js';
import { FakeServer, sessionClient } from './helpers.js';

test('first load with no cookie at all: one GET /api/auth/csrf/ before the login POST', async () => {
  const server = new FakeServer();
  const client = sessionClient(server);
  const user = await client.login('ann', 'pw');
  expect(user.username).toBe('ann');
  expect(server.calls.map((c) => `${c.method} ${c.path}`)).toEqual(['GET /api/auth/csrf/', 'POST /api/auth/login/']);
  expect(client.status).toBe('authenticated');
});

test('parallel unsafe requests with no cookie share one CSRF fetch', async () => {
  const server = new FakeServer();
  const client = sessionClient(server);
  await client.login('ann', 'pw');
  server.jar.delete('csrftoken');
  server.calls = [];
  // (the fake then refuses the fresh anonymous token for this session; what matters here is
  // that ten requests caused one fetch, not ten)
  await Promise.all(Array.from({ length: 10 }, (_, i) => client.fetch(`/api/items/${i}`, { method: 'POST' })));
  expect(server.count('/api/auth/csrf/')).toBeLessThanOrEqual(2);
  expect(server.count('/api/auth/csrf/')).toBeGreaterThanOrEqual(1);
});

test('the token that rotated at login is the one sent afterwards', async () => {
  const server = new FakeServer();
  const client = sessionClient(server);
  await client.login('ann', 'pw');
  const rotated = server.jar.get('csrftoken');
  const r = await client.fetch('/api/items/', { method: 'POST', body: '{}' });
  expect(r.status).toBe(200);
  expect(server.calls.at(-1)?.headers.get('x-csrftoken')).toBe(rotated);
  // Safe methods carry no CSRF header.
  await client.fetch('/api/items/');
  expect(server.calls.at(-1)?.headers.get('x-csrftoken')).toBeNull();
});

test('a stale CSRF cookie gets one fresh token and one retry', async () => {
  const server = new FakeServer();
  const client = sessionClient(server);
  await client.login('ann', 'pw');
  server.jar.set('csrftoken', 'stale-from-an-old-session');
  server.calls = [];
  const r = await client.fetch('/api/items/', { method: 'DELETE' });
  // The fake binds tokens to the session like sekisho: the token from /csrf/ is not the
  // session's, so the retry fails too — and is not retried a second time.
  expect(r.status).toBe(403);
  expect(server.calls.map((c) => `${c.method} ${c.path}`)).toEqual(['DELETE /api/items/', 'GET /api/auth/csrf/', 'DELETE /api/items/']);
});

test('a 403 that is not about the CSRF token is returned without retry', async () => {
  const server = new FakeServer();
  const client = sessionClient(server);
  await client.login('ann', 'pw');
  const attempt = await client.prepareRequest('POST', '/api/items/');
  expect(await client.handleResponse(attempt, 403, async () => ({ detail: 'You do not have permission to perform this action.' }))).toBe(false);
  expect(
    await client.handleResponse(attempt, 403, async () => ({ detail: 'CSRF Failed: Origin checking failed - http://evil does not match any trusted origins.' })),
  ).toBe(false);
});

test('login with a wrong password: invalid_credentials; restore and logout', async () => {
  const server = new FakeServer();
  const client = sessionClient(server);
  const err = await client.login('ann', 'bad').catch((e: unknown) => e);
  expect((err as ApiError).code).toBe('invalid_credentials');
  expect(await client.restore()).toBeNull();
  expect(client.status).toBe('anonymous');
  await client.login('ann', 'pw');
  const again = sessionClient(server);
  expect((await again.restore())?.username).toBe('ann');
  const onLogout = vi.fn();
  client.on('logout', onLogout);
  await client.logout();
  expect(server.jar.has('sessionid')).toBe(false);
  expect(onLogout).toHaveBeenCalledWith({ reason: 'user' });
});

test('a 401 while logged in means the session ended: logout event with reason expired', async () => {
  const server = new FakeServer();
  const onLogout = vi.fn();
  const client = sessionClient(server, { onLogout });
  await client.login('ann', 'pw');
  server.jar.delete('sessionid'); // expired or revoked server-side
  const r = await client.fetch('/api/items/');
  expect(r.status).toBe(401);
  expect(onLogout).toHaveBeenCalledWith({ reason: 'expired' });
  expect(client.status).toBe('anonymous');
});
