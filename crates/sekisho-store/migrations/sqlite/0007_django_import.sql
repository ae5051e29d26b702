-- sekisho import-django: the fingerprint of each user's Django row as last imported, so a
-- re-run tells "Django changed this user" (imported again) from "sekisho changed it since"
-- (a password upgraded at login, a profile edit: kept).
CREATE TABLE django_imported_users (
    user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL,
    imported_at_ms INTEGER NOT NULL
);
