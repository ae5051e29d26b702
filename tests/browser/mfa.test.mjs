// Second factors in a real browser. Through the Vue demo (served by the embed-axum example): set
// up TOTP on the Security screen, then the office (session) and shop (JWT) logins ask for a code
// after the password; nothing — no session cookie, no token — exists before the code passes; a
// recovery code works once; staff required to enrol do it inside the login. And the client
// alone against sekisho in refresh-cookie mode.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startServer, launchBrowser, sleep, EMBED_BIN, DEMO_DIST, requireBuilt } from './harness.mjs';
import { clientSite, openClientPage } from './client_page.mjs';

let browser;
const servers = [];

before(async () => {
  requireBuilt(DEMO_DIST, 'run `npm ci && npm run build` in examples/vue-spa');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  for (const s of servers) await s.stop();
});

/** A fresh example app (its own database: each test enrols its users from scratch). */
async function demoServer(env = {}) {
  const s = await startServer({ bin: EMBED_BIN, args: [], staticDir: DEMO_DIST, env });
  servers.push(s);
  return s;
}

// RFC 6238 with sekisho's parameters: SHA-1, 30 s steps, 6 digits; the secret is base32.
function base32Decode(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of s.replace(/=+$/, '').toUpperCase()) {
    const i = alphabet.indexOf(ch);
    if (i < 0) throw new Error(`not base32: ${ch}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

function totpAt(secret, step) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32Decode(secret)).update(msg).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, '0');
}

const stepNow = () => Math.floor(Date.now() / 30_000);

/**
 * The authenticator app of one user. sekisho accepts the steps now−1 … now+1 and each step
 * only after the last one it accepted, so the code handed out is for the first step after the
 * last used one; only when that is out of reach (two steps ahead) does it wait, polling the
 * step number, bounded. Codes are computed right before they are typed.
 */
class Authenticator {
  constructor(secret) {
    this.secret = secret;
    this.last = -Infinity;
  }

  async code() {
    const deadline = Date.now() + 35_000;
    for (;;) {
      const now = stepNow();
      const step = Math.max(now, this.last + 1);
      if (step <= now + 1) {
        this.last = step;
        return totpAt(this.secret, step);
      }
      if (Date.now() > deadline) throw new Error('the TOTP step did not advance');
      await sleep(250);
    }
  }

  /** A well-formed code that is valid at no step the server could be checking. */
  wrongCode() {
    const now = stepNow();
    const valid = new Set([-2, -1, 0, 1, 2].map((d) => totpAt(this.secret, now + d)));
    let n = Number(totpAt(this.secret, now));
    let code;
    do {
      n = (n + 1) % 1_000_000;
      code = String(n).padStart(6, '0');
    } while (valid.has(code));
    return code;
  }
}

async function passwordStep(page, testid, username = 'demo', password = 'demo-password') {
  const form = page.getByTestId(testid).getByTestId('login-form');
  await form.waitFor({ timeout: 10000 });
  await form.locator('input[name=username]').fill(username);
  await form.locator('input[name=password]').fill(password);
  await form.locator('button[type=submit]').click();
}

async function typeCode(scope, value, { recovery = false } = {}) {
  const form = scope.getByTestId('code-form');
  await form.waitFor({ timeout: 10000 });
  const name = recovery ? 'recovery_code' : 'code';
  if (recovery && (await form.locator('input[name=recovery_code]').count()) === 0) {
    await form.getByTestId('use-recovery').click();
  }
  await form.locator(`input[name=${name}]`).fill(typeof value === 'function' ? await value() : value);
  await form.locator('button[type=submit]').click();
}

const sessionCookie = async (context) => (await context.cookies()).find((c) => c.name === 'sessionid');
const cookieNames = async (context) => (await context.cookies()).map((c) => c.name).sort();

/**
 * On the Security screen (already logged in): sets up TOTP, first with a wrong code (a field
 * error), then a right one. Returns the authenticator and the recovery codes shown once.
 */
async function enrolOnSecurityScreen(page) {
  const security = page.getByTestId('security');
  await security.getByTestId('mfa-off').waitFor({ timeout: 10000 });
  await security.getByTestId('totp-begin').click();
  const qr = security.getByTestId('totp-qr');
  await qr.waitFor({ timeout: 10000 });
  assert.match(await qr.getAttribute('src'), /^data:image\/svg\+xml;/);
  // The server's SVG is an image that decoded, not markup in the page.
  await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await qr.elementHandle(), { timeout: 5000 });
  assert.equal(await page.locator('main svg').count(), 0, 'no SVG markup inserted into the page');
  const secret = (await security.getByTestId('totp-secret').innerText()).trim();
  assert.match(secret, /^[A-Z2-7]{16,}$/);
  const app = new Authenticator(secret);

  await typeCode(security, app.wrongCode());
  await security.getByTestId('mfa-error').getByText('400: The code is incorrect or has already been used.').waitFor({ timeout: 10000 });
  await typeCode(security, () => app.code());
  const shown = page.getByTestId('recovery-codes');
  await shown.waitFor({ timeout: 10000 });
  const codes = (await shown.locator('li code').allInnerTexts()).map((c) => c.trim());
  assert.equal(codes.length, 10);
  for (const c of codes) assert.match(c, /^[a-z2-7]{5}(-[a-z2-7]{5}){3}$/);
  await shown.getByTestId('recovery-codes-done').click();
  assert.equal(await page.getByTestId('recovery-codes').count(), 0, 'shown once');
  await security.getByTestId('mfa-on').getByText('10 recovery codes left').waitFor({ timeout: 10000 });
  return { app, codes };
}

test('office (session mode): enrol TOTP, then the login asks for a code; no session cookie before it passes; a recovery code works once', async () => {
  const server = await demoServer();
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(server.base + '/security');
  await passwordStep(page, 'security');
  const { app, codes } = await enrolOnSecurityScreen(page);

  await page.getByRole('navigation').getByRole('link', { name: 'Office (session)' }).click();
  await page.getByTestId('office-user').getByText('demo').waitFor({ timeout: 10000 });
  await page.getByTestId('office').getByRole('button', { name: 'Log out' }).click();
  await page.getByTestId('office').getByTestId('login-form').waitFor({ timeout: 10000 });
  assert.equal(await sessionCookie(context), undefined, 'logged out');

  // Password → the code step, and nothing issued yet.
  const loginAnswer = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/auth/login/', { timeout: 10000 });
  await passwordStep(page, 'office');
  const step = page.getByTestId('office').getByTestId('mfa-step');
  await step.waitFor({ timeout: 10000 });
  const first = await loginAnswer;
  assert.equal(first.status(), 401);
  assert.equal((await first.json()).code, 'mfa_required');
  assert.equal(first.headers()['set-cookie'], undefined, 'the first step sets no cookie');
  assert.equal(await sessionCookie(context), undefined, 'no session cookie after the password alone');
  assert.deepEqual(await cookieNames(context), ['csrftoken']);
  assert.equal(await page.getByTestId('office-user').count(), 0);

  // A wrong code: an error, still no session.
  await typeCode(step, app.wrongCode());
  await page.getByTestId('office').getByTestId('login-error').getByText('401: The code is incorrect or has already been used.').waitFor({ timeout: 10000 });
  assert.equal(await sessionCookie(context), undefined, 'no session cookie after a wrong code');
  assert.equal(await page.evaluate(() => fetch('/api/auth/me/').then((r) => r.status)), 401, 'the server sees no session either');

  // The right code (computed now): logged in, with the HttpOnly session cookie.
  await typeCode(step, () => app.code());
  await page.getByTestId('office-user').getByText('demo').waitFor({ timeout: 10000 });
  const sid = await sessionCookie(context);
  assert.ok(sid?.httpOnly, 'the session cookie exists now, HttpOnly');
  assert.ok(!(await page.evaluate(() => document.cookie)).includes('sessionid'));
  // The session works for CSRF-protected calls (the rotated token is used).
  await page.locator('input[name=first_name]').fill('Tomo');
  await page.getByRole('button', { name: /Save/ }).click();
  await page.getByTestId('office-message').getByText('Saved: first name is now "Tomo"').waitFor({ timeout: 10000 });
  assert.match(await page.getByTestId('who').innerText(), /office: demo/);

  // A recovery code instead of the app: works once.
  await page.getByTestId('office').getByRole('button', { name: 'Log out' }).click();
  await passwordStep(page, 'office');
  await typeCode(page.getByTestId('office').getByTestId('mfa-step'), codes[0].toUpperCase(), { recovery: true });
  await page.getByTestId('office-user').getByText('demo').waitFor({ timeout: 10000 });
  await page.getByTestId('office').getByRole('button', { name: 'Log out' }).click();
  await passwordStep(page, 'office');
  const again = page.getByTestId('office').getByTestId('mfa-step');
  await typeCode(again, codes[0], { recovery: true });
  await page.getByTestId('office').getByTestId('login-error').getByText('401: The code is incorrect or has already been used.').waitFor({ timeout: 10000 });
  assert.equal(await sessionCookie(context), undefined, 'a used recovery code logs nobody in');
  await typeCode(again, codes[1], { recovery: true });
  await page.getByTestId('office-user').getByText('demo').waitFor({ timeout: 10000 });
  assert.ok(await sessionCookie(context));
  assert.deepEqual(errors, []);
  await context.close();
});

test('shop (JWT mode): enrol, the login asks for a code with no token anywhere before it; recovery code once; new codes; turn it off', async () => {
  const server = await demoServer();
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(server.base + '/security?via=shop');
  await passwordStep(page, 'security');
  const { app, codes } = await enrolOnSecurityScreen(page);

  await page.getByRole('navigation').getByRole('link', { name: 'Shop (JWT)' }).click();
  await page.getByTestId('shop-user').getByText('demo').waitFor({ timeout: 10000 });
  await page.getByTestId('shop').getByRole('button', { name: 'Log out' }).click();
  await page.getByTestId('shop').getByTestId('login-form').waitFor({ timeout: 10000 });

  const stored = () => page.evaluate(() => ({ session: Object.keys(sessionStorage), local: Object.keys(localStorage) }));
  const bearer = [];
  page.on('request', (r) => { if (r.headers().authorization) bearer.push(new URL(r.url()).pathname); });
  const tokenAnswer = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/token/', { timeout: 10000 });
  await passwordStep(page, 'shop');
  const answer = await tokenAnswer;
  assert.equal(answer.status(), 401);
  const body = await answer.json();
  assert.equal(body.code, 'mfa_required');
  assert.equal(body.access, undefined);
  assert.equal(body.refresh, undefined);
  const step = page.getByTestId('shop').getByTestId('mfa-step');
  await step.waitFor({ timeout: 10000 });
  assert.deepEqual(await stored(), { session: [], local: [] }, 'no token stored after the password alone');
  assert.deepEqual(await cookieNames(context), ['csrftoken']);

  await typeCode(step, app.wrongCode());
  await page.getByTestId('shop').getByTestId('login-error').getByText('401: The code is incorrect or has already been used.').waitFor({ timeout: 10000 });
  assert.deepEqual(await stored(), { session: [], local: [] }, 'no token stored after a wrong code');
  assert.deepEqual(bearer, [], 'no request carried a token before the factor passed');

  await typeCode(step, () => app.code());
  await page.getByTestId('shop-user').getByText('demo').waitFor({ timeout: 10000 });
  assert.deepEqual((await stored()).session, ['shop.refresh'], 'the refresh token where a plain login keeps it');
  const order = page.waitForRequest((r) => new URL(r.url()).pathname === '/api/orders/' && r.method() === 'POST', { timeout: 10000 });
  await page.getByTestId('products').getByRole('button', { name: 'Buy' }).first().click();
  assert.match((await order).headers().authorization ?? '', /^Bearer /);
  await page.getByTestId('shop-message').getByText(/^Order #\d+/).waitFor({ timeout: 10000 });

  // A recovery code works once.
  await page.getByTestId('shop').getByRole('button', { name: 'Log out' }).click();
  await passwordStep(page, 'shop');
  await typeCode(page.getByTestId('shop').getByTestId('mfa-step'), codes[2], { recovery: true });
  await page.getByTestId('shop-user').getByText('demo').waitFor({ timeout: 10000 });
  await page.getByTestId('shop').getByRole('button', { name: 'Log out' }).click();
  await passwordStep(page, 'shop');
  await typeCode(page.getByTestId('shop').getByTestId('mfa-step'), codes[2], { recovery: true });
  await page.getByTestId('shop').getByTestId('login-error').getByText('401: The code is incorrect or has already been used.').waitFor({ timeout: 10000 });
  assert.deepEqual(await stored(), { session: [], local: [] });
  await typeCode(page.getByTestId('shop').getByTestId('mfa-step'), codes[3], { recovery: true });
  await page.getByTestId('shop-user').getByText('demo').waitFor({ timeout: 10000 });

  // New recovery codes (confirmed with one of the old): the old ones stop working.
  await page.getByRole('navigation').getByRole('link', { name: 'Security (2FA)' }).click();
  await page.getByRole('link', { name: 'the shop login (JWT)' }).click();
  const security = page.getByTestId('security');
  await security.getByTestId('mfa-on').getByText('8 recovery codes left').waitFor({ timeout: 10000 });
  await typeCode(security, codes[4], { recovery: true });
  const shown = page.getByTestId('recovery-codes');
  await shown.waitFor({ timeout: 10000 });
  const fresh = (await shown.locator('li code').allInnerTexts()).map((c) => c.trim());
  assert.equal(fresh.length, 10);
  assert.ok(!fresh.includes(codes[5]));
  await shown.getByTestId('recovery-codes-done').click();
  await security.getByTestId('mfa-on').getByText('10 recovery codes left').waitFor({ timeout: 10000 });
  // Turning it off with an old code is refused (a field error); with a new one it works.
  await security.getByTestId('choose-disable').check();
  await typeCode(security, codes[5], { recovery: true });
  await security.getByTestId('mfa-error').getByText('400: The code is incorrect or has already been used.').waitFor({ timeout: 10000 });
  await typeCode(security, fresh[0], { recovery: true });
  await security.getByTestId('mfa-off').waitFor({ timeout: 10000 });

  // Off: the password alone logs in again.
  await page.getByRole('navigation').getByRole('link', { name: 'Shop (JWT)' }).click();
  await page.getByTestId('shop').getByRole('button', { name: 'Log out' }).click();
  await passwordStep(page, 'shop');
  await page.getByTestId('shop-user').getByText('demo').waitFor({ timeout: 10000 });
  assert.deepEqual(errors, []);
  await context.close();
});

test('staff who must enrol (mfa.required_for_staff) set TOTP up inside the login, in both modes', async () => {
  const server = await demoServer({ SEKISHO_MFA__REQUIRED_FOR_STAFF: 'true' });
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));

  // Office: admin (staff) gets the set-up instead of a session.
  await page.goto(server.base + '/office');
  await passwordStep(page, 'office', 'admin', 'admin-password');
  const enrol = page.getByTestId('office').getByTestId('mfa-enrol-step');
  const qr = enrol.getByTestId('totp-qr');
  await qr.waitFor({ timeout: 10000 });
  await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await qr.elementHandle(), { timeout: 5000 });
  const app = new Authenticator((await enrol.getByTestId('totp-secret').innerText()).trim());
  assert.equal(await sessionCookie(context), undefined, 'no session before the enrolment is confirmed');
  await typeCode(enrol, app.wrongCode());
  await page.getByTestId('office').getByTestId('login-error').getByText('401: The code is incorrect or has already been used.').waitFor({ timeout: 10000 });
  assert.equal(await sessionCookie(context), undefined);
  await typeCode(enrol, () => app.code());
  await page.getByTestId('office-user').getByText('admin').waitFor({ timeout: 10000 });
  assert.ok((await sessionCookie(context))?.httpOnly);
  // The recovery codes of the enrolment, shown once by the app shell after the login.
  const shown = page.getByTestId('recovery-codes');
  await shown.waitFor({ timeout: 10000 });
  assert.equal(await shown.locator('li code').count(), 10);
  await shown.getByTestId('recovery-codes-done').click();

  // Shop: the same user now has a factor, so the token login asks for a code.
  await page.getByRole('navigation').getByRole('link', { name: 'Shop (JWT)' }).click();
  await passwordStep(page, 'shop', 'admin', 'admin-password');
  const step = page.getByTestId('shop').getByTestId('mfa-step');
  await step.waitFor({ timeout: 10000 });
  assert.deepEqual(await page.evaluate(() => Object.keys(sessionStorage)), []);
  await typeCode(step, () => app.code());
  await page.getByTestId('shop-user').getByText('admin').waitFor({ timeout: 10000 });
  assert.deepEqual(await page.evaluate(() => Object.keys(sessionStorage)), ['shop.refresh']);

  // Shop: another staff member enrols inside the token login; no token before it is confirmed.
  server.cli(['user', 'create', 'boss', '--staff', '--password-stdin'], 'boss-password-1\n');
  await page.getByTestId('shop').getByRole('button', { name: 'Log out' }).click();
  await passwordStep(page, 'shop', 'boss', 'boss-password-1');
  const shopEnrol = page.getByTestId('shop').getByTestId('mfa-enrol-step');
  await shopEnrol.getByTestId('totp-qr').waitFor({ timeout: 10000 });
  const bossApp = new Authenticator((await shopEnrol.getByTestId('totp-secret').innerText()).trim());
  assert.deepEqual(await page.evaluate(() => Object.keys(sessionStorage)), []);
  await typeCode(shopEnrol, () => bossApp.code());
  await page.getByTestId('shop-user').getByText('boss').waitFor({ timeout: 10000 });
  assert.deepEqual(await page.evaluate(() => Object.keys(sessionStorage)), ['shop.refresh']);
  const bossCodes = page.getByTestId('recovery-codes');
  await bossCodes.getByText('Recovery codes for boss').waitFor({ timeout: 10000 });
  assert.equal(await bossCodes.locator('li code').count(), 10);

  // A non-staff user is not asked for anything.
  const other = await browser.newContext();
  const p2 = await other.newPage();
  await p2.goto(server.base + '/shop');
  await passwordStep(p2, 'shop');
  await p2.getByTestId('shop-user').getByText('demo').waitFor({ timeout: 10000 });
  await other.close();
  assert.deepEqual(errors, []);
  await context.close();
});

test('the client in refresh-cookie mode (jwt.refresh_cookie): the second step sets the HttpOnly cookie only then; a reload restores the login', async () => {
  const server = await startServer({ ...clientSite(), env: { SEKISHO_JWT__REFRESH_COOKIE: 'true' } });
  servers.push(server);
  server.createUser('carol', 'browser-pass-2');
  const OPTIONS = { mode: 'jwt', refreshCookie: true };
  const context = await browser.newContext();
  const page = await openClientPage(context, server.base);
  const refreshCookie = async () => (await context.cookies()).find((c) => c.httpOnly && c.path.startsWith('/api/token'));

  // Enrol through client.mfa, the code computed here from the secret the page got.
  await page.evaluate((o) => window.within(10000, window.make(o).login('carol', 'browser-pass-2')), OPTIONS);
  const { secret, qrImageUrl } = await page.evaluate(() => window.within(10000, window.client.mfa.beginTotp()));
  assert.ok(qrImageUrl.startsWith('data:image/svg+xml;charset=utf-8,%3C'), 'the QR code as an image URL');
  assert.ok(decodeURIComponent(qrImageUrl.slice(qrImageUrl.indexOf(',') + 1)).includes('<svg'), 'holding the SVG');
  const app = new Authenticator(secret);
  const wrong = await page.evaluate((c) => window.client.mfa.confirmTotp(c).then(() => null, (e) => ({ name: e.name, code: e.code, status: e.status, fields: e.fields })), app.wrongCode());
  assert.deepEqual(wrong, { name: 'ApiError', code: 'invalid_input', status: 400, fields: { code: ['The code is incorrect or has already been used.'] } });
  const codes = await page.evaluate((c) => window.client.mfa.confirmTotp(c), await app.code());
  assert.equal(codes.length, 10);
  await page.evaluate(() => window.client.logout());
  await context.clearCookies(); // so that any refresh cookie found below was set by the login

  // Password: MfaRequiredError, no refresh cookie, no access token in the client.
  const refused = await page.evaluate((o) => {
    const client = window.make(o);
    return client.login('carol', 'browser-pass-2').then(() => null, (e) => {
      window.challenge = e.challenge;
      return { name: e.name, code: e.code, purpose: e.challenge?.purpose, methods: e.challenge?.methods };
    });
  }, OPTIONS);
  assert.deepEqual(refused, { name: 'MfaRequiredError', code: 'mfa_required', purpose: 'verify', methods: ['totp', 'recovery'] });
  assert.equal(await refreshCookie(), undefined);
  assert.equal(await page.evaluate(() => window.client.getAccessToken()), null);
  assert.equal(await page.evaluate(() => window.client.isAuthenticated), false);

  const stepAnswer = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/token/mfa/', { timeout: 10000 });
  const done = await page.evaluate((c) => window.within(10000, window.client.completeLogin(window.challenge, { code: c })).then((r) => ({ user: r.user.username, recoveryCodes: r.recoveryCodes })), await app.code());
  assert.deepEqual(done, { user: 'carol', recoveryCodes: null });
  const body = await (await stepAnswer).json();
  assert.ok(body.access);
  assert.equal(body.refresh, undefined, 'the refresh token is not in the body');
  const cookie = await refreshCookie();
  assert.ok(cookie, 'the HttpOnly refresh cookie is set by the second step');
  assert.equal(cookie.sameSite, 'Strict');
  assert.ok(!(await page.evaluate(() => document.cookie)).includes(cookie.name));
  assert.equal(await page.evaluate(() => window.client.fetch('/api/auth/me/').then((r) => r.status)), 200);

  await page.reload();
  await page.waitForFunction(() => typeof window.make === 'function', null, { timeout: 15000 });
  const restored = await page.evaluate(async (o) => (await window.within(10000, window.make(o).restore()))?.username, OPTIONS);
  assert.equal(restored, 'carol', 'the cookie from the second step restores the login');
  await context.close();
});
