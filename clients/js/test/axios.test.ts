// The axios adapter against the same fake server: the triggering request is retried too, all
// waiters fail together, retries happen once, CSRF headers in session mode.
import axios, { AxiosError, type AxiosAdapter, type AxiosResponse } from 'axios';
import { expect, test, vi } from 'vitest';
import { SessionExpiredError } from '../src/index.js';
import { attachAxios } from '../src/axios.js';
import { FakeServer, ORIGIN, jwtClient, sessionClient, within } from './helpers.js';

function instanceFor(server: FakeServer) {
  const adapter: AxiosAdapter = async (config) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(config.headers.toJSON())) if (v != null) headers[k] = String(v);
    const res = await server.fetch(new URL(config.url ?? '', config.baseURL ?? ORIGIN).toString(), {
      method: (config.method ?? 'get').toUpperCase(),
      headers,
      body: config.data,
    });
    const data = await res.json();
    const response: AxiosResponse = { data, status: res.status, statusText: '', headers: {}, config, request: {} };
    if (config.validateStatus?.(res.status) ?? true) return response;
    throw new AxiosError(`Request failed with status code ${res.status}`, AxiosError.ERR_BAD_REQUEST, config, {}, response);
  };
  return axios.create({ baseURL: ORIGIN, adapter });
}

test('20 parallel 401s: one refresh, every request retried once and resolved', async () => {
  const server = new FakeServer();
  const client = jwtClient(server, { proactiveRefresh: false });
  const api = instanceFor(server);
  attachAxios(api, client);
  await client.login('ann', 'pw');
  server.expireAccessTokens();
  const results = await within(2000, Promise.all(Array.from({ length: 20 }, (_, i) => api.get(`/api/data/${i}`))));
  expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
  expect(server.count('/api/token/refresh/')).toBe(1);
  for (let i = 0; i < 20; i++) expect(server.count(`/api/data/${i}`)).toBe(2);
});

test('refresh refused: every request rejects with the same SessionExpiredError, logout fires once', async () => {
  const server = new FakeServer();
  const onLogout = vi.fn();
  const client = jwtClient(server, { proactiveRefresh: false, onLogout });
  const api = instanceFor(server);
  attachAxios(api, client);
  await client.login('ann', 'pw');
  server.expireAccessTokens();
  server.refreshBehaviour = 'reject';
  const results = await within(2000, Promise.allSettled(Array.from({ length: 20 }, (_, i) => api.get(`/api/data/${i}`))));
  const reasons = results.map((r) => (r as PromiseRejectedResult).reason);
  expect(reasons.every((e) => e instanceof SessionExpiredError)).toBe(true);
  expect(onLogout).toHaveBeenCalledTimes(1);
});

test('a request still 401 after the refresh is rejected with the AxiosError, not retried again', async () => {
  const server = new FakeServer();
  const client = jwtClient(server, { proactiveRefresh: false });
  const api = instanceFor(server);
  attachAxios(api, client);
  await client.login('ann', 'pw');
  server.rejectEverything = true;
  const err = await api.get('/api/data').catch((e: unknown) => e);
  expect(err).toBeInstanceOf(AxiosError);
  expect((err as AxiosError).response?.status).toBe(401);
  expect(server.count('/api/data')).toBe(2);
});

test('session mode: CSRF bootstrap and header on unsafe methods; detach removes the interceptors', async () => {
  const server = new FakeServer();
  const client = sessionClient(server);
  const api = instanceFor(server);
  const detach = attachAxios(api, client);
  await client.login('ann', 'pw');
  const r = await api.post('/api/items/', { name: 'x' });
  expect(r.status).toBe(200);
  expect(server.calls.at(-1)?.headers.get('x-csrftoken')).toBe(server.jar.get('csrftoken'));
  detach();
  const err = await api.post('/api/items/', {}).catch((e: AxiosError) => e);
  expect((err as AxiosError).response?.status).toBe(403);
});
