/**
 * Vue 3: `app.use(createAuthPlugin(client))`, then `useAuth()` in any component for reactive
 * `user`, `status` and `isAuthenticated`, plus `login` (and `completeLogin` for a second
 * factor), `logout`, `mfa` and an authenticated `fetch`.
 */
import { computed, inject, shallowRef, type App, type ComputedRef, type InjectionKey, type Ref } from 'vue';
import type { SekishoClient, Status, User } from './client.js';
import type { MfaChallenge } from './errors.js';
import type { LoginResult, MfaApi, MfaFactor } from './mfa.js';

export const AUTH_KEY: InjectionKey<SekishoClient> = Symbol('sekisho');

export interface AuthState {
  client: SekishoClient;
  user: Readonly<Ref<User | null>>;
  status: Readonly<Ref<Status>>;
  isAuthenticated: ComputedRef<boolean>;
  /** Rejects with `MfaRequiredError` when a second factor is needed. */
  login(username: string, password: string): Promise<User>;
  completeLogin(challenge: MfaChallenge | string, factor: MfaFactor): Promise<LoginResult<User>>;
  mfa: MfaApi;
  logout(): Promise<void>;
  restore(): Promise<User | null>;
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
}

const states = new WeakMap<SekishoClient, AuthState>();

function stateOf(client: SekishoClient): AuthState {
  let state = states.get(client);
  if (state) return state;
  const user = shallowRef<User | null>(client.user);
  const status = shallowRef<Status>(client.status);
  client.on('change', (e) => {
    user.value = e.user;
    status.value = e.status;
  });
  state = {
    client,
    user,
    status,
    isAuthenticated: computed(() => status.value === 'authenticated'),
    login: (u, p) => client.login(u, p),
    completeLogin: (c, f) => client.completeLogin(c, f),
    mfa: client.mfa,
    logout: () => client.logout(),
    restore: () => client.restore(),
    fetch: (input, init) => client.fetch(input, init),
  };
  states.set(client, state);
  return state;
}

export interface PluginOptions {
  /** Call `client.restore()` when the plugin is installed (default true). */
  restore?: boolean;
}

export function createAuthPlugin(client: SekishoClient, options: PluginOptions = {}) {
  return {
    install(app: App): void {
      app.provide(AUTH_KEY, client);
      stateOf(client);
      if (options.restore ?? true) client.restore().catch(() => undefined);
    },
  };
}

/** The reactive auth state of `client`, or of the client the plugin provided. */
export function useAuth(client?: SekishoClient): AuthState {
  const c = client ?? inject(AUTH_KEY, null);
  if (!c) throw new Error('useAuth(): install createAuthPlugin(client) or pass a client');
  return stateOf(c);
}
