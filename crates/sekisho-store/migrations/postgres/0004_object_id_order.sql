-- Object ids compare byte by byte, as on SQLite, whatever the database's default collation:
-- `POST /api/authz/list/` pages in this order and its cursor is an object id, so the order
-- must be one and the same on every backend (and a byte-wise sort is the cheap one).
ALTER TABLE user_object_permissions ALTER COLUMN object_id TYPE TEXT COLLATE "C";
ALTER TABLE group_object_permissions ALTER COLUMN object_id TYPE TEXT COLLATE "C";
