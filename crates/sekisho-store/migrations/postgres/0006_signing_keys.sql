-- Managed signing keys: one row per key, a handful at a time (the signing one, the next, the
-- ones still verifying). `generation` is unique: the compare-and-swap that lets processes race
-- to rotate and make one key. The private key is sealed (AES-256-GCM) with the configured
-- key-encryption key; the public JWK is readable without it.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    generation BIGINT NOT NULL UNIQUE,
    algorithm TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    private_key BYTEA NOT NULL,
    created_at_ms BIGINT NOT NULL,
    activate_at_ms BIGINT,
    retired_at_ms BIGINT,
    revoked BOOLEAN NOT NULL DEFAULT FALSE
);
