/**
 * Reading (never verifying) the claims of a JWT: the client only needs `exp` and `iat` to plan
 * its refresh. Verification is the server's job.
 */
export interface TokenTimes {
  /** Expiry, seconds since the epoch (server clock). */
  exp: number;
  /** Issued at, seconds since the epoch (server clock). */
  iat: number | null;
}

export function decodePayload(token: string): Record<string, unknown> | null {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
    const binary = atob(padded);
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    const value: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export function tokenTimes(token: string): TokenTimes | null {
  const claims = decodePayload(token);
  if (!claims || typeof claims.exp !== 'number') return null;
  return { exp: claims.exp, iat: typeof claims.iat === 'number' ? claims.iat : null };
}

/**
 * Estimates `server clock − local clock` in milliseconds from a token's `iat`, minted between
 * `sentAt` and `receivedAt` (local clock). `iat` has one-second resolution, so estimates smaller
 * than the resolution plus the round trip are noise and count as zero.
 */
export function estimateSkew(iat: number, sentAt: number, receivedAt: number): number {
  const serverMid = iat * 1000 + 500;
  const localMid = (sentAt + receivedAt) / 2;
  const skew = serverMid - localMid;
  const noise = 1000 + (receivedAt - sentAt) / 2;
  return Math.abs(skew) <= noise ? 0 : Math.round(skew);
}
