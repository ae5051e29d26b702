-- Second factors (TOTP and recovery codes) and the challenges of logins waiting for one.
-- A TOTP secret is stored sealed (AES-256-GCM, bound to the user id); `last_step` is the last
-- time step accepted, so a code works once. Recovery codes are stored as keyed hashes and
-- deleted as they are used. Challenges are stored as the SHA-256 of the token handed out.
CREATE TABLE mfa_totp (
    user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL,
    confirmed_at_ms INTEGER,
    last_step INTEGER
);
CREATE TABLE mfa_recovery_codes (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);
CREATE TABLE mfa_challenges (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    flow TEXT NOT NULL,
    purpose TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
CREATE INDEX mfa_challenges_expiry ON mfa_challenges (expires_at_ms);
-- How each session's login was authenticated: `amr` as space-separated RFC 8176 values,
-- `auth_time` in Unix seconds (NULL for sessions from before: their creation time).
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE sessions ADD COLUMN auth_time INTEGER;
