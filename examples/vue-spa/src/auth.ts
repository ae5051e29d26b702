// The two ways this app logs in, side by side (each a @sekisho/client instance):
//  - `office`: session mode, used through axios — the "internal business app";
//  - `shop`: JWT mode, used through the fetch wrapper — the public "shop".
import axios from 'axios';
import { shallowRef } from 'vue';
import { createClient, type User } from '@sekisho/client';
import { attachAxios } from '@sekisho/client/axios';

export const office = createClient({ mode: 'session', name: 'office' });
export const officeApi = axios.create();
attachAxios(officeApi, office);

export const shop = createClient({
  mode: 'jwt',
  name: 'shop',
  // Keep the shop's login across reloads of a tab; the access token stays in memory.
  storage: 'session',
});

/**
 * Whether `user` holds the Django-style permission `codename`, by the rule the server applies
 * (`user.has_perm()`): superusers hold every permission, others need it granted.
 */
export function hasPerm(user: User | null, codename: string): boolean {
  return !!user && (user.is_superuser || user.permissions.includes(codename));
}

/**
 * The office user as `GET /api/auth/me/` answers now (a grant may have changed since the
 * login), or null when nobody is logged in to the office.
 */
export async function officeUserNow(): Promise<User | null> {
  try {
    return office.status === 'authenticated' ? await office.me() : await office.restore();
  } catch {
    return office.user;
  }
}

/**
 * Recovery codes the server has just issued (at an enrolment, or on request). They are shown
 * once, by the app shell, until the user says they are saved: the page that asked for them may
 * already have been replaced (completing a login swaps the login form for the screen).
 */
export const freshRecoveryCodes = shallowRef<{ username: string; codes: string[] } | null>(null);

/** Errors from either adapter, as one line for the screen. */
export function describe(e: unknown): string {
  const err = e as { response?: { status: number; data?: { detail?: string } }; message?: string; code?: string };
  if (err?.response) return `${err.response.status}: ${err.response.data?.detail ?? 'error'}`;
  return err?.message ?? String(e);
}

/** `shop.fetch` returning parsed JSON, throwing on non-2xx. */
export async function shopJson<T = unknown>(path: string, init?: RequestInit): Promise<T> {
  const res = await shop.fetch(path, init);
  const body = await res.json().catch(() => null);
  if (!res.ok) throw Object.assign(new Error(`${res.status}: ${body?.detail ?? JSON.stringify(body)}`), { status: res.status });
  return body as T;
}
