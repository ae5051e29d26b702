// Shared helpers for the browser tests: a real sekisho process on a free loopback port and a
// headless Debian Chromium driven by playwright-core.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const BIN = process.env.SEKISHO_BIN;
if (!BIN) throw new Error('SEKISHO_BIN must point at the sekisho binary (scripts/test.sh sets it)');

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** Starts sekisho with `env` overrides and, optionally, a static dir made from `files`. */
export async function startServer({ env = {}, files = null } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'sekisho-browser-'));
  const baseEnv = {
    SEKISHO_SERVER__BIND: '127.0.0.1:0',
    SEKISHO_SERVER__DATA_DIR: join(dir, 'data'),
    SEKISHO_DATABASE__URL: `sqlite://${join(dir, 'data', 'sekisho.db')}`,
    SEKISHO_PASSWORDS__ARGON2_MEMORY_KIB: '256',
    SEKISHO_PASSWORDS__ARGON2_ITERATIONS: '1',
    SEKISHO_LOG: 'warn',
  };
  if (files) {
    const web = join(dir, 'web');
    for (const [name, content] of Object.entries(files)) {
      const path = join(web, name);
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, content);
    }
    baseEnv.SEKISHO_SERVER__STATIC_DIR = web;
  }
  const fullEnv = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SEKISHO_'))), ...baseEnv, ...env };
  const cli = (args, input = '') => {
    const r = spawnSync(BIN, args, { env: fullEnv, cwd: dir, input, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`sekisho ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  };
  const child = spawn(BIN, ['serve'], { env: fullEnv, cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('sekisho did not start in 30s')), 30000);
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(/sekisho listening on (\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => reject(new Error(`sekisho exited early (${code})`)));
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
