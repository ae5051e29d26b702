// The Vue 3 plugin and composable: reactive state that follows the client.
import { createApp, nextTick } from 'vue';
import { expect, test } from 'vitest';
import { MfaRequiredError } from '../src/index.js';
import { createAuthPlugin, useAuth } from '../src/vue.js';
import { FakeServer, jwtClient } from './helpers.js';

test('useAuth() follows login, refresh failure and logout', async () => {
  const server = new FakeServer();
  const client = jwtClient(server, { proactiveRefresh: false });
  const app = createApp({ render: () => null });
  app.use(createAuthPlugin(client, { restore: false }));
  const auth = app.runWithContext(() => useAuth());
  expect(auth.status.value).toBe('unknown');
  expect(auth.isAuthenticated.value).toBe(false);
  await auth.login('ann', 'pw');
  await nextTick();
  expect(auth.user.value?.username).toBe('ann');
  expect(auth.isAuthenticated.value).toBe(true);
  server.expireAccessTokens();
  server.refreshBehaviour = 'reject';
  await expect(auth.fetch('/api/data')).rejects.toMatchObject({ code: 'session_expired' });
  expect(auth.status.value).toBe('anonymous');
  expect(auth.user.value).toBeNull();
  expect(useAuth(client)).toBe(auth);
});

test('the plugin restores the login on install', async () => {
  const server = new FakeServer();
  const app = createApp({ render: () => null });
  const client = jwtClient(server);
  app.use(createAuthPlugin(client));
  const auth = app.runWithContext(() => useAuth());
  await new Promise((r) => setTimeout(r, 0));
  expect(auth.status.value).toBe('anonymous');
  expect(() => useAuth()).toThrow(/createAuthPlugin/);
});

test('useAuth(): login raises MfaRequiredError, completeLogin makes the state authenticated', async () => {
  const server = new FakeServer();
  server.mfa.confirmed = true;
  const client = jwtClient(server, { proactiveRefresh: false });
  const app = createApp({ render: () => null });
  app.use(createAuthPlugin(client, { restore: false }));
  const auth = app.runWithContext(() => useAuth());
  const e = await auth.login('ann', 'pw').catch((x: unknown) => x);
  expect(e).toBeInstanceOf(MfaRequiredError);
  await nextTick();
  expect(auth.isAuthenticated.value).toBe(false);
  const { user } = await auth.completeLogin((e as MfaRequiredError).challenge, { code: server.mfa.nextCode() });
  await nextTick();
  expect(user.username).toBe('ann');
  expect(auth.isAuthenticated.value).toBe(true);
  expect(auth.mfa).toBe(client.mfa);
  expect((await auth.mfa.status()).totp).toBe(true);
});
