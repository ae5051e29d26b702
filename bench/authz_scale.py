#!/usr/bin/env python3
"""Object permissions at a million grants: `POST /api/authz/check/` and `POST /api/authz/list/`
on SQLite and on PostgreSQL, with the grant tables holding over 10^6 rows.

    python3 bench/authz_scale.py                      # builds sekisho (release), both backends
    BENCH_DURATION=3s BENCH_ROUNDS=1 python3 bench/authz_scale.py   # a quick look
    python3 bench/authz_scale.py --sekisho PATH       # an already built binary

For each backend: a fresh store (`sekisho migrate`), the permission `shop.change_order`
(`sekisho perm create`), the user `owner` (`sekisho user create`) and one grant made with
`sekisho user grant ... --object-id`, whose row shows the shape the seeded rows must have.
Then, written directly into the database in one transaction (Python's sqlite3; psql with
generate_series for PostgreSQL): 999 more users, 100 groups with every user in one (the owner
in two), 1000 per-object grants per user (10^6 rows in user_object_permissions) and 500 per
group (50,000 rows in group_object_permissions), object ids spread over 100,000 objects of type
`shop.order`. The seeding time is recorded; PostgreSQL is VACUUMed and ANALYZEd afterwards (what autovacuum
does shortly after a bulk load). Only then is the server started.

Before timing, the answers are checked against the grants the script wrote: an id held
directly, one held through a group and one not held; and the first `list` page must be exactly
the owner's 1000 smallest ids in text order with the right cursor. Timed (wrk, bearer token of
the owner): `check` with object ids drawn at random, half held and half not, and the first
`list` page with limit 1000 — each at a low concurrency (latency) and at BENCH_CONNECTIONS
(throughput) — and, as the floor, `check` without an object id (the model-wide `has_perm`,
answered from the cached user without a query of the grant tables). The backends and workloads are interleaved round by round.

Settings (environment, defaults in brackets): BENCH_DURATION [10s], BENCH_ROUNDS [3],
BENCH_CONNECTIONS [32], BENCH_LATENCY_CONNECTIONS [4], BENCH_THREADS [2],
BENCH_BACKENDS [sqlite,postgres], BENCH_AUTHZ_USERS [1000], BENCH_AUTHZ_GRANTS_PER_USER [1000],
BENCH_KEEP_WORK [0], SEKISHO_TEST_POSTGRES_URL [postgres://postgres@127.0.0.1:5432/test].
Writes its section of bench/results/<date>-authz.{md,json} (--out to change the stem).
Every process it starts is stopped by its process id; the PostgreSQL database is dropped.
"""

import datetime
import os
import random
import shlex
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import authz_common as C

base = C.base
log = C.log

PERM = "shop.change_order"
OTYPE = "shop.order"
OWNER, PASSWORD = "owner", "a long benchmark password"
CLI_OBJECT = "cli-1"  # granted with the CLI; sorts after every numeric id
OBJECT_SPACE = 100_000
GROUPS = 100
GRANTS_PER_GROUP = 500
LIST_LIMIT = 1000
TARGETS = {"check": 2_000, "list": 20_000}  # p99 in µs
WLABELS = {"check": "check", "list": "list (1000 ids)", "model": "check without object_id (floor)"}


def user_objects(uid, per_user):
    # 1009 is prime and coprime to OBJECT_SPACE: per_user distinct ids for any per_user <= 10^5.
    return [(uid * 7919 + k * 1009) % OBJECT_SPACE for k in range(per_user)]


def group_objects(g):
    return [(g * 104729 + k * 3001) % OBJECT_SPACE for k in range(GRANTS_PER_GROUP)]


def group_of_rank(rank):
    """The group number (1-based) of the user with this rank in id order (1-based)."""
    return (rank - 1) % GROUPS + 1


class Side:
    def __init__(self, ctx, backend):
        self.backend = backend
        self.label = backend
        self.server = base.Sekisho(ctx, f"authz-{backend}", backend)
        self.runs = {}


# ---------------------------------------------------------------------------------------------
# Schema checks: the seeded rows must fill every column the migration requires.

GRANT_COLUMNS = {
    "user_object_permissions": {"user_id", "permission_id", "object_type", "object_id"},
    "group_object_permissions": {"group_id", "permission_id", "object_type", "object_id"},
}


def sqlite_required(db, table):
    cols = list(db.execute(f"PRAGMA table_info({table})"))
    if not cols:
        raise RuntimeError(f"no table {table} after `sekisho migrate`")
    # An INTEGER PRIMARY KEY alone is the rowid (filled in by SQLite).
    pks = [c for c in cols if c[5]]
    rowid = pks[0][1] if len(pks) == 1 and pks[0][2].upper() == "INTEGER" else None
    return {c[1] for c in cols if c[3] and c[4] is None and c[1] != rowid}


def pg_required(url, table):
    out = psql(url, "SELECT column_name FROM information_schema.columns WHERE table_name = "
                    f"'{table}' AND is_nullable = 'NO' AND column_default IS NULL "
                    "AND is_identity = 'NO'")
    if not psql(url, f"SELECT to_regclass('{table}') IS NOT NULL").strip() == "t":
        raise RuntimeError(f"no table {table} after `sekisho migrate`")
    return set(out.split())


def check_columns(required, table):
    extra = required - GRANT_COLUMNS[table]
    if extra:
        raise RuntimeError(f"{table} requires columns this script does not fill: {sorted(extra)}; "
                           "update bench/authz_scale.py to the migration")


def psql(url, sql, timeout=60):
    return base.psql(url, sql) if timeout == 60 else subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], check=True, capture_output=True,
        text=True, timeout=timeout).stdout


def indexes(side):
    """The indexes of the grant tables, as the migration made them (for the report)."""
    tables = ("user_object_permissions", "group_object_permissions", "user_groups")
    if side.backend == "sqlite":
        db = sqlite3.connect(side.server.dir / "sekisho.db")
        out = {t: [r[0] or f"(automatic) {r[1]}" for r in db.execute(
            "SELECT sql, name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (t,))]
            for t in tables}
        db.close()
        return out
    return {t: psql(side.server.pg_url, f"SELECT indexdef FROM pg_indexes WHERE tablename = '{t}'")
            .strip().splitlines() for t in tables}


# ---------------------------------------------------------------------------------------------
# Seeding.


def seed_sqlite(side, n_users, per_user, now_ms):
    db = sqlite3.connect(side.server.dir / "sekisho.db", timeout=30, isolation_level=None)
    for t in GRANT_COLUMNS:
        check_columns(sqlite_required(db, t), t)
    perm_id = db.execute("SELECT id FROM permissions WHERE codename = ?", (PERM,)).fetchone()[0]
    t0 = time.time()
    db.execute("BEGIN")
    db.executemany("INSERT INTO users (username, password, date_joined) VALUES (?, '!', ?)",
                   ((f"authz{i}", now_ms) for i in range(1, n_users)))
    db.executemany("INSERT INTO groups (name) VALUES (?)", ((f"team{g}",) for g in range(1, GROUPS + 1)))
    uids = [r[0] for r in db.execute("SELECT id FROM users ORDER BY id")]
    gids = {int(name[4:]): gid for gid, name in db.execute("SELECT id, name FROM groups WHERE name LIKE 'team%'")}
    members = [(uid, gids[group_of_rank(rank)]) for rank, uid in enumerate(uids, 1)]
    members.append((uids[0], gids[2]))
    db.executemany("INSERT INTO user_groups (user_id, group_id) VALUES (?, ?)", members)
    db.executemany(
        "INSERT INTO user_object_permissions (user_id, permission_id, object_type, object_id) "
        "VALUES (?, ?, ?, ?)",
        ((uid, perm_id, OTYPE, str(o)) for uid in uids for o in user_objects(uid, per_user)))
    db.executemany(
        "INSERT INTO group_object_permissions (group_id, permission_id, object_type, object_id) "
        "VALUES (?, ?, ?, ?)",
        ((gids[g], perm_id, OTYPE, str(o)) for g in range(1, GROUPS + 1) for o in group_objects(g)))
    db.execute("COMMIT")
    seconds = time.time() - t0
    counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("users", "user_groups", *GRANT_COLUMNS)}
    db.close()
    return uids[0], seconds, counts


def seed_postgres(side, n_users, per_user, now_ms):
    url = side.server.pg_url
    for t in GRANT_COLUMNS:
        check_columns(pg_required(url, t), t)
    perm_id = int(psql(url, f"SELECT id FROM permissions WHERE codename = '{PERM}'").strip())
    sql = f"""
INSERT INTO users (username, password, date_joined)
  SELECT 'authz' || i, '!', {now_ms} FROM generate_series(1, {n_users - 1}) i;
INSERT INTO groups (name) SELECT 'team' || g FROM generate_series(1, {GROUPS}) g;
CREATE TEMP TABLE ranked ON COMMIT DROP AS
  SELECT id, row_number() OVER (ORDER BY id) AS rank FROM users;
INSERT INTO user_groups (user_id, group_id)
  SELECT r.id, g.id FROM ranked r JOIN groups g ON g.name = 'team' || ((r.rank - 1) % {GROUPS} + 1);
INSERT INTO user_groups (user_id, group_id)
  SELECT r.id, g.id FROM ranked r JOIN groups g ON g.name = 'team2' WHERE r.rank = 1;
INSERT INTO user_object_permissions (user_id, permission_id, object_type, object_id)
  SELECT u.id, {perm_id}, '{OTYPE}', ((u.id * 7919 + k * 1009) % {OBJECT_SPACE})::text
  FROM users u CROSS JOIN generate_series(0, {per_user - 1}) k;
INSERT INTO group_object_permissions (group_id, permission_id, object_type, object_id)
  SELECT g.id, {perm_id}, '{OTYPE}', ((substr(g.name, 5)::bigint * 104729 + k * 3001) % {OBJECT_SPACE})::text
  FROM groups g CROSS JOIN generate_series(0, {GRANTS_PER_GROUP - 1}) k WHERE g.name LIKE 'team%';
"""
    f = side.server.dir / "seed.sql"
    f.write_text(sql)
    t0 = time.time()
    subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-1", "-f", str(f)], check=True,
                   capture_output=True, text=True, timeout=900)
    seconds = time.time() - t0
    t1 = time.time()
    # VACUUM as autovacuum would after a bulk insert: it sets the visibility map, so the
    # primary keys are read by index-only scans as in a database that has been running.
    psql(url, "VACUUM ANALYZE", timeout=600)
    analyze_s = time.time() - t1
    counts = {t: int(psql(url, f"SELECT count(*) FROM {t}").strip())
              for t in ("users", "user_groups", *GRANT_COLUMNS)}
    owner = int(psql(url, "SELECT min(id) FROM users").strip())
    return owner, seconds, counts, analyze_s


def expected_for_owner(owner_id, per_user):
    """The owner's object ids, as the API orders them (text), from what the script wrote."""
    direct = {str(o) for o in user_objects(owner_id, per_user)}
    via_groups = {str(o) for g in (group_of_rank(1), 2) for o in group_objects(g)}
    return direct, via_groups - direct, sorted(direct | via_groups | {CLI_OBJECT})


# ---------------------------------------------------------------------------------------------


def setup(ctx, side):
    s = side.server
    s.cli(["migrate"])
    s.cli(["user", "create", OWNER, "--password-stdin"], stdin=PASSWORD + "\n")
    s.cli(["perm", "create", PERM])
    s.cli(["user", "grant", OWNER, PERM, "--object-id", CLI_OBJECT])
    # The CLI's row is the model for the seeded ones.
    q = "SELECT object_type, object_id FROM user_object_permissions"
    if side.backend == "sqlite":
        db = sqlite3.connect(s.dir / "sekisho.db")
        cli_rows = [tuple(r) for r in db.execute(q)]
        db.close()
    else:
        cli_rows = [tuple(line.split("|")) for line in psql(s.pg_url, q).strip().splitlines()]
    if cli_rows != [(OTYPE, CLI_OBJECT)]:
        raise RuntimeError(f"{side.label}: `sekisho user grant --object-id` wrote {cli_rows}, expected "
                           f"{[(OTYPE, CLI_OBJECT)]}: the seeding would not match the server's rows")
    now_ms = int(time.time() * 1000)
    log(f"{side.label}: seeding {ctx.n_users:,} users x {ctx.per_user:,} object grants "
        f"+ {GROUPS} groups x {GRANTS_PER_GROUP} ...")
    if side.backend == "sqlite":
        owner, secs, counts = seed_sqlite(side, ctx.n_users, ctx.per_user, now_ms)
        side.analyze_s = None
    else:
        owner, secs, counts, side.analyze_s = seed_postgres(side, ctx.n_users, ctx.per_user, now_ms)
    side.seed_s, side.counts, side.owner_id = secs, counts, owner
    want_user = ctx.n_users * ctx.per_user + 1
    want_group = GROUPS * GRANTS_PER_GROUP
    if counts["user_object_permissions"] != want_user or counts["group_object_permissions"] != want_group:
        raise RuntimeError(f"{side.label}: seeded {counts}, expected {want_user} user and {want_group} group grants")
    log(f"{side.label}: seeded in {secs:.1f}s{f' (+ VACUUM ANALYZE {side.analyze_s:.1f}s)' if side.analyze_s else ''}: {counts}")
    side.indexes = indexes(side)
    s.start()
    log(f"{side.label}: sekisho at {s.base}")
    side.access = base.Http(s.base).call("POST", "/api/token/", {"username": OWNER, "password": PASSWORD})["access"]
    direct, via_groups, ordered = expected_for_owner(owner, ctx.per_user)
    side.held = sorted(direct | via_groups)
    verify(side, direct, via_groups, ordered)


def post(side, path, body):
    return base.Http(side.server.base).call(
        "POST", path, body, headers={"Authorization": f"Bearer {side.access}"})


def verify(side, direct, via_groups, ordered):
    held = direct | via_groups
    not_held = next(str(o) for o in range(OBJECT_SPACE) if str(o) not in held)
    cases = [
        ("an id held directly", min(direct), True),
        ("an id held through a group only", min(via_groups), True),
        ("the id granted with the CLI", CLI_OBJECT, True),
        ("an id not held", not_held, False),
    ]
    out = []
    for label, oid, want in cases:
        r = post(side, "/api/authz/check/", {"permission": PERM, "object_id": oid})
        if r != {"allowed": want}:
            raise RuntimeError(f"{side.label}: check {label} ({oid}): {r}, expected allowed={want}")
        out.append(f"check, {label} → {str(want).lower()}")
    if post(side, "/api/authz/check/", {"permission": PERM}) != {"allowed": False}:
        raise RuntimeError(f"{side.label}: the owner must not hold {PERM} model-wide")
    out.append("check without object_id (no model-wide grant) → false")
    r = post(side, "/api/authz/list/", {"permission": PERM, "limit": LIST_LIMIT})
    page = ordered[:LIST_LIMIT]
    if r.get("all") or r.get("object_ids") != page or r.get("next") != page[-1]:
        got = r.get("object_ids") or []
        raise RuntimeError(f"{side.label}: list: all={r.get('all')}, {len(got)} ids (first {got[:3]}), "
                           f"next={r.get('next')!r}; expected {len(page)} ids from {page[:3]}, next {page[-1]!r}")
    out.append(f"list limit {LIST_LIMIT} → exactly the first {LIST_LIMIT} of the owner's "
               f"{len(ordered):,} ids in text order, next = the last of them")
    side.verified = out
    log(f"{side.label}: verified: " + "; ".join(out))


def run_one(ctx, side, workload, connections, duration=None):
    s = side.server
    base.quiesce(s.base)
    threads = min(ctx.threads, connections)
    path = "/api/authz/list/" if workload == "list" else "/api/authz/check/"
    env = {"BENCH_ACCESS": side.access, "BENCH_PERMISSION": PERM, "BENCH_PATH": path}
    if workload == "check":
        env.update({"BENCH_OBJECT_IDS": str(side.ids_file), "BENCH_SEED": str(random.randrange(1 << 30))})
        script = "authz_check.lua"
    elif workload == "list":
        env["BENCH_BODY"] = f'{{"permission":"{PERM}","limit":{LIST_LIMIT}}}'
        script = "bearer_post.lua"
    else:
        # The floor: the same endpoint without object_id is Django's has_perm, answered from the
        # (cached) user's model-wide permissions without a query of the grant tables.
        env["BENCH_BODY"] = f'{{"permission":"{PERM}"}}'
        script = "bearer_post.lua"
    cpu0 = C.cpu_seconds(s.proc.pid)
    r = base.run_wrk(ctx, s.base, script, path, env=env, duration=duration,
                     connections=connections, threads=threads)
    r["sekisho_cpu_us_per_request"] = round((C.cpu_seconds(s.proc.pid) - cpu0) / max(1, r["requests"]) * 1e6, 1)
    r["connections"] = connections
    return r


def main():
    a, ctx = C.start(__doc__)
    ctx.lat_connections = int(os.environ.get("BENCH_LATENCY_CONNECTIONS", "4"))
    ctx.threads = int(os.environ.get("BENCH_THREADS", "2"))
    ctx.n_users = int(os.environ.get("BENCH_AUTHZ_USERS", "1000"))
    ctx.per_user = int(os.environ.get("BENCH_AUTHZ_GRANTS_PER_USER", "1000"))
    if not (1 <= ctx.per_user <= OBJECT_SPACE) or ctx.n_users < 1:
        raise SystemExit("BENCH_AUTHZ_USERS >= 1 and 1 <= BENCH_AUTHZ_GRANTS_PER_USER <= 100000")
    backends = [b for b in os.environ.get("BENCH_BACKENDS", "sqlite,postgres").split(",") if b]
    for b in backends:
        if b not in ("sqlite", "postgres"):
            raise SystemExit(f"BENCH_BACKENDS: unknown backend {b!r}")
    pg_admin = os.environ.get("SEKISHO_TEST_POSTGRES_URL", C.DEFAULT_PG)
    notes = []
    if "postgres" in backends and not base.pg_reachable(pg_admin):
        log("PostgreSQL not reachable: that backend is skipped")
        notes.append(f"PostgreSQL ({pg_admin}) was not reachable: no PostgreSQL figures.")
        backends.remove("postgres")
    C.ensure_wrk()

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    work = Path(tempfile.mkdtemp(prefix="sekisho-authz-scale."))
    ctx.work = work
    ctx.pg = base.PgDatabases(pg_admin)
    ctx.redis_url = None
    started = time.time()
    load_start = C.loadavg()
    sides = []
    workloads = [("check", ctx.lat_connections), ("check", ctx.connections),
                 ("list", ctx.lat_connections), ("list", ctx.connections),
                 ("model", ctx.lat_connections)]
    try:
        ctx.sekisho_bin = C.prepare_binary(a.sekisho, work)
        for b in backends:
            side = Side(ctx, b)
            sides.append(side)
            setup(ctx, side)
            # Object ids for check: half held by the owner, half not, drawn independently.
            rng = random.Random(7)
            held = side.held
            held_set = set(held)
            ids = []
            while len(ids) < 20_000:
                ids.append(rng.choice(held))
                o = str(rng.randrange(OBJECT_SPACE))
                if o not in held_set:
                    ids.append(o)
            side.ids_file = work / f"{b}-object-ids.txt"
            side.ids_file.write_text("\n".join(ids) + "\n")
            side.rss_start_kib = base.rss_kib(side.server.proc.pid)["VmRSS"]
        log("warm-up")
        for side in sides:
            for w, c in workloads:
                run_one(ctx, side, w, c, duration=1)
        for rnd in range(ctx.rounds):
            for w, c in workloads:
                for side in sides:
                    r = run_one(ctx, side, w, c)
                    side.runs.setdefault(f"{w}-c{c}", []).append(r)
                    bad = f" ERRORS {r['errors_total']}" if r["errors_total"] else ""
                    counts = f" {r['counts']}" if r.get("counts") else ""
                    log(f"round {rnd + 1}/{ctx.rounds} {w:5s} -c{c:<3d} {side.label:8s} {r['rps']:8.0f}/s "
                        f"p50 {r['p50_us'] / 1000:6.2f} p99 {r['p99_us'] / 1000:6.2f} "
                        f"p99.9 {r['p999_us'] / 1000:6.2f} ms; sekisho CPU {r['sekisho_cpu_us_per_request']} µs/req"
                        f"{counts}{bad}")
        for side in sides:
            side.rss_end_kib = base.rss_kib(side.server.proc.pid)
    finally:
        base.stop_all()
        for side in sides:
            try:
                side.server.destroy()
            except Exception as e:  # noqa: BLE001 - cleanup must go on
                log(f"cleanup of {side.label}: {e}")
        ctx.pg.drop_all()
        if os.environ.get("BENCH_KEEP_WORK") != "1":
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")

    results = {}
    for side in sides:
        out = {"seed_s": round(side.seed_s, 2), "analyze_s": round(side.analyze_s, 2) if side.analyze_s else None,
               "rows": side.counts, "indexes": side.indexes, "verified": side.verified,
               "owner_grants": len(side.held) + 1, "rss_start_kib": side.rss_start_kib,
               "rss_end": side.rss_end_kib, "workloads": {}}
        for key, rs in side.runs.items():
            m = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_us", "p90_us", "p99_us", "p999_us")}
            m["sekisho_cpu_us_per_request"] = statistics.median(r["sekisho_cpu_us_per_request"] for r in rs)
            m["errors_total"] = sum(r["errors_total"] for r in rs)
            m["requests_total"] = sum(r["requests"] for r in rs)
            m["connections"] = rs[0]["connections"]
            if key.startswith("check"):
                m["allowed"] = sum(r["counts"].get("allowed", 0) for r in rs)
                m["denied"] = sum(r["counts"].get("denied", 0) for r in rs)
            m["runs"] = rs
            out["workloads"][key] = m
        results[side.label] = out

    facts = C.machine_facts()
    facts["loadavg_start"], facts["loadavg_end"] = load_start, C.loadavg()
    facts["elapsed_s"] = round(time.time() - started)
    env_used = {k: v for k, v in os.environ.items() if k.startswith("BENCH_")}
    command = " ".join([*(f"{k}={shlex.quote(v)}" for k, v in sorted(env_used.items())),
                        "python3", "bench/authz_scale.py", *map(shlex.quote, sys.argv[1:])])
    settings = {"duration_s": ctx.duration, "rounds": ctx.rounds, "connections": ctx.connections,
                "latency_connections": ctx.lat_connections, "threads": ctx.threads,
                "users": ctx.n_users, "grants_per_user": ctx.per_user, "groups": GROUPS,
                "grants_per_group": GRANTS_PER_GROUP, "object_space": OBJECT_SPACE,
                "permission": PERM, "object_type": OTYPE, "list_limit": LIST_LIMIT,
                "targets_p99_us": TARGETS}
    md = render(facts, settings, results, notes, command, [f"{w}-c{c}" for w, c in workloads])
    print(md)
    C.write_section(a.out, "authz_scale", "Object permissions at a million grants (`bench/authz_scale.py`)",
                    md, {"facts": facts, "settings": settings, "command": command, "notes": notes,
                         "results": results})


def render(facts, st, results, notes, command, keys):
    L = []
    L.append(f"Run {facts['date']} on `{facts['host']}`: {C.facts_line(facts)}; SQLite {facts['sqlite']}, "
             f"PostgreSQL {facts['postgres']}. Load average {' '.join(facts['loadavg_start'])} at the "
             f"start, {' '.join(facts['loadavg_end'])} at the end (other work shares the machine); whole "
             f"run {facts['elapsed_s']} s.")
    L.append("")
    L.append(f"Command: `{command}`")
    L.append("")
    L.append(f"Store: {st['users']:,} users × {st['grants_per_user']:,} per-object grants of `{st['permission']}` "
             f"(`{st['object_type']}`, ids spread over {st['object_space']:,} objects) in "
             f"`user_object_permissions`, plus {st['groups']} groups × {st['grants_per_group']} in "
             f"`group_object_permissions`, every user in one group; the benchmark user holds its "
             f"{st['grants_per_user']:,} direct grants, two groups' and one made with the CLI. Written "
             "directly into a freshly migrated database, in one transaction, before the server starts. "
             "sekisho: release build, defaults (PostgreSQL: sessions in the database).")
    L.append("")
    L.append(f"Requests: bearer token of that user; `check` = `POST /api/authz/check/` "
             f"`{{\"permission\", \"object_id\"}}` with ids drawn at random, half held and half not; "
             f"`list` = `POST /api/authz/list/` `{{\"permission\", \"limit\": {st['list_limit']}}}` (the first "
             f"page: {st['list_limit']} ids); the floor = `check` without `object_id` (Django's `has_perm`, "
             f"answered from the cached user without a query of the grant tables). wrk `-t{st['threads']}` (at most one thread per connection), "
             f"`-d{st['duration_s']:g}s`, at `-c{st['latency_connections']}` (latency) and "
             f"`-c{st['connections']}` (throughput); {st['rounds']} rounds, backends and workloads interleaved "
             "in each round; medians of the rounds. Targets: p99 < 2 ms for `check`, < 20 ms for the "
             "1000-id `list`.")
    L.append("")
    L.append("| backend | seeding | rows (user / group grants) |")
    L.append("| --- | ---: | ---: |")
    for b, r in results.items():
        an = f" (+ VACUUM ANALYZE {r['analyze_s']:.1f} s)" if r["analyze_s"] else ""
        L.append(f"| {b} | {r['seed_s']:.1f} s{an} | {r['rows']['user_object_permissions']:,} / "
                 f"{r['rows']['group_object_permissions']:,} |")
    L.append("")
    L.append("| backend | request | conns | req/s | p50 ms | p99 ms | p99.9 ms | sekisho CPU µs/req | target (p99) |")
    L.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    verdicts = []
    for b, r in results.items():
        for key in keys:
            m = r["workloads"].get(key)
            if not m:
                continue
            w = key.split("-")[0]
            target = TARGETS.get(w)
            if target is None:
                verdict = "(floor, no target)"
            else:
                ok = m["p99_us"] < target
                verdict = f"< {target / 1000:g} ms: {'met' if ok else '**missed**'}"
                if not ok:
                    verdicts.append(f"{b} {w} at -c{m['connections']}: p99 {C.fmt_ms(m['p99_us'])} ms")
            L.append(f"| {b} | {WLABELS[w]} | {m['connections']} | {C.fmt_rps(m['rps'])} | {C.fmt_ms(m['p50_us'])} | "
                     f"{C.fmt_ms(m['p99_us'])} | {C.fmt_ms(m['p999_us'])} | {m['sekisho_cpu_us_per_request']:.0f} | "
                     f"{verdict} |")
    L.append("")
    answered = []
    for b, r in results.items():
        for key, m in r["workloads"].items():
            if "allowed" in m:
                answered.append(f"{b} {key}: {m['allowed']:,} allowed / {m['denied']:,} denied")
    if answered:
        L.append("`check` answers over all rounds: " + "; ".join(answered) + ".")
        L.append("")
    for b, r in results.items():
        L.append(f"Checked on {b} before timing: " + "; ".join(r["verified"]) + ".")
    errors = [f"{b} {k}: {m['errors_total']} of {m['requests_total']}" for b, r in results.items()
              for k, m in r["workloads"].items() if m["errors_total"]]
    if errors:
        L.append("")
        L.append("Failed requests (socket errors, timeouts or non-2xx): " + "; ".join(errors) + ".")
    L.append("")
    L.append("Targets missed: " + "; ".join(verdicts) + "." if verdicts else "Every p99 target was met.")
    for n in notes:
        L.append("")
        L.append(n)
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
