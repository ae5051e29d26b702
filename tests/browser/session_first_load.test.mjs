// A page served by sekisho whose very first action is a session login POST using the
// cookie-to-header pattern (read `csrftoken` from document.cookie, send it as X-CSRFToken).
// With the Django stack this is the classic first-load 403; here the cookie arrives with the
// HTML itself.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser } from './harness.mjs';

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>first load</title></head>
<body><h1 id="status">running</h1>
<script type="module">
  const cookie = (name) => document.cookie.split('; ').find((c) => c.startsWith(name + '='))?.slice(name.length + 1);
  const log = [];
  const call = async (method, path, body) => {
    const headers = { 'X-CSRFToken': cookie('csrftoken') ?? '' };
    if (body) headers['Content-Type'] = 'application/json';
    const r = await fetch(path, { method, headers, body: body && JSON.stringify(body), credentials: 'same-origin' });
    const json = await r.json();
    log.push({ method, path, status: r.status, body: json });
    return json;
  };
  const csrfAtStart = cookie('csrftoken') ?? null;
  await call('POST', '/api/auth/login/', { username: 'alice', password: 'browser-pass-1' });
  const csrfAfterLogin = cookie('csrftoken') ?? null;
  await call('GET', '/api/auth/me/');
  await call('POST', '/api/auth/logout/');
  await call('GET', '/api/auth/me/');
  window.__result = { log, csrfAtStart, csrfAfterLogin, cookiesSeenByJs: document.cookie };
  document.getElementById('status').textContent = 'done: ' + log.map((l) => l.status).join(',');
</script></body></html>`;

let server;
let browser;

before(async () => {
  server = await startServer({ files: { 'index.html': PAGE } });
  server.createUser('alice', 'browser-pass-1');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('first POST of a fresh page logs in with the cookie-to-header pattern, then me and logout work', async () => {
  const context = await browser.newContext(); // empty cookie jar: a first visit
  const page = await context.newPage();
  await page.goto(server.base + '/');
  await page.waitForFunction(() => window.__result, null, { timeout: 15000 });
  const r = await page.evaluate(() => window.__result);
  const [login, me, logout, meAfter] = r.log;
  assert.ok(r.csrfAtStart, 'csrftoken cookie was present before any API call');
  assert.equal(login.status, 200, JSON.stringify(login.body));
  assert.equal(login.body.user.username, 'alice');
  assert.notEqual(r.csrfAfterLogin, r.csrfAtStart, 'csrftoken rotates at login');
  assert.equal(me.status, 200);
  assert.equal(me.body.username, 'alice');
  assert.equal(logout.status, 200);
  assert.deepEqual(logout.body, {});
  assert.equal(meAfter.status, 401);
  assert.deepEqual(meAfter.body, { detail: 'Authentication credentials were not provided.' });
  assert.ok(!r.cookiesSeenByJs.includes('sessionid'), 'sessionid is HttpOnly');
  assert.match(await page.textContent('#status'), /^done: 200,200,200,401$/);
  await context.close();
});

test('a deep link is served the SPA with a usable csrftoken too', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const res = await page.goto(server.base + '/orders/42');
  assert.equal(res.status(), 200);
  await page.waitForFunction(() => window.__result, null, { timeout: 15000 });
  const r = await page.evaluate(() => window.__result);
  assert.equal(r.log[0].status, 200, JSON.stringify(r.log[0].body));
  await context.close();
});
