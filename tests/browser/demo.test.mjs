// The Vue demo (examples/vue-spa, built) served by the embed-axum example app, in a real
// browser: the dashboard's parallel calls, the session-mode office, the JWT-mode shop and the
// permission-gated reports screen.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, launchBrowser, watchRequests, watchResponses, sleep, EMBED_BIN, DEMO_DIST, requireBuilt } from './harness.mjs';

let server;
let browser;

before(async () => {
  requireBuilt(DEMO_DIST, 'run `npm ci && npm run build` in examples/vue-spa');
  server = await startServer({ bin: EMBED_BIN, args: [], staticDir: DEMO_DIST, env: { SEKISHO_JWT__ACCESS_TOKEN_LIFETIME: '2s' } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function login(page, testid, username = 'demo', password = 'demo-password') {
  const form = page.getByTestId(testid).getByTestId('login-form');
  await form.waitFor({ timeout: 10000 });
  await form.locator('input[name=username]').fill(username);
  await form.locator('input[name=password]').fill(password);
  await form.locator('button[type=submit]').click();
}

test('the dashboard renders its 15 parallel calls, and a reload with an expired token costs one refresh', async () => {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(server.base + '/dashboard'); // a deep link: history fallback serves the SPA
  // Record when each API call starts and ends, to see that they overlap.
  const timeline = [];
  page.on('request', (r) => { if (new URL(r.url()).pathname.startsWith('/api/stats/')) timeline.push('start'); });
  page.on('requestfinished', (r) => { if (new URL(r.url()).pathname.startsWith('/api/stats/')) timeline.push('end'); });
  await login(page, 'dashboard');
  const summary = page.getByTestId('dashboard-summary');
  await summary.getByText(/^15 calls, 0 failed/).waitFor({ timeout: 15000 });
  assert.equal(await page.getByTestId('tile').count(), 15);
  const startedBeforeFirstEnd = timeline.indexOf('end');
  assert.ok(startedBeforeFirstEnd >= 10, `at least 10 calls in flight at once (timeline ${timeline.join(',')})`);

  const shot = join(mkdtempSync(join(tmpdir(), 'sekisho-demo-')), 'dashboard.png');
  await page.screenshot({ path: shot, fullPage: true });
  const png = readFileSync(shot);
  assert.equal(png.subarray(1, 4).toString(), 'PNG');
  assert.ok(png.length > 10000, `a real picture (${png.length} bytes)`);
  console.log(`dashboard screenshot: ${shot}`);
  const text = (await page.locator('main').innerText()).toLowerCase(); // labels are upper-cased by CSS
  for (const word of ['signed in as', 'demo', 'revenue', 'visitors', 'uptime', 'catalogue']) {
    assert.ok(text.includes(word), `dashboard shows "${word}"`);
  }
  assert.ok(!text.includes('failed\n'), 'no tile failed');

  // The user leaves, the access token (2 s) expires; the tab keeps its refresh token in
  // sessionStorage. Coming back to the app restores the login with one refresh, then the 15 calls use the new token.
  // (Through `/` and the menu: a revalidating reload of a deep link currently gets a 404 from
  // the SPA fallback, see the server's spa.rs.)
  await page.goto('about:blank'); // leave the app (its proactive refresh timer with it)
  await sleep(2600);
  const refreshes = watchRequests(page, '/api/token/refresh/');
  const refusedBearer = [];
  page.on('response', (r) => { if (r.status() === 401 && r.request().headers().authorization) refusedBearer.push(r.url()); });
  await page.goto(server.base + '/');
  await page.getByRole('navigation').getByRole('link', { name: 'Dashboard' }).click();
  await page.getByTestId('dashboard-summary').getByText(/^15 calls, 0 failed/).waitFor({ timeout: 15000 }).catch(async (e) => {
    throw new Error(`${e.message}\npage shows: ${await page.locator('body').innerText()}`);
  });
  assert.equal(refreshes.count, 1, 'one refresh for the whole reload');
  // (The office's session check answers 401 for an anonymous visitor; no bearer call did.)
  assert.deepEqual(refusedBearer, [], 'no request with a token was refused');
  assert.deepEqual(errors, []);
  await context.close();
});

test('office (session mode through axios): login, orders, CSRF-protected save, permission 403', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const responses = watchResponses(page);
  await page.goto(server.base + '/office');
  await login(page, 'office');
  await page.getByTestId('office-user').getByText('demo').waitFor({ timeout: 10000 });
  await page.getByTestId('office-orders').getByText('Tenugui towel').waitFor({ timeout: 10000 });
  await page.locator('input[name=first_name]').fill('Dee');
  await page.getByRole('button', { name: /Save/ }).click();
  await page.getByTestId('office-message').getByText('Saved: first name is now "Dee"').waitFor({ timeout: 10000 });
  await page.getByRole('button', { name: /Sales report/ }).click();
  await page.getByTestId('office-report').getByText('403: You do not have permission to perform this action.').waitFor({ timeout: 10000 });
  assert.ok(!responses.some((r) => r.status === 403 && r.path !== '/api/reports/'), 'no CSRF failure');
  assert.ok(!(await page.evaluate(() => document.cookie)).includes('sessionid'));
  await context.close();
});

test('shop (JWT mode through fetch): public catalogue, login, order placed with the bearer token', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(server.base + '/shop');
  await page.getByTestId('products').getByText('Woodblock print').waitFor({ timeout: 10000 });
  await login(page, 'shop');
  await page.getByTestId('shop-user').getByText('demo').waitFor({ timeout: 10000 });
  const order = page.waitForRequest((r) => new URL(r.url()).pathname === '/api/orders/' && r.method() === 'POST', { timeout: 10000 });
  await page.getByTestId('products').getByRole('button', { name: 'Buy' }).nth(2).click();
  assert.match((await order).headers().authorization ?? '', /^Bearer /);
  await page.getByTestId('shop-message').getByText(/^Order #\d+: Furoshiki cloth, 24\.00$/).waitFor({ timeout: 10000 });
  await context.close();
});

test('reports (needs shop.view_report): refused to demo by the page and by the API, shown to admin', async () => {
  const NO_PERMISSION = 'You do not have permission to perform this action.';
  const getReport = () => fetch('/api/reports/').then(async (r) => ({ status: r.status, body: await r.json() }));

  // demo, logged in to the office, opens the screen from the menu: the router guard reads the
  // permissions from /api/auth/me/, the screen shows the refusal and asks the API for nothing.
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(server.base + '/office');
  await login(page, 'office');
  await page.getByTestId('office-user').getByText('demo').waitFor({ timeout: 10000 });
  const me = watchRequests(page, '/api/auth/me/');
  const reportCalls = watchRequests(page, '/api/reports/');
  await page.getByRole('navigation').getByRole('link', { name: 'Reports' }).click();
  const denied = page.getByTestId('reports-denied');
  await denied.waitFor({ timeout: 10000 });
  assert.match(await denied.innerText(), /You need the shop\.view_report permission/);
  assert.ok(me.count >= 1, 'the guard read the permissions from /api/auth/me/');
  assert.equal(me.requests.at(-1).method(), 'GET');
  assert.equal(await page.getByTestId('reports-data').count(), 0);
  assert.equal(reportCalls.count, 0, 'no report data fetched');
  // The API refuses by itself: a plain GET from the page, with the session cookie.
  assert.deepEqual(await page.evaluate(getReport), { status: 403, body: { detail: NO_PERMISSION } });
  // Past the client-side check (?force), the screen gets the API's 403 and shows no data.
  await denied.getByRole('link', { name: 'open the page anyway' }).click();
  await page.getByTestId('reports-error').getByText(`403: ${NO_PERMISSION}`).waitFor({ timeout: 10000 });
  assert.equal(new URL(page.url()).search, '?force=1');
  assert.equal(await page.getByTestId('reports-data').count(), 0);
  await context.close();

  // admin (a superuser, who holds every permission) logs in on the screen itself: the report.
  const adminContext = await browser.newContext();
  const adminPage = await adminContext.newPage();
  await adminPage.goto(server.base + '/reports');
  await login(adminPage, 'reports', 'admin', 'admin-password');
  const data = adminPage.getByTestId('reports-data');
  await data.getByText('1234.00').waitFor({ timeout: 10000 });
  assert.match(await data.innerText(), /Revenue\s+1234\.00/);
  assert.equal(await adminPage.getByTestId('reports-denied').count(), 0);
  assert.deepEqual(await adminPage.evaluate(getReport), { status: 200, body: { revenue: '1234.00' } });
  await adminContext.close();
});
