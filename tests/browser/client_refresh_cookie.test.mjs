// @sekisho/client with the server's refresh-token cookie (jwt.refresh_cookie = true, DESIGN
// §3.4): the refresh token never reaches JavaScript; refresh sends an empty body, the cookie and
// the CSRF header.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, watchRequests, sleep } from './harness.mjs';
import { clientSite, openClientPage } from './client_page.mjs';

const LIFETIME_MS = 2000;
const OPTIONS = { mode: 'jwt', refreshCookie: true, proactiveRefresh: false };
let server;
let browser;

before(async () => {
  server = await startServer({ ...clientSite(), env: { SEKISHO_JWT__ACCESS_TOKEN_LIFETIME: '2s', SEKISHO_JWT__REFRESH_COOKIE: 'true' } });
  server.createUser('alice', 'browser-pass-1');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('refresh cookie: tokens never in JS, one refresh for 20 calls, restore after reload, logout clears it', async () => {
  const context = await browser.newContext();
  const page = await openClientPage(context, server.base);
  const loginResponse = page.waitForResponse((res) => new URL(res.url()).pathname === '/api/token/', { timeout: 10000 });
  await page.evaluate((o) => window.make(o).login('alice', 'browser-pass-1'), OPTIONS);
  const loginBody = await (await loginResponse).json();
  assert.ok(loginBody.access);
  assert.equal(loginBody.refresh, undefined, 'the JSON body omits the refresh token');
  const jsCookies = await page.evaluate(() => document.cookie);
  assert.deepEqual(jsCookies.split('; ').map((c) => c.split('=')[0]), ['csrftoken'], 'only csrftoken is readable');
  const refreshCookie = (await context.cookies()).find((c) => c.httpOnly && c.path.startsWith('/api/token'));
  assert.ok(refreshCookie, 'an HttpOnly cookie scoped to the token paths holds the refresh token');
  assert.equal(refreshCookie.sameSite, 'Strict');

  await sleep(LIFETIME_MS + 600);
  const refreshes = watchRequests(page, '/api/token/refresh/');
  const statuses = await page.evaluate(async () => {
    const rs = await window.within(15000, Promise.all(Array.from({ length: 20 }, () => window.client.fetch('/api/auth/me/'))));
    return rs.map((r) => r.status);
  });
  assert.deepEqual(statuses, Array(20).fill(200));
  assert.equal(refreshes.count, 1);
  const [req] = refreshes.requests;
  assert.ok(!req.postData(), 'empty body');
  assert.ok(req.headers()['x-csrftoken'], 'CSRF header sent');
  const refreshBody = await (await req.response()).json();
  assert.ok(refreshBody.access);
  assert.equal(refreshBody.refresh, undefined);

  await page.reload();
  await page.waitForFunction(() => typeof window.make === 'function', null, { timeout: 15000 });
  const restored = await page.evaluate(async (o) => (await window.within(10000, window.make(o).restore()))?.username, OPTIONS);
  assert.equal(restored, 'alice', 'the cookie restores the login after a reload');

  await page.evaluate(() => window.client.logout());
  await page.reload();
  await page.waitForFunction(() => typeof window.make === 'function', null, { timeout: 15000 });
  const afterLogout = await page.evaluate(async (o) => await window.within(10000, window.make(o).restore()), OPTIONS);
  assert.equal(afterLogout, null, 'after logout the cookie no longer logs in');
  await context.close();
});
