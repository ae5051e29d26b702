// Proactive refresh: planned from the access token's `exp`, corrected by the estimated clock
// skew, so an active page rarely sees a 401.
import { afterEach, beforeEach, expect, test, vi } from 'vitest';
import { estimateSkew, tokenTimes } from '../src/index.js';
import { FakeServer, jwtClient, makeToken } from './helpers.js';

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2030-01-01T00:00:00Z') });
});
afterEach(() => {
  vi.useRealTimers();
});

test('refreshes a quarter of the lifetime (at most 30 s) before exp, then again for the new token', async () => {
  const server = new FakeServer();
  server.accessLifetime = 300;
  const client = jwtClient(server);
  await client.login('ann', 'pw');
  await vi.advanceTimersByTimeAsync(269_000);
  expect(server.count('/api/token/refresh/')).toBe(0);
  await vi.advanceTimersByTimeAsync(2_000);
  expect(server.count('/api/token/refresh/')).toBe(1);
  await vi.advanceTimersByTimeAsync(270_000);
  expect(server.count('/api/token/refresh/')).toBe(2);
  expect(client.status).toBe('authenticated');
  client.destroy();
});

test('short tokens: a quarter of the lifetime before exp', async () => {
  const server = new FakeServer();
  server.accessLifetime = 4;
  const client = jwtClient(server);
  await client.login('ann', 'pw');
  await vi.advanceTimersByTimeAsync(2_900);
  expect(server.count('/api/token/refresh/')).toBe(0);
  await vi.advanceTimersByTimeAsync(200);
  expect(server.count('/api/token/refresh/')).toBe(1);
  client.destroy();
});

test('a server clock 10 minutes ahead is measured and the refresh still comes before expiry', async () => {
  const server = new FakeServer();
  server.skewMs = 600_000;
  server.accessLifetime = 300;
  const client = jwtClient(server);
  await client.login('ann', 'pw');
  expect(Math.abs(client.clockSkew - 600_000)).toBeLessThanOrEqual(1_000);
  // Without the skew correction the token would look valid for 15 minutes; it is 5.
  const remaining = (client.accessTokenExpiresAt ?? 0) - Date.now();
  expect(remaining).toBeGreaterThan(298_000);
  expect(remaining).toBeLessThanOrEqual(301_000);
  await vi.advanceTimersByTimeAsync(272_000);
  expect(server.count('/api/token/refresh/')).toBe(1);
  client.destroy();
});

test('a token already expired by the local clock is refreshed before it is sent (no 401 round trip)', async () => {
  const server = new FakeServer();
  server.accessLifetime = 60;
  const client = jwtClient(server, { refreshMargin: 0 });
  await client.login('ann', 'pw');
  client.destroy(); // no timer: only the pre-send check
  await vi.advanceTimersByTimeAsync(61_000);
  server.expireAccessTokens();
  const r = await client.fetch('/api/data');
  expect(r.status).toBe(200);
  expect(server.count('/api/data')).toBe(1);
  expect(server.count('/api/token/refresh/')).toBe(1);
});

test('proactiveRefresh: false sends the token as it is and relies on the 401', async () => {
  const server = new FakeServer();
  server.accessLifetime = 60;
  const client = jwtClient(server, { proactiveRefresh: false });
  await client.login('ann', 'pw');
  await vi.advanceTimersByTimeAsync(120_000);
  expect(server.count('/api/token/refresh/')).toBe(0);
  server.expireAccessTokens();
  expect((await client.fetch('/api/data')).status).toBe(200);
  expect(server.count('/api/data')).toBe(2);
});

test('skew estimates within the resolution of iat count as zero', () => {
  const now = Date.now();
  expect(estimateSkew(Math.floor(now / 1000), now - 50, now + 50)).toBe(0);
  expect(estimateSkew(Math.floor(now / 1000) + 120, now, now + 100)).toBeGreaterThan(119_000);
  expect(tokenTimes(makeToken({ exp: 10, iat: 5 }))).toEqual({ exp: 10, iat: 5 });
  expect(tokenTimes('not-a-token')).toBeNull();
});
