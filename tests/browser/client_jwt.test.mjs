// @sekisho/client in JWT mode, in a real browser against a real sekisho whose access tokens
// live 2 seconds: the parallel-refresh race, refresh failure, proactive refresh, storage.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, watchRequests, watchResponses, sleep, postJson } from './harness.mjs';
import { clientSite, openClientPage } from './client_page.mjs';

const LIFETIME_MS = 2000;
let server;
let browser;

before(async () => {
  server = await startServer({ ...clientSite(), env: { SEKISHO_JWT__ACCESS_TOKEN_LIFETIME: '2s', SEKISHO_JWT__REUSE_GRACE: '2s' } });
  server.createUser('alice', 'browser-pass-1');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Fires `n` client.fetch calls at once in the page; returns statuses or error names, and the time taken. */
async function burst(page, n, path = '/api/auth/me/') {
  return page.evaluate(async ({ n, path }) => {
    const started = performance.now();
    const results = await window.within(15000, Promise.allSettled(Array.from({ length: n }, () => window.client.fetch(path))));
    return {
      ms: performance.now() - started,
      ok: results.filter((r) => r.status === 'fulfilled').map((r) => r.value.status),
      errors: results.filter((r) => r.status === 'rejected').map((r) => `${r.reason.name}:${r.reason.code}`),
    };
  }, { n, path });
}

test('20 parallel calls after the access token expired: exactly one refresh, 20 successes', async () => {
  const context = await browser.newContext();
  const page = await openClientPage(context, server.base);
  await page.evaluate(() => window.make({ mode: 'jwt', proactiveRefresh: false }).login('alice', 'browser-pass-1'));
  await sleep(LIFETIME_MS + 600);
  const refreshes = watchRequests(page, '/api/token/refresh/');
  const responses = watchResponses(page);
  const r = await burst(page, 20);
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.ok, Array(20).fill(200));
  assert.equal(refreshes.count, 1, 'exactly one refresh request');
  const me = responses.filter((x) => x.path === '/api/auth/me/');
  // Every call went out with the expired token (no client-side expiry check here), got its
  // 401, waited for the one refresh and was retried once.
  assert.equal(me.filter((x) => x.status === 401).length, 20);
  assert.equal(me.filter((x) => x.status === 200).length, 20);
  assert.equal(me.length, 40);
  await context.close();
});

test('refresh failure: all 20 reject within a bounded time and the logout event fires', async () => {
  const context = await browser.newContext();
  const page = await openClientPage(context, server.base);
  const loginResponse = page.waitForResponse((res) => new URL(res.url()).pathname === '/api/token/', { timeout: 10000 });
  await page.evaluate(() => window.make({ mode: 'jwt', proactiveRefresh: false }).login('alice', 'browser-pass-1'));
  const { refresh } = await (await loginResponse).json();
  // The family is revoked server-side (as by a logout elsewhere or an admin).
  assert.equal((await postJson(server.base, '/api/token/blacklist/', { refresh })).status, 200);
  await sleep(LIFETIME_MS + 600);
  const refreshes = watchRequests(page, '/api/token/refresh/');
  const r = await burst(page, 20);
  assert.deepEqual(r.ok, []);
  assert.deepEqual(r.errors, Array(20).fill('SessionExpiredError:session_expired'));
  assert.ok(r.ms < 3000, `all rejected within 3 s (took ${Math.round(r.ms)} ms)`);
  assert.equal(refreshes.count, 1);
  const state = await page.evaluate(() => ({ status: window.client.status, logouts: window.events.filter((e) => e.type === 'logout').map((e) => e.reason) }));
  assert.equal(state.status, 'anonymous');
  assert.deepEqual(state.logouts, ['expired'], 'the logout event fired once');
  await context.close();
});

test('proactive refresh: an idle page refreshes before expiry, so a later burst sees no 401', async () => {
  const context = await browser.newContext();
  const page = await openClientPage(context, server.base);
  const refreshes = watchRequests(page, '/api/token/refresh/');
  await page.evaluate(() => window.make({ mode: 'jwt' }).login('alice', 'browser-pass-1'));
  await sleep(LIFETIME_MS * 2);
  assert.ok(refreshes.count >= 1, 'refreshed without any API call');
  const responses = watchResponses(page);
  const r = await burst(page, 20);
  assert.deepEqual(r.ok, Array(20).fill(200));
  assert.equal(responses.filter((x) => x.status === 401).length, 0, 'no 401 at all');
  await page.evaluate(() => window.client.destroy());
  await context.close();
});

test('the rotated refresh token is stored: after a reload the login is restored from it', async () => {
  const context = await browser.newContext();
  const page = await openClientPage(context, server.base);
  const loginResponse = page.waitForResponse((res) => new URL(res.url()).pathname === '/api/token/', { timeout: 10000 });
  await page.evaluate(() => window.make({ mode: 'jwt', storage: 'session', proactiveRefresh: false }).login('alice', 'browser-pass-1'));
  const { refresh: first } = await (await loginResponse).json();
  await sleep(LIFETIME_MS + 600);
  assert.deepEqual((await burst(page, 3)).ok, [200, 200, 200]);
  const stored = await page.evaluate(() => sessionStorage.getItem('sekisho.refresh'));
  assert.ok(stored && stored !== first, 'the rotated token replaced the first one');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('sekisho.access')), null, 'access token not stored');
  await page.reload();
  await page.waitForFunction(() => typeof window.make === 'function', null, { timeout: 15000 });
  const user = await page.evaluate(async () => (await window.make({ mode: 'jwt', storage: 'session', proactiveRefresh: false }).restore())?.username);
  assert.equal(user, 'alice');
  // Presenting the first (rotated-away) token now would be reuse: the server says so.
  await sleep(2500); // past the grace window
  assert.equal((await postJson(server.base, '/api/token/refresh/', { refresh: first })).status, 401);
  await context.close();
});
