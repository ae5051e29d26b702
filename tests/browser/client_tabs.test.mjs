// Two tabs (two pages of one browser context) sharing one JWT login: one refresh between them,
// the family survives, logout in one reaches the other.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, watchRequests, watchResponses, sleep } from './harness.mjs';
import { clientSite, openClientPage } from './client_page.mjs';

const LIFETIME_MS = 2000;
const OPTIONS = { mode: 'jwt', proactiveRefresh: false };
let server;
let browser;

before(async () => {
  // A grace window shorter than the test's waits: a tab presenting a rotated-away token after
  // it would revoke the family, and the "further refresh" below would fail.
  server = await startServer({ ...clientSite(), env: { SEKISHO_JWT__ACCESS_TOKEN_LIFETIME: '2s', SEKISHO_JWT__REUSE_GRACE: '1s' } });
  server.createUser('alice', 'browser-pass-1');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function twoTabs() {
  const context = await browser.newContext();
  const a = await openClientPage(context, server.base);
  const b = await openClientPage(context, server.base);
  await a.evaluate((o) => window.make(o).login('alice', 'browser-pass-1'), OPTIONS);
  // Tab b has no token of its own (memory storage): it takes the login over from tab a.
  const user = await b.evaluate(async (o) => (await window.within(5000, window.make(o).restore()))?.username, OPTIONS);
  assert.equal(user, 'alice');
  return { context, a, b };
}

const calls = (page, n) => page.evaluate(async (n) => {
  const rs = await window.within(15000, Promise.allSettled(Array.from({ length: n }, () => window.client.fetch('/api/auth/me/'))));
  return rs.map((r) => (r.status === 'fulfilled' ? r.value.status : `${r.reason.name}`));
}, n);

test('two tabs with an expired token: one refresh, both succeed, the family survives', async () => {
  const { context, a, b } = await twoTabs();
  await sleep(LIFETIME_MS + 600);
  const refreshes = watchRequests(context, '/api/token/refresh/');
  const [ra, rb] = await Promise.all([calls(a, 10), calls(b, 10)]);
  assert.deepEqual(ra, Array(10).fill(200));
  assert.deepEqual(rb, Array(10).fill(200));
  assert.equal(refreshes.count, 1, 'one refresh for both tabs');
  // Past the grace window, and past the new access token's life: a further refresh from either
  // tab works only if no tab ever presented a rotated-away token.
  await sleep(LIFETIME_MS + 600);
  assert.deepEqual(await calls(b, 3), [200, 200, 200]);
  assert.equal(refreshes.count, 2);
  const refreshStatuses = [];
  context.on('response', (r) => { if (new URL(r.url()).pathname === '/api/token/refresh/') refreshStatuses.push(r.status()); });
  await sleep(LIFETIME_MS + 600);
  assert.deepEqual(await calls(a, 3), [200, 200, 200]);
  assert.equal(refreshes.count, 3);
  assert.deepEqual(refreshStatuses, [200]);
  await context.close();
});

test('logout in one tab reaches the other', async () => {
  const { context, a, b } = await twoTabs();
  await a.evaluate(() => window.client.logout());
  await b.waitForFunction(() => window.events.some((e) => e.type === 'logout' && e.reason === 'other_tab'), null, { timeout: 5000 });
  const responses = watchResponses(b);
  const state = await b.evaluate(async () => ({ status: window.client.status, me: (await window.client.fetch('/api/auth/me/')).status }));
  assert.deepEqual(state, { status: 'anonymous', me: 401 });
  assert.deepEqual(responses.map((r) => r.status), [401]);
  // The family is gone server-side too (blacklisted by tab a's logout).
  assert.equal(await b.evaluate(async () => (await window.make({ mode: 'jwt' }).restore()) === null), true);
  await context.close();
});
