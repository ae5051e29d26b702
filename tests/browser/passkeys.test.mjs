// Passkeys in a real Chromium with its virtual authenticator (DevTools protocol), against a real
// sekisho: registration, the passwordless login in both modes, the passkey as a second factor,
// a key that only proves presence counting as one factor, an assertion made on another origin
// refused, and a cloned key (its signature counter behind) refused.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { startServer, launchBrowser, postJson } from './harness.mjs';
import { clientSite, openClientPage } from './client_page.mjs';

const UV = { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true };
const PRESENCE_ONLY = { ...UV, hasUserVerification: false, isUserVerified: false };

/** A free loopback port: the configured origin has to name it before the server starts. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
}

let server; // passkeys on, for http://localhost:PORT
let other; // serves the same page on another origin (another port)
let browser;
let base; // http://localhost:PORT (an IP address cannot be an RP id)
let otherBase;

before(async () => {
  const port = await freePort();
  base = `http://localhost:${port}`;
  server = await startServer({
    ...clientSite(),
    env: {
      SEKISHO_SERVER__BIND: `127.0.0.1:${port}`,
      SEKISHO_WEBAUTHN__RP_ID: 'localhost',
      SEKISHO_WEBAUTHN__RP_NAME: 'sekisho browser tests',
      SEKISHO_WEBAUTHN__ORIGINS: base,
    },
  });
  for (const u of ['alice', 'bob', 'carol', 'dave']) server.createUser(u, 'browser-pass-1');
  other = await startServer(clientSite());
  otherBase = other.base.replace('127.0.0.1', 'localhost');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await other?.stop();
});

/** A page of `origin` with a virtual authenticator of `options`, and page-side helpers. */
async function pageWithAuthenticator(context, origin, options) {
  const page = await openClientPage(context, origin);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', { options });
  await page.evaluate(() => {
    const csrf = () => document.cookie.split('; ').find((c) => c.startsWith('csrftoken='))?.slice('csrftoken='.length);
    /** POST JSON with the CSRF header; resolves to the body of a 2xx, else rejects with status and body. */
    window.post = async (path, body, bearer) => {
      if (!csrf()) await fetch('/api/auth/csrf/', { credentials: 'same-origin' });
      const headers = { 'Content-Type': 'application/json', 'X-CSRFToken': csrf() ?? '' };
      if (bearer) headers.Authorization = `Bearer ${bearer}`;
      const r = await fetch(path, { method: 'POST', credentials: 'same-origin', headers, body: JSON.stringify(body) });
      const json = await r.json();
      if (!r.ok) throw Object.assign(new Error(`${path}: ${r.status} ${JSON.stringify(json)}`), { status: r.status, body: json });
      return json;
    };
    /** Runs `f`, answering `{ok, value}` or `{ok: false, status, body}`. */
    window.attempt = async (f) => {
      try {
        return { ok: true, value: await f() };
      } catch (e) {
        return { ok: false, status: e.status ?? null, body: e.body ?? String(e) };
      }
    };
    window.cookieNames = () => document.cookie.split('; ').filter(Boolean).map((c) => c.split('=')[0]);
  });
  return { page, cdp, authenticatorId };
}

/** Logs in by password (session mode) and registers a key named `name`. */
async function registerWithPassword(page, user, name) {
  return page.evaluate(async ({ user, name }) => {
    await window.post('/api/auth/login/', { username: user, password: 'browser-pass-1' });
    const reg = await window.sekisho.registerPasskey(window.post, name);
    const list = await (await fetch('/api/auth/mfa/passkeys/', { credentials: 'same-origin' })).json();
    await window.post('/api/auth/logout/', {});
    return { reg, list };
  }, { user, name });
}

test('register a passkey, then sign in without a password in session and token mode', async () => {
  const context = await browser.newContext();
  const { page } = await pageWithAuthenticator(context, base, UV);
  // A login elsewhere, from before the key: a factor change ends it.
  const elsewhere = await postJson(base, '/api/token/', { username: 'alice', password: 'browser-pass-1' });
  assert.equal(elsewhere.status, 200);
  const { reg, list } = await registerWithPassword(page, 'alice', 'laptop');
  assert.equal(reg.passkey.name, 'laptop');
  const ended = await postJson(base, '/api/token/refresh/', { refresh: elsewhere.body.refresh });
  assert.equal(ended.status, 401, JSON.stringify(ended.body));
  assert.equal(reg.passkey.user_verified, true);
  assert.deepEqual(list.passkeys.map((k) => k.name), ['laptop']);

  // The begin for a user with a key and for an unknown name: the same shape, one key each.
  const real = await postJson(base, '/api/token/passkey/begin/', { username: 'alice' });
  const decoy = await postJson(base, '/api/token/passkey/begin/', { username: 'nobody-here' });
  assert.equal(real.status, 200);
  assert.equal(decoy.status, 200);
  assert.deepEqual(Object.keys(decoy.body.options.publicKey).sort(), Object.keys(real.body.options.publicKey).sort());
  assert.deepEqual(Object.keys(decoy.body.options).sort(), Object.keys(real.body.options).sort());
  assert.equal(real.body.options.publicKey.allowCredentials.length, 1);
  assert.equal(decoy.body.options.publicKey.allowCredentials.length, 1);
  assert.equal(decoy.body.options.publicKey.timeout, real.body.options.publicKey.timeout);

  await context.clearCookies();
  const session = await page.evaluate(async () => {
    const before = window.cookieNames();
    const r = await window.sekisho.signInWithPasskey(window.post, 'alice', 'session');
    const me = await (await fetch('/api/auth/me/', { credentials: 'same-origin' })).json();
    return { before, user: r.user.username, me: me.username };
  });
  assert.ok(!session.before.includes('sessionid'));
  assert.equal(session.user, 'alice');
  assert.equal(session.me, 'alice');
  const cookies = await context.cookies(base);
  assert.ok(cookies.some((c) => c.name === 'sessionid' && c.httpOnly), JSON.stringify(cookies));

  await context.clearCookies();
  const token = await page.evaluate(async () => {
    const r = await window.sekisho.signInWithPasskey(window.post, 'alice', 'token');
    const me = await (await fetch('/api/auth/me/', { headers: { Authorization: `Bearer ${r.access}` } })).json();
    return { ...r, me: me.username, cookies: window.cookieNames() };
  });
  assert.equal(token.me, 'alice');
  assert.ok(token.refresh, 'the pair, as POST /api/token/ answers it');
  assert.deepEqual(claims(token.access).amr, ['hwk', 'user', 'mfa']);
  assert.deepEqual(claims(token.refresh).amr, ['hwk', 'user', 'mfa']);
  assert.ok(!token.cookies.includes('sessionid'));
  await context.close();
});

test('a password login of a user with a passkey needs it as the second factor', async () => {
  const context = await browser.newContext();
  const { page } = await pageWithAuthenticator(context, base, UV);
  await registerWithPassword(page, 'carol', 'phone');
  await context.clearCookies();
  const r = await page.evaluate(async () => {
    const first = await window.attempt(() => window.post('/api/auth/login/', { username: 'carol', password: 'browser-pass-1' }));
    const cookiesAfterFirst = window.cookieNames();
    const done = await window.sekisho.answerChallengeWithPasskey(window.post, first.body.challenge, 'session');
    const me = await (await fetch('/api/auth/me/', { credentials: 'same-origin' })).json();
    const tfirst = await window.attempt(() => window.post('/api/token/', { username: 'carol', password: 'browser-pass-1' }));
    const pair = await window.sekisho.answerChallengeWithPasskey(window.post, tfirst.body.challenge, 'token');
    return { first, cookiesAfterFirst, done, me: me.username, tfirst, pair };
  });
  assert.equal(r.first.status, 401);
  assert.equal(r.first.body.code, 'mfa_required');
  assert.deepEqual(r.first.body.methods, ['passkey']);
  assert.ok(!r.cookiesAfterFirst.includes('sessionid'));
  assert.equal(r.done.user.username, 'carol');
  assert.equal(r.me, 'carol');
  assert.equal(r.tfirst.status, 401);
  assert.deepEqual(claims(r.pair.access).amr, ['pwd', 'hwk']);
  await context.close();
});

test('an assertion made on another origin is refused', async () => {
  const context = await browser.newContext();
  const { page, cdp, authenticatorId } = await pageWithAuthenticator(context, base, UV);
  await registerWithPassword(page, 'dave', 'laptop');
  // The same key in a tab of another origin (another port of the same host, so the RP id
  // `localhost` is valid there and the browser signs): only the server's origin check stops it.
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.ok(credentials.length >= 1);
  const foreign = await pageWithAuthenticator(context, otherBase, UV);
  for (const credential of credentials) {
    await foreign.cdp.send('WebAuthn.addCredential', { authenticatorId: foreign.authenticatorId, credential });
  }
  const begun = await postJson(base, '/api/token/passkey/begin/', { username: 'dave' });
  assert.equal(begun.status, 200);
  const answer = await foreign.page.evaluate(async (options) => {
    const cred = await navigator.credentials.get(window.sekisho.requestOptions(options));
    return { credential: window.sekisho.credentialJson(cred), origin: location.origin };
  }, begun.body.options);
  assert.equal(answer.origin, otherBase);
  const refused = await postJson(base, '/api/token/passkey/', { ceremony: begun.body.ceremony, credential: answer.credential });
  assert.equal(refused.status, 401, JSON.stringify(refused.body));
  assert.equal(refused.body.code, 'passkey_refused');
  assert.ok(!('access' in refused.body) && !('refresh' in refused.body));

  // The control: the same key on the server's own origin logs in.
  const begunHere = await postJson(base, '/api/token/passkey/begin/', { username: 'dave' });
  const answerHere = await page.evaluate(async (options) => {
    const cred = await navigator.credentials.get(window.sekisho.requestOptions(options));
    return window.sekisho.credentialJson(cred);
  }, begunHere.body.options);
  const ok = await postJson(base, '/api/token/passkey/', { ceremony: begunHere.body.ceremony, credential: answerHere });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.deepEqual(claims(ok.body.access).amr, ['hwk', 'user', 'mfa']);

  // A clone of the key, copied before that use: its signature counter did not move past the
  // stored one, so the server refuses it (clone detection), on the right origin too.
  const clone = await pageWithAuthenticator(context, base, UV);
  for (const credential of credentials) {
    await clone.cdp.send('WebAuthn.addCredential', { authenticatorId: clone.authenticatorId, credential });
  }
  const begunClone = await postJson(base, '/api/token/passkey/begin/', { username: 'dave' });
  const answerClone = await clone.page.evaluate(async (options) => {
    const cred = await navigator.credentials.get(window.sekisho.requestOptions(options));
    return window.sekisho.credentialJson(cred);
  }, begunClone.body.options);
  const cloned = await postJson(base, '/api/token/passkey/', { ceremony: begunClone.body.ceremony, credential: answerClone });
  assert.equal(cloned.status, 401, JSON.stringify(cloned.body));
  assert.equal(cloned.body.code, 'passkey_refused');
  await context.close();
});

test('a key without user verification is one factor: a second factor, never a login alone', async () => {
  const context = await browser.newContext();
  const { page } = await pageWithAuthenticator(context, base, PRESENCE_ONLY);
  const { reg } = await registerWithPassword(page, 'bob', 'usb key');
  assert.equal(reg.passkey.user_verified, false);
  await context.clearCookies();
  const r = await page.evaluate(async () => {
    const alone = await window.attempt(() => window.sekisho.signInWithPasskey(window.post, 'bob', 'token'));
    const aloneSession = await window.attempt(() => window.sekisho.signInWithPasskey(window.post, 'bob', 'session'));
    const cookies = window.cookieNames();
    const first = await window.attempt(() => window.post('/api/token/', { username: 'bob', password: 'browser-pass-1' }));
    const pair = await window.sekisho.answerChallengeWithPasskey(window.post, first.body.challenge, 'token');
    return { alone, aloneSession, cookies, first, pair };
  });
  assert.equal(r.alone.ok, false);
  assert.equal(r.alone.status, 401);
  assert.equal(r.alone.body.code, 'passkey_user_verification_required');
  assert.equal(r.aloneSession.status, 401);
  assert.ok(!r.cookies.includes('sessionid'));
  assert.equal(r.first.body.code, 'mfa_required');
  assert.deepEqual(claims(r.pair.access).amr, ['pwd', 'hwk']);
  await context.close();
});
