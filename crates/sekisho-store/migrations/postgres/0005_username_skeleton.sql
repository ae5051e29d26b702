-- The UTS #39 skeleton of each username (sekisho_core::account::rules::username_skeleton), so
-- that a new account whose name looks like an existing one is refused with one indexed lookup.
-- Filled for existing rows at start-up by the store (SQL cannot compute it).
ALTER TABLE users ADD COLUMN username_skeleton TEXT;
CREATE INDEX users_username_skeleton ON users (username_skeleton);
