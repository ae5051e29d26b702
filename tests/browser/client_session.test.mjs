// @sekisho/client in session mode, in a real browser against a real sekisho.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, watchResponses } from './harness.mjs';
import { clientSite, openClientPage } from './client_page.mjs';

let server;
let browser;

before(async () => {
  server = await startServer(clientSite());
  server.createUser('alice', 'browser-pass-1');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('first load: the client logs in with no prior cookie, then unsafe calls and logout work', async () => {
  const context = await browser.newContext(); // empty cookie jar
  const responses = watchResponses(context);
  const page = await openClientPage(context, server.base);
  const r = await page.evaluate(async () => {
    const client = window.make({ mode: 'session' });
    const user = await window.within(10000, client.login('alice', 'browser-pass-1'));
    const patched = await client.fetch('/api/auth/me/', {
      method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ first_name: 'Alice' }),
    });
    const me = await client.me();
    await client.logout();
    const after = await client.fetch('/api/auth/me/');
    return { user: user.username, patched: patched.status, firstName: me.first_name, status: client.status, after: after.status, events: window.events.map((e) => `${e.type}:${e.reason ?? ''}`) };
  });
  assert.equal(r.user, 'alice');
  assert.equal(r.patched, 200);
  assert.equal(r.firstName, 'Alice');
  assert.equal(r.status, 'anonymous');
  assert.equal(r.after, 401);
  assert.deepEqual(r.events, ['login:', 'logout:user']);
  assert.ok(!responses.some((x) => x.status === 403), `no CSRF 403 on first load: ${JSON.stringify(responses)}`);
  await context.close();
});

test('no csrftoken cookie at all: the client fetches one before its first POST', async () => {
  const context = await browser.newContext();
  const page = await openClientPage(context, server.base);
  await context.clearCookies(); // as if the HTML came from a CDN rather than sekisho
  const responses = watchResponses(context);
  const r = await page.evaluate(async () => {
    const client = window.make({ mode: 'session' });
    const user = await window.within(10000, client.login('alice', 'browser-pass-1'));
    return user.username;
  });
  assert.equal(r, 'alice');
  assert.deepEqual(responses.map((x) => `${x.method} ${x.path} ${x.status}`), [
    'GET /api/auth/csrf/ 200',
    'POST /api/auth/login/ 200',
  ]);
  await context.close();
});

test('a stale CSRF cookie costs one 403, one fresh token and one retry', async () => {
  const context = await browser.newContext();
  const page = await openClientPage(context, server.base);
  await page.evaluate(() => window.make({ mode: 'session' }).login('alice', 'browser-pass-1'));
  const url = new URL(server.base);
  await context.addCookies([{ name: 'csrftoken', value: 'f'.repeat(64), domain: url.hostname, path: '/' }]);
  const responses = watchResponses(context);
  const status = await page.evaluate(async () => {
    const r = await window.within(10000, window.client.fetch('/api/auth/me/', {
      method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ last_name: 'L' }),
    }));
    return r.status;
  });
  assert.equal(status, 200);
  assert.deepEqual(responses.map((x) => `${x.method} ${x.path} ${x.status}`), [
    'PATCH /api/auth/me/ 403',
    'GET /api/auth/csrf/ 200',
    'PATCH /api/auth/me/ 200',
  ]);
  await context.close();
});

test('session mode: logout in one tab reaches the other', async () => {
  const context = await browser.newContext();
  const a = await openClientPage(context, server.base);
  const b = await openClientPage(context, server.base);
  await a.evaluate(() => window.make({ mode: 'session' }).login('alice', 'browser-pass-1'));
  const restored = await b.evaluate(async () => (await window.make({ mode: 'session' }).restore())?.username);
  assert.equal(restored, 'alice');
  await a.evaluate(() => window.client.logout());
  await b.waitForFunction(() => window.events.some((e) => e.type === 'logout' && e.reason === 'other_tab'), null, { timeout: 5000 });
  assert.equal(await b.evaluate(() => window.client.status), 'anonymous');
  await context.close();
});
