// Two tabs sharing one login: one refresh at a time, the other tab adopts its tokens, nobody
// presents a rotated-away token, logout reaches every tab.
import { expect, test, vi } from 'vitest';
import { memoryGeneration } from '../src/index.js';
import { FakeServer, jwtClient, sharedBus, sharedLock, within } from './helpers.js';

function browser() {
  return { lock: sharedLock(), bus: sharedBus(), gen: memoryGeneration() };
}

test('a second tab takes over the login of the first (memory storage)', async () => {
  const server = new FakeServer();
  const shared = browser();
  const a = jwtClient(server, { proactiveRefresh: false }, shared);
  await a.login('ann', 'pw');
  const b = jwtClient(server, { proactiveRefresh: false }, shared);
  const user = await within(1000, b.restore());
  expect(user?.username).toBe('ann');
  expect(server.count('/api/token/refresh/')).toBe(0);
  expect((await b.fetch('/api/data')).status).toBe(200);
});

test('two tabs with an expired token: one refresh, both succeed, the family survives', async () => {
  const server = new FakeServer();
  const shared = browser();
  const a = jwtClient(server, { proactiveRefresh: false }, shared);
  await a.login('ann', 'pw');
  const b = jwtClient(server, { proactiveRefresh: false }, shared);
  await b.restore();
  server.expireAccessTokens();
  const [ra, rb] = await within(3000, Promise.all([
    Promise.all(Array.from({ length: 10 }, (_, i) => a.fetch(`/api/a/${i}`))),
    Promise.all(Array.from({ length: 10 }, (_, i) => b.fetch(`/api/b/${i}`))),
  ]));
  expect([...ra, ...rb].every((r) => r.status === 200)).toBe(true);
  expect(server.count('/api/token/refresh/')).toBe(1);
  // The fake has no grace window: a rotated-away token would have been refused. Both tabs now
  // hold the current one, so a further refresh from either works.
  server.expireAccessTokens();
  expect((await b.fetch('/api/b/again')).status).toBe(200);
  await new Promise((r) => setTimeout(r, 10)); // b's message reaches a
  server.expireAccessTokens();
  expect((await a.fetch('/api/a/again')).status).toBe(200);
  expect(server.count('/api/token/refresh/')).toBe(3);
});

test('a tab that gets the lock after another refreshed waits for its tokens instead of refreshing', async () => {
  const server = new FakeServer();
  const shared = browser();
  const a = jwtClient(server, { proactiveRefresh: false }, shared);
  await a.login('ann', 'pw');
  const b = jwtClient(server, { proactiveRefresh: false }, shared);
  await b.restore();
  let open!: () => void;
  server.refreshGate = new Promise<void>((r) => (open = r));
  const pa = a.refresh();
  const pb = b.refresh(); // queued behind a's lock, with b's (soon stale) token
  await new Promise((r) => setTimeout(r, 20));
  open();
  const [ta, tb] = await within(2000, Promise.all([pa, pb]));
  expect(tb).toBe(ta);
  expect(server.count('/api/token/refresh/')).toBe(1);
});

test('logout in one tab reaches the other', async () => {
  const server = new FakeServer();
  const shared = browser();
  const a = jwtClient(server, {}, shared);
  await a.login('ann', 'pw');
  const b = jwtClient(server, {}, shared);
  await b.restore();
  const onLogout = vi.fn();
  b.on('logout', onLogout);
  await a.logout();
  await vi.waitFor(() => expect(onLogout).toHaveBeenCalledWith({ reason: 'other_tab' }), { timeout: 1000 });
  expect(b.status).toBe('anonymous');
  expect(b.user).toBeNull();
  expect((await b.fetch('/api/data')).status).toBe(401);
  expect(server.calls.at(-1)?.headers.get('authorization')).toBeNull();
  a.destroy();
  b.destroy();
});

test('a refused refresh in one tab logs out the other too', async () => {
  const server = new FakeServer();
  const shared = browser();
  const a = jwtClient(server, { proactiveRefresh: false }, shared);
  await a.login('ann', 'pw');
  const b = jwtClient(server, { proactiveRefresh: false }, shared);
  await b.restore();
  const onLogout = vi.fn();
  b.on('logout', onLogout);
  server.refreshBehaviour = 'reject';
  await expect(a.refresh()).rejects.toMatchObject({ code: 'session_expired' });
  await vi.waitFor(() => expect(onLogout).toHaveBeenCalledWith({ reason: 'other_tab' }), { timeout: 1000 });
});

test('logout from a tab that missed the latest tokens still reaches the tabs that are ahead', async () => {
  const server = new FakeServer();
  const shared = browser();
  // Tab a never hears about new tokens (a lost message, a frozen tab).
  const deaf = (name: string) => {
    const ch = shared.bus(name);
    return { ...ch, onMessage: (l: Parameters<typeof ch.onMessage>[0]) => ch.onMessage((m) => { if (m.type !== 'tokens') l(m); }) };
  };
  const a = jwtClient(server, { proactiveRefresh: false, platform: { channel: deaf } }, shared);
  await a.login('ann', 'pw');
  const b = jwtClient(server, { proactiveRefresh: false }, shared);
  await b.restore();
  await b.refresh(); // b is now a generation ahead of a
  const onLogout = vi.fn();
  b.on('logout', onLogout);
  await a.logout();
  await vi.waitFor(() => expect(onLogout).toHaveBeenCalledWith({ reason: 'other_tab' }), { timeout: 1000 });
  expect(b.status).toBe('anonymous');
});
