-- Authorization: permission labels, django-guardian's per-object grants, the audit log.
ALTER TABLE permissions ADD COLUMN name TEXT NOT NULL DEFAULT '';

-- The primary key's order serves the check (user, permission, type, id) and the ascending
-- list of ids for (user, permission, type) from one index.
CREATE TABLE user_object_permissions (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    permission_id INTEGER NOT NULL REFERENCES permissions(id) ON DELETE CASCADE,
    object_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    PRIMARY KEY (user_id, permission_id, object_type, object_id)
) WITHOUT ROWID;

CREATE TABLE group_object_permissions (
    group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    permission_id INTEGER NOT NULL REFERENCES permissions(id) ON DELETE CASCADE,
    object_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    PRIMARY KEY (group_id, permission_id, object_type, object_id)
) WITHOUT ROWID;

CREATE INDEX user_groups_group ON user_groups (group_id);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    actor_id INTEGER,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}',
    remote_addr TEXT NOT NULL DEFAULT '',
    request_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_target ON audit_log (target, id);
