// The page the client tests drive: sekisho serves it with the built @sekisho/client under
// /client/. It exposes the package as `window.sekisho` and `window.make(options)`, which creates
// a client and records its events in `window.events`.
import { CLIENT_DIST, requireBuilt } from './harness.mjs';

export const CLIENT_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>client test page</title></head>
<body><h1 id="status">loading</h1>
<script type="module">
  import * as sekisho from '/client/index.js';
  window.sekisho = sekisho;
  window.events = [];
  window.make = (options) => {
    const client = sekisho.createClient(options);
    for (const type of ['login', 'logout', 'refresh']) {
      client.on(type, (e) => window.events.push({ type, reason: e.reason ?? null, source: e.source ?? null, at: Date.now() }));
    }
    window.client = client;
    return client;
  };
  /** Settles within ms or rejects: no test waits forever inside the page either. */
  window.within = (ms, p) => Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error('timeout ' + ms)), ms))]);
  document.getElementById('status').textContent = 'ready';
</script></body></html>`;

export function clientSite() {
  return {
    files: { 'index.html': CLIENT_PAGE },
    dirs: { client: requireBuilt(CLIENT_DIST, 'run `npm ci && npm run build` in clients/js') },
  };
}

export async function openClientPage(context, base) {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e));
  await page.goto(base + '/');
  await page.waitForFunction(() => typeof window.make === 'function', null, { timeout: 15000 });
  return page;
}
