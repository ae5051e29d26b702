/**
 * Everything the client needs from the browser, behind small interfaces so the state machine
 * runs (and is tested) anywhere: fetch, clocks and timers, cookies, token storage, a cross-tab
 * lock, a cross-tab message channel and a cross-tab generation counter.
 */

export interface TokenStorage {
  get(key: string): string | null;
  set(key: string, value: string): void;
  remove(key: string): void;
}

/** A message channel shared by the tabs of one origin. */
export interface TabChannel {
  post(message: TabMessage): void;
  onMessage(listener: (message: TabMessage) => void): void;
  close(): void;
}

/**
 * A counter shared by every tab, read and written with strong consistency (IndexedDB): each
 * login, refresh and logout bumps it while holding the refresh lock, so a tab that gets the lock
 * knows for certain whether another tab changed the tokens since it decided to refresh.
 */
export interface GenerationStore {
  read(): Promise<number>;
  write(value: number): Promise<void>;
}

export type LockFn = <T>(name: string, timeoutMs: number, fn: () => Promise<T>) => Promise<T>;

export type TabMessage =
  | { type: 'tokens'; gen: number; access: string | null; refresh: string | null; user: unknown }
  | { type: 'logout'; gen: number; reason: string }
  | { type: 'session'; gen: number; user: unknown }
  | { type: 'sync-request'; from: string };

export interface Platform {
  fetch: typeof fetch;
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** The value of a cookie readable by JavaScript, or null. */
  readCookie(name: string): string | null;
  /** The page's origin (`location.origin`), or null outside a browser. */
  origin: string | null;
  lock: LockFn;
  channel(name: string): TabChannel | null;
  generation(name: string): GenerationStore;
}

type G = typeof globalThis & {
  document?: { cookie?: string };
  location?: { origin?: string };
  navigator?: { locks?: LockManagerLike };
  indexedDB?: IDBFactory;
  localStorage?: Storage;
  sessionStorage?: Storage;
  BroadcastChannel?: typeof BroadcastChannel;
  addEventListener?: (type: string, fn: (e: StorageEvent) => void) => void;
};

interface LockManagerLike {
  request<T>(name: string, options: { signal?: AbortSignal }, fn: () => Promise<T>): Promise<T>;
}

const g = globalThis as G;

export function readDocumentCookie(name: string): string | null {
  const all = g.document?.cookie;
  if (!all) return null;
  for (const part of all.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const v = part.slice(eq + 1).trim();
      try {
        return decodeURIComponent(v.replace(/^"|"$/g, ''));
      } catch {
        return v;
      }
    }
  }
  return null;
}

export function memoryStorage(): TokenStorage {
  const m = new Map<string, string>();
  return {
    get: (k) => m.get(k) ?? null,
    set: (k, v) => void m.set(k, v),
    remove: (k) => void m.delete(k),
  };
}

/** Wraps `localStorage`/`sessionStorage`; falls back to memory when it is unavailable. */
export function webStorage(kind: 'local' | 'session'): TokenStorage {
  let s: Storage | undefined;
  try {
    s = kind === 'local' ? g.localStorage : g.sessionStorage;
  } catch {
    s = undefined; // access can throw (disabled storage, sandboxed iframe)
  }
  if (!s) return memoryStorage();
  const store = s;
  return {
    get: (k) => store.getItem(k),
    set: (k, v) => store.setItem(k, v),
    remove: (k) => store.removeItem(k),
  };
}

// ---------------------------------------------------------------------------------------------
// Cross-tab lock: the Web Locks API, or a best-effort lease in localStorage where it is missing.

/** An in-tab mutex: calls run one after another in the order they asked. */
function localMutex() {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Where the Web Locks API is missing: a lease in localStorage (write, wait, re-read: the classic
 * "fast mutex" with expiry). It is best effort; if two tabs ever overlap, the server's grace
 * window still hands both the same successor token.
 */
function leaseLock(): LockFn {
  const mutex = localMutex();
  const me = Math.random().toString(36).slice(2);
  return (name, timeoutMs, fn) =>
    mutex(async () => {
      const storage = g.localStorage;
      if (!storage) return fn();
      const key = `${name}.lease`;
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const held = parseLease(storage.getItem(key));
        if (!held || held.until < Date.now() || held.owner === me) {
          storage.setItem(key, JSON.stringify({ owner: me, until: Date.now() + timeoutMs }));
          await sleep(25);
          if (parseLease(storage.getItem(key))?.owner === me) break;
        }
        if (Date.now() > deadline) break; // the holder vanished without releasing: go ahead
        await sleep(50 + Math.random() * 50);
      }
      try {
        return await fn();
      } finally {
        if (parseLease(storage.getItem(key))?.owner === me) storage.removeItem(key);
      }
    });
}

function parseLease(v: string | null): { owner: string; until: number } | null {
  if (!v) return null;
  try {
    const p = JSON.parse(v) as { owner?: unknown; until?: unknown };
    return typeof p.owner === 'string' && typeof p.until === 'number' ? { owner: p.owner, until: p.until } : null;
  } catch {
    return null;
  }
}

function webLocks(locks: LockManagerLike): LockFn {
  return (name, timeoutMs, fn) => {
    // Bound the wait: a tab that holds the lock and is frozen must not hang this one forever.
    const ctrl = typeof AbortController === 'function' ? new AbortController() : null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let acquired = false;
    if (ctrl) timer = setTimeout(() => { if (!acquired) ctrl.abort(); }, timeoutMs);
    return locks
      .request(name, ctrl ? { signal: ctrl.signal } : {}, async () => {
        acquired = true;
        clearTimeout(timer);
        return fn();
      })
      .catch((e: unknown) => {
        if (!acquired && (e as { name?: string })?.name === 'AbortError') return fn();
        throw e;
      });
  };
}

// ---------------------------------------------------------------------------------------------
// Cross-tab messages: BroadcastChannel, or `storage` events where it is missing.

function broadcastChannel(name: string): TabChannel | null {
  const BC = g.BroadcastChannel;
  if (typeof BC === 'function') {
    const ch = new BC(name);
    return {
      post: (m) => ch.postMessage(m),
      onMessage: (fn) => ch.addEventListener('message', (e: MessageEvent) => fn(e.data as TabMessage)),
      close: () => ch.close(),
    };
  }
  const storage = g.localStorage;
  if (!storage || typeof g.addEventListener !== 'function') return null;
  // Fallback: a message is a write (then removal) of one key; other tabs get a `storage` event.
  const key = `${name}.message`;
  const listeners: ((m: TabMessage) => void)[] = [];
  g.addEventListener('storage', (e: StorageEvent) => {
    if (e.key !== key || !e.newValue) return;
    try {
      const m = JSON.parse(e.newValue) as { m: TabMessage };
      for (const l of listeners) l(m.m);
    } catch {
      /* not ours */
    }
  });
  return {
    post: (m) => {
      storage.setItem(key, JSON.stringify({ m, nonce: Math.random() }));
      storage.removeItem(key);
    },
    onMessage: (fn) => void listeners.push(fn),
    close: () => void (listeners.length = 0),
  };
}

// ---------------------------------------------------------------------------------------------
// The shared generation counter: IndexedDB (strongly consistent across tabs), or a per-tab
// counter where it is missing (then tabs rely on message order and the server's grace window).

export function memoryGeneration(): GenerationStore {
  let v = 0;
  return {
    read: async () => v,
    write: async (n) => void (v = n),
  };
}

function idbGeneration(name: string): GenerationStore {
  const idb = g.indexedDB;
  if (!idb) return memoryGeneration();
  const fallback = memoryGeneration();
  let db: Promise<IDBDatabase | null> | null = null;
  const open = () =>
    (db ??= new Promise<IDBDatabase | null>((resolve) => {
      try {
        const req = idb.open(`${name}-tabs`, 1);
        req.onupgradeneeded = () => req.result.createObjectStore('kv');
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => resolve(null);
        req.onblocked = () => resolve(null);
      } catch {
        resolve(null);
      }
    }));
  const tx = <T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest | null): Promise<T | null> =>
    open().then(
      (d) =>
        new Promise<T | null>((resolve) => {
          if (!d) return resolve(null);
          try {
            const t = d.transaction('kv', mode);
            const r = fn(t.objectStore('kv'));
            t.oncomplete = () => resolve(r ? (r.result as T) : null);
            t.onerror = () => resolve(null);
            t.onabort = () => resolve(null);
          } catch {
            resolve(null);
          }
        }),
    );
  return {
    async read() {
      const v = await tx<number>('readonly', (s) => s.get('gen'));
      return typeof v === 'number' ? v : fallback.read();
    },
    async write(n) {
      await fallback.write(n);
      await tx('readwrite', (s) => s.put(n, 'gen'));
    },
  };
}

export function browserPlatform(fetchImpl?: typeof fetch): Platform {
  const f = fetchImpl ?? ((input: RequestInfo | URL, init?: RequestInit) => globalThis.fetch(input, init));
  const locks = g.navigator?.locks;
  return {
    fetch: f,
    now: () => Date.now(),
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    readCookie: readDocumentCookie,
    origin: g.location?.origin ?? null,
    lock: locks && typeof locks.request === 'function' ? webLocks(locks) : leaseLock(),
    channel: broadcastChannel,
    generation: idbGeneration,
  };
}
