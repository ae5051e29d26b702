// Shared helpers for the browser tests: a real sekisho process on a free loopback port and a
// headless Debian Chromium driven by playwright-core.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const BIN = process.env.SEKISHO_BIN;
if (!BIN) throw new Error('SEKISHO_BIN must point at the sekisho binary (scripts/test.sh sets it)');
/** The example app embedding sekisho (serves the Vue demo); next to the sekisho binary by default. */
export const EMBED_BIN = process.env.EMBED_AXUM_BIN || join(dirname(BIN), 'embed-axum');

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The built browser client (`npm run build` in clients/js). */
export const CLIENT_DIST = join(ROOT, 'clients', 'js', 'dist');
/** The built Vue demo (`npm run build` in examples/vue-spa). */
export const DEMO_DIST = join(ROOT, 'examples', 'vue-spa', 'dist');

export function requireBuilt(dir, how) {
  if (!existsSync(join(dir, dir === CLIENT_DIST ? 'index.js' : 'index.html'))) {
    throw new Error(`${dir} is missing: ${how}`);
  }
  return dir;
}

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/**
 * Starts sekisho (or `bin`, another program honouring the same configuration, such as the
 * embed-axum example) with `env` overrides and, optionally, a static dir made from `files`
 * (name → content) and `dirs` (name → a directory copied there), or `staticDir` as it is.
 */
export async function startServer({ env = {}, files = null, dirs = null, staticDir = null, bin = BIN, args = ['serve'] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'sekisho-browser-'));
  const baseEnv = {
    SEKISHO_SERVER__BIND: '127.0.0.1:0',
    SEKISHO_SERVER__DATA_DIR: join(dir, 'data'),
    SEKISHO_DATABASE__URL: `sqlite://${join(dir, 'data', 'sekisho.db')}`,
    SEKISHO_PASSWORDS__ARGON2_MEMORY_KIB: '256',
    SEKISHO_PASSWORDS__ARGON2_ITERATIONS: '1',
    SEKISHO_LOG: 'warn',
  };
  if (files || dirs) {
    const web = join(dir, 'web');
    mkdirSync(web, { recursive: true });
    for (const [name, content] of Object.entries(files ?? {})) {
      const path = join(web, name);
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, content);
    }
    for (const [name, source] of Object.entries(dirs ?? {})) cpSync(source, join(web, name), { recursive: true });
    baseEnv.SEKISHO_SERVER__STATIC_DIR = web;
  } else if (staticDir) {
    baseEnv.SEKISHO_SERVER__STATIC_DIR = staticDir;
  }
  const fullEnv = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SEKISHO_'))), ...baseEnv, ...env };
  const cli = (args, input = '') => {
    const r = spawnSync(BIN, args, { env: fullEnv, cwd: dir, input, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`sekisho ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  };
  const child = spawn(bin, args, { env: fullEnv, cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${bin} did not start in 30s`)), 30000);
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(/listening on (http\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => reject(new Error(`${bin} exited early (${code})`)));
  });
  return {
    base,
    cli,
    createUser: (name, password) => cli(['user', 'create', name, '--password-stdin'], `${password}\n`),
    async stop() {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Counts the requests a page or browser context makes to `path` (and remembers them). */
export function watchRequests(target, path) {
  const seen = [];
  target.on('request', (req) => {
    if (new URL(req.url()).pathname === path) seen.push(req);
  });
  return {
    get count() {
      return seen.length;
    },
    get requests() {
      return seen;
    },
    reset() {
      seen.length = 0;
    },
  };
}

/** Collects response statuses per path of a page or context. */
export function watchResponses(target) {
  const log = [];
  target.on('response', (res) => log.push({ path: new URL(res.url()).pathname, status: res.status(), method: res.request().method() }));
  return log;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A plain JSON POST from the test process (not the browser), e.g. to blacklist a token. */
export async function postJson(base, path, body) {
  const r = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}
