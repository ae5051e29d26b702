// The two ways this app logs in, side by side (each a @sekisho/client instance):
//  - `office`: session mode, used through axios — the "internal business app";
//  - `shop`: JWT mode, used through the fetch wrapper — the public "shop".
import axios from 'axios';
import { createClient } from '@sekisho/client';
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
