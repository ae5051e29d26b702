-- Server-side sessions. Only the SHA-256 of the cookie value is stored.
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    idle_expires_at_ms BIGINT NOT NULL,
    absolute_expires_at_ms BIGINT NOT NULL,
    user_agent TEXT NOT NULL DEFAULT '',
    ip TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_idle ON sessions (idle_expires_at_ms);
