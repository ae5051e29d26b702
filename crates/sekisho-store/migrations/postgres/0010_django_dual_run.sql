-- The dual-run with Django (sekisho import-django): started by the first import, ended by
-- `import-django --finish`. Stored, so every instance and every restart agrees on it.
CREATE TABLE django_dual_run (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    started_at_ms BIGINT NOT NULL,
    finished_at_ms BIGINT
);
-- Django session keys already exchanged for a sekisho session (SHA-256 of the key, never the
-- key): each is accepted once. Emptied by --finish.
CREATE TABLE django_exchanged_sessions (
    key_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    exchanged_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
