-- Passkeys (WebAuthn credentials) and the ceremonies between a begin and its finish.
-- `credential` is the library's serialized credential (public key, counter, flags): public
-- material, but the counter in it is what clone detection compares against, so a use rewrites
-- it with a compare-and-swap on the old value. `user_verified` is whether the registration
-- verified the user (a PIN or biometric): such a key counts as two factors on its own.
-- A ceremony is stored as the SHA-256 of the id handed out, read once (deleted when used).
CREATE TABLE mfa_passkeys (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    credential TEXT NOT NULL,
    user_verified INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    last_used_at_ms INTEGER
);
CREATE INDEX mfa_passkeys_user ON mfa_passkeys (user_id);
CREATE TABLE mfa_passkey_ceremonies (
    id_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
    challenge_hash TEXT,
    state TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
CREATE INDEX mfa_passkey_ceremonies_expiry ON mfa_passkey_ceremonies (expires_at_ms);
