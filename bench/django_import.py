#!/usr/bin/env python3
"""Import throughput of `sekisho import-django` on a Django-shaped SQLite database.

Builds the database from Django 5.2's own DDL (crates/sekisho/tests/fixtures/django_5_2_sqlite.sql)
with N users (default 100,000; `pbkdf2_sha256` hashes as stored, every field set), each in one
of 10 groups and every tenth with a direct permission and a guardian object grant, plus one
outstanding simplejwt token per 10 users of which half are blacklisted. Then times, against a
fresh sekisho SQLite database: the dry run, the first import and a re-run (nothing changed).

  python3 bench/django_import.py [--users N] [--bin PATH]      (build first: cargo build --release -p sekisho)

Python's standard library only; the figures go to stdout as Markdown and JSON."""
import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DDL = os.path.join(ROOT, "crates/sekisho/tests/fixtures/django_5_2_sqlite.sql")


def build(path, users):
    db = sqlite3.connect(path)
    db.executescript(open(DDL).read())
    db.execute("INSERT INTO django_content_type (id, app_label, model) VALUES (1, 'shop', 'order')")
    db.executemany("INSERT INTO auth_permission (id, name, content_type_id, codename) VALUES (?, ?, 1, ?)",
                   [(i, f"Can {a} order", f"{a}_order") for i, a in enumerate(("view", "change", "refund"), 1)])
    db.executemany("INSERT INTO auth_group (id, name) VALUES (?, ?)", [(g, f"group{g}") for g in range(1, 11)])
    db.executemany("INSERT INTO auth_group_permissions (group_id, permission_id) VALUES (?, 1)",
                   [(g,) for g in range(1, 11)])
    stamp = "2025-06-01 12:00:00.000000"
    hash_ = "pbkdf2_sha256$1000000$c2FsdHNhbHRzYWx0$0123456789abcdefghijklmnopqrstuvwxyzABCDEFG="
    db.executemany(
        "INSERT INTO auth_user (id, password, last_login, is_superuser, username, first_name, last_name, "
        "email, is_staff, is_active, date_joined) VALUES (?, ?, ?, 0, ?, 'First', 'Last', ?, 0, 1, ?)",
        [(i, hash_, stamp if i % 2 else None, f"user{i:06d}", f"user{i}@example.com", stamp)
         for i in range(1, users + 1)])
    db.executemany("INSERT INTO auth_user_groups (user_id, group_id) VALUES (?, ?)",
                   [(i, i % 10 + 1) for i in range(1, users + 1)])
    db.executemany("INSERT INTO auth_user_user_permissions (user_id, permission_id) VALUES (?, 3)",
                   [(i,) for i in range(1, users + 1, 10)])
    db.executemany("INSERT INTO guardian_userobjectpermission (object_pk, content_type_id, permission_id, user_id) "
                   "VALUES (?, 1, 2, ?)", [(str(i), i) for i in range(1, users + 1, 10)])
    db.executemany("INSERT INTO token_blacklist_outstandingtoken (id, token, created_at, expires_at, user_id, jti) "
                   "VALUES (?, 'eyJ...', ?, '2099-01-01 00:00:00', ?, ?)",
                   [(i, stamp, i, f"{i:032x}") for i in range(1, users + 1, 10)])
    db.executemany("INSERT INTO token_blacklist_blacklistedtoken (blacklisted_at, token_id) VALUES (?, ?)",
                   [(stamp, i) for i in range(1, users + 1, 20)])
    db.commit()
    db.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                                                 "release", "sekisho"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="sekisho-import-bench.")
    src = os.path.join(work, "django.sqlite3")
    t0 = time.monotonic()
    build(src, args.users)
    print(f"built the Django database ({args.users} users) in {time.monotonic() - t0:.1f}s")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEKISHO_")}
    env.update({
        "SEKISHO_SERVER__DATA_DIR": os.path.join(work, "sekisho"),
        "SEKISHO_DATABASE__URL": f"sqlite://{work}/sekisho/sekisho.db",
        "SEKISHO_JWT__SIGNING_KEY": "bench-secret-key-0123456789abcdef0123456789",
        "SEKISHO_LOG": "warn",
    })
    results = {}
    for name, extra in (("dry run", ["--dry-run"]), ("first import", []), ("re-run, nothing changed", [])):
        t = time.monotonic()
        out = subprocess.run([args.bin, "import-django", "--from", src, *extra], env=env,
                             capture_output=True, text=True)
        elapsed = time.monotonic() - t
        if out.returncode != 0:
            raise SystemExit(f"{name} failed: {out.stderr}")
        results[name] = round(elapsed, 2)
        print(f"{name}: {elapsed:.2f}s ({args.users / elapsed:,.0f} users/s)")
    print(out.stdout)
    print("| run | seconds | users/s |\n| --- | ---: | ---: |")
    for name, s in results.items():
        print(f"| {name} | {s} | {args.users / s:,.0f} |")
    print(json.dumps({"users": args.users, "seconds": results}))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
