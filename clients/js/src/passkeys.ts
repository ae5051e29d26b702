// Passkeys (WebAuthn) in the browser: sekisho's begin endpoints answer `{ceremony, options}`
// with the options' binary fields in base64url; these helpers turn them into what
// `navigator.credentials` takes, run the ceremony, and turn the credential back into JSON for
// the finish endpoint. No dependency: the conversion is a few lines.

/** POSTs a JSON body and resolves to the parsed JSON answer (rejects on a non-2xx answer). */
export type PostJson = (path: string, body: unknown) => Promise<any>;

/** What a begin endpoint answers. */
export interface PasskeyCeremony {
  ceremony: string;
  options: { publicKey: Record<string, any>; mediation?: string };
}

/** A credential as JSON: ArrayBuffers as base64url strings. */
export interface PasskeyCredentialJSON {
  id: string;
  rawId: string;
  type: string;
  response: Record<string, string | undefined>;
  extensions: Record<string, unknown>;
}

export const PASSKEY_PATHS = {
  registerBegin: '/api/auth/mfa/passkeys/register/begin/',
  registerFinish: '/api/auth/mfa/passkeys/register/finish/',
  sessionBegin: '/api/auth/login/passkey/begin/',
  sessionFinish: '/api/auth/login/passkey/',
  tokenBegin: '/api/token/passkey/begin/',
  tokenFinish: '/api/token/passkey/',
  sessionChallengeBegin: '/api/auth/login/mfa/passkey/',
  sessionChallengeFinish: '/api/auth/login/mfa/',
  tokenChallengeBegin: '/api/token/mfa/passkey/',
  tokenChallengeFinish: '/api/token/mfa/',
} as const;

export function fromBase64url(s: string): ArrayBuffer {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

export function toBase64url(buf: ArrayBuffer | ArrayBufferView): string {
  const bytes = buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  let bin = '';
  for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function withIds(list: any[] | undefined): any[] | undefined {
  return list?.map((c) => ({ ...c, id: fromBase64url(c.id) }));
}

/** The server's creation options as `navigator.credentials.create` takes them. */
export function creationOptions(options: PasskeyCeremony['options']): CredentialCreationOptions {
  const pk = options.publicKey;
  return {
    publicKey: {
      ...pk,
      challenge: fromBase64url(pk.challenge),
      user: { ...pk.user, id: fromBase64url(pk.user.id) },
      excludeCredentials: withIds(pk.excludeCredentials),
    } as PublicKeyCredentialCreationOptions,
  };
}

/** The server's request options as `navigator.credentials.get` takes them. */
export function requestOptions(options: PasskeyCeremony['options']): CredentialRequestOptions {
  const pk = options.publicKey;
  return {
    publicKey: {
      ...pk,
      challenge: fromBase64url(pk.challenge),
      allowCredentials: withIds(pk.allowCredentials),
    } as PublicKeyCredentialRequestOptions,
  };
}

/** A created or asserted credential as JSON for the finish endpoint. */
export function credentialJson(cred: PublicKeyCredential): PasskeyCredentialJSON {
  const r = cred.response as AuthenticatorAttestationResponse & AuthenticatorAssertionResponse;
  const response: Record<string, string | undefined> = { clientDataJSON: toBase64url(r.clientDataJSON) };
  if ('attestationObject' in r && r.attestationObject) response.attestationObject = toBase64url(r.attestationObject);
  if ('authenticatorData' in r && r.authenticatorData) response.authenticatorData = toBase64url(r.authenticatorData);
  if ('signature' in r && r.signature) response.signature = toBase64url(r.signature);
  if ('userHandle' in r && r.userHandle) response.userHandle = toBase64url(r.userHandle);
  return { id: cred.id, rawId: toBase64url(cred.rawId), type: cred.type, response, extensions: cred.getClientExtensionResults() as Record<string, unknown> };
}

async function run(create: boolean, options: PasskeyCeremony['options']): Promise<PasskeyCredentialJSON> {
  const cred = create
    ? await navigator.credentials.create(creationOptions(options))
    : await navigator.credentials.get(requestOptions(options));
  if (!cred) throw new Error('no credential was returned');
  return credentialJson(cred as PublicKeyCredential);
}

/**
 * Registers a passkey for the logged-in user under `name`; resolves to the server's answer. A
 * new key is a factor change: the server ends the user's other logins and continues this one
 * (new session cookies, or a new token pair in the answer for a bearer caller), so hand the
 * answer to `client.continueLogin(answer)` when a `SekishoClient` holds the login. An account
 * that already has a factor needs a recent second-factor login for this (403
 * `mfa_step_up_required`: step up first).
 */
export async function registerPasskey(post: PostJson, name: string): Promise<any> {
  const begun: PasskeyCeremony = await post(PASSKEY_PATHS.registerBegin, {});
  const credential = await run(true, begun.options);
  return post(PASSKEY_PATHS.registerFinish, { ceremony: begun.ceremony, credential, name });
}

/**
 * A passwordless login: `session` answers `{user}` with the session cookie set, `token` the
 * same pair as `POST /api/token/`.
 */
export async function signInWithPasskey(post: PostJson, username: string, mode: 'session' | 'token'): Promise<any> {
  const begin = mode === 'session' ? PASSKEY_PATHS.sessionBegin : PASSKEY_PATHS.tokenBegin;
  const finish = mode === 'session' ? PASSKEY_PATHS.sessionFinish : PASSKEY_PATHS.tokenFinish;
  const begun: PasskeyCeremony = await post(begin, { username });
  const credential = await run(false, begun.options);
  return post(finish, { ceremony: begun.ceremony, credential });
}

/** Answers a login's `mfa_required` challenge with a passkey. */
export async function answerChallengeWithPasskey(post: PostJson, challenge: string, mode: 'session' | 'token'): Promise<any> {
  const begin = mode === 'session' ? PASSKEY_PATHS.sessionChallengeBegin : PASSKEY_PATHS.tokenChallengeBegin;
  const finish = mode === 'session' ? PASSKEY_PATHS.sessionChallengeFinish : PASSKEY_PATHS.tokenChallengeFinish;
  const begun: PasskeyCeremony = await post(begin, { challenge });
  const credential = await run(false, begun.options);
  return post(finish, { challenge, ceremony: begun.ceremony, credential });
}
