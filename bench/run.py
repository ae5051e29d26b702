"""The side-by-side benchmark behind bench/compare.sh (run it through that script).

Starts sekisho (SQLite; PostgreSQL + Redis when reachable) and the Django reference stack on
127.0.0.1, drives both with wrk and the sekisho-load driver, interleaving the sides round by
round, and writes one table (markdown + JSON) to bench/results/. Every process it starts is
stopped by its process id; every database and Redis key it creates is removed.

Settings come from the environment (defaults in brackets):
  BENCH_DURATION [10s]   length of each timed run
  BENCH_ROUNDS [3]       rounds; each side runs each workload once per round, medians reported
  BENCH_CONNECTIONS [32], BENCH_THREADS [2]   wrk -c / -t for every side
  BENCH_WORKLOADS [all]  comma-separated subset of: floor,bearer,session,verify,refresh,login,pageload
  BENCH_PARTS [compare,flood,memory]
  BENCH_MEMORY_ROWS [100000]   sessions and refresh families stored for the memory test
  BENCH_MEMORY_SAMPLE [10000]  of which this many are read / rotated over HTTP before measuring
  BENCH_POOL_MARGIN [1.4]      refresh pool per round = probed rate x duration x this
  BENCH_POOL_SOURCE [auto]     how sekisho's refresh pools are made: http (one login per token),
                               direct (family rows written to the store, tokens signed here),
                               auto (http when it takes at most BENCH_POOL_HTTP_BUDGET [45] s)
  BENCH_GUNICORN_WORKERS [2 x CPUs]
  BENCH_FLOOD_DURATION [6s]    length of each login-flood measurement (at most BENCH_DURATION)
  BENCH_FLOOD_REFERENCE [0]    1: run the login flood against the reference stack too
  SEKISHO_TEST_POSTGRES_URL [postgres://postgres@127.0.0.1:5432/test]
  SEKISHO_TEST_REDIS_URL [redis://127.0.0.1:6379]
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LUA = BENCH / "lua"

ALL_WORKLOADS = ["floor", "bearer", "session", "verify", "refresh", "login", "pageload"]
LABELS = {
    "floor": "floor: `GET /healthz` (no auth)",
    "bearer": "bearer `GET /api/auth/me/`",
    "session": "session `GET /api/auth/me/`",
    "verify": "`POST /api/token/verify/`",
    "refresh": "refresh with rotation",
    "login": "session login (+CSRF)",
    "pageload": "SPA page load (1 refresh + 10 parallel GETs)",
}
PAGELOAD_USERS = 3
SEKISHO_HASH = "Argon2id m=19456 KiB, t=2, p=1 (the default; OWASP's first recommendation)"
PAGELOAD_FANOUT = 10


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_duration(s):
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*", s)
    if not m:
        raise SystemExit(f"BENCH_DURATION: cannot parse {s!r} (e.g. 10s, 3s, 1m)")
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "ms" else v * 60 if m.group(2) == "m" else v


# ---------------------------------------------------------------------------------------------
# Processes: everything started is remembered and stopped by pid (its own process group).

PROCS = []


def spawn(args, env=None, stdout=None, stderr=None, cwd=None):
    p = subprocess.Popen(
        args,
        env=env,
        cwd=cwd,
        stdout=stdout if stdout is not None else subprocess.DEVNULL,
        stderr=stderr if stderr is not None else subprocess.DEVNULL,
        start_new_session=True,
    )
    PROCS.append(p)
    return p


def stop(p, grace=10):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
    if p in PROCS:
        PROCS.remove(p)


def stop_all():
    for p in list(PROCS):
        stop(p)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])
    return out


# ---------------------------------------------------------------------------------------------
# HTTP (stdlib only) with just enough cookie handling.


class Http:
    def __init__(self, base):
        self.base = base
        self.cookies = {}

    def call(self, method, path, body=None, headers=None, expect=200):
        h = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        h.update(headers or {})
        req = urllib.request.Request(self.base + path, data=data, headers=h, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, hdrs, raw = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, hdrs, raw = e.code, e.headers, e.read()
        for sc in hdrs.get_all("Set-Cookie") or []:
            name, _, rest = sc.partition("=")
            value = rest.split(";", 1)[0]
            if value and "max-age=0" not in sc.lower():
                self.cookies[name.strip()] = value
            else:
                self.cookies.pop(name.strip(), None)
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = raw.decode(errors="replace")
        if expect is not None and status != expect:
            raise RuntimeError(f"{method} {self.base}{path}: HTTP {status} {doc!r:.300}")
        return doc


def wait_http(base, path="/healthz", timeout=60, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(base + path, timeout=2) as r:
                if r.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{base}{path} did not answer within {timeout}s")


# ---------------------------------------------------------------------------------------------
# PostgreSQL (psql for databases, psycopg for bulk loads) and Redis (a tiny RESP client).


def pg_url_with_db(url, db):
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + db, u.query, ""))


def psql(url, sql):
    return subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout


def pg_reachable(url):
    if not shutil.which("psql"):
        return False
    try:
        return psql(url, "SELECT 1").strip() == "1"
    except (subprocess.SubprocessError, OSError):
        return False


class PgDatabases:
    """Throwaway databases on the machine's PostgreSQL, dropped at the end."""

    def __init__(self, admin_url):
        self.admin = admin_url
        self.names = []

    def create(self, label):
        name = f"sekisho_bench_{label}_{secrets.token_hex(4)}"
        psql(self.admin, f"CREATE DATABASE {name}")
        self.names.append(name)
        return pg_url_with_db(self.admin, name)

    def drop(self, url):
        name = urllib.parse.urlsplit(url).path.lstrip("/")
        psql(self.admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if name in self.names:
            self.names.remove(name)

    def drop_all(self):
        for name in list(self.names):
            try:
                psql(self.admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            except subprocess.SubprocessError as e:
                log(f"could not drop database {name}: {e}")
            self.names.remove(name)


class Redis:
    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.addr = (u.hostname or "127.0.0.1", u.port or 6379)
        self.db = int(u.path.lstrip("/") or 0)
        self.sock = socket.create_connection(self.addr, timeout=30)
        self.buf = b""
        if self.db:
            self.cmd("SELECT", self.db)

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        return b"".join(out)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RuntimeError("redis: " + rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode()
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError(f"redis: unexpected reply {line!r}")

    def cmd(self, *args):
        self.sock.sendall(self.encode(*args))
        return self.reply()

    def pipeline(self, commands, batch=5000):
        for i in range(0, len(commands), batch):
            chunk = commands[i : i + batch]
            self.sock.sendall(b"".join(self.encode(*c) for c in chunk))
            for _ in chunk:
                self.reply()

    def delete_prefix(self, prefix):
        cursor, n = "0", 0
        while True:
            cursor, keys = self.cmd("SCAN", cursor, "MATCH", prefix + ":*", "COUNT", 1000)
            if keys:
                n += self.cmd("DEL", *keys)
            if cursor == "0":
                return n


def redis_reachable(url):
    try:
        return Redis(url).cmd("PING") == "PONG"
    except (OSError, RuntimeError):
        return False


# ---------------------------------------------------------------------------------------------
# The servers.


class ServerProcess:
    """A server process started by this script, with the throwaway database it may own."""

    def stop(self):
        if self.proc:
            stop(self.proc)
            self.proc = None
            self.base = None

    def destroy(self):
        self.stop()
        if self.pg_url:
            self.ctx.pg.drop(self.pg_url)
            self.pg_url = None


class Sekisho(ServerProcess):
    """One sekisho server process on a private data dir / database / Redis prefix."""

    def __init__(self, ctx, name, backend, bin=None):
        self.ctx, self.name, self.backend = ctx, name, backend
        self.bin = bin or ctx.sekisho_bin
        self.dir = ctx.work / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.signing_key = secrets.token_urlsafe(48)
        self.prefix = f"sekisho-bench-{secrets.token_hex(6)}"
        self.pg_url = None
        env = {
            "SEKISHO_SERVER__DATA_DIR": str(self.dir),
            "SEKISHO_JWT__SIGNING_KEY": self.signing_key,
            # Longer than one benchmark run; lifetimes do not change the per-request cost.
            "SEKISHO_JWT__ACCESS_TOKEN_LIFETIME": "1h",
            "SEKISHO_SESSIONS__KEY_PREFIX": self.prefix,
            "SEKISHO_LOG": "warn",
        }
        if backend == "sqlite":
            env["SEKISHO_DATABASE__URL"] = f"sqlite://{self.dir}/sekisho.db"
            env["SEKISHO_SESSIONS__STORE"] = "database"
        else:
            self.pg_url = ctx.pg.create(name.replace("-", "_"))
            env["SEKISHO_DATABASE__URL"] = self.pg_url
            env["SEKISHO_SESSIONS__STORE"] = (
                ctx.redis_url if backend == "postgres+redis" else "database"
            )
        self.env = env
        self.proc = None
        self.base = None

    def full_env(self, extra=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("SEKISHO_")}
        e.update(self.env)
        e.update(extra or {})
        return e

    def cli(self, args, stdin=None, extra=None):
        return subprocess.run(
            [str(self.bin), *args],
            env=self.full_env(extra),
            input=stdin,
            capture_output=True,
            text=True,
            check=True,
            cwd=self.dir,
            timeout=120,
        ).stdout

    def start(self, extra=None):
        out = open(self.dir / "stdout.log", "ab")
        err = open(self.dir / "stderr.log", "ab")
        env = self.full_env({"SEKISHO_SERVER__BIND": "127.0.0.1:0", **(extra or {})})
        self.proc = spawn(
            [str(self.bin), "serve"], env=env, stdout=subprocess.PIPE, stderr=err,
            cwd=self.dir,
        )
        deadline = time.time() + 60
        line = b""
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            out.write(line)
            m = re.search(rb"sekisho listening on (http://\S+)", line)
            if m:
                self.base = m.group(1).decode()
                break
        if not self.base:
            stop(self.proc)
            raise RuntimeError(f"{self.name}: sekisho did not start (see {self.dir}/stderr.log)")
        # Keep draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=lambda: shutil.copyfileobj(self.proc.stdout, out), daemon=True).start()
        wait_http(self.base, proc=self.proc)
        return self

    def destroy(self):
        super().destroy()
        if self.backend == "postgres+redis":
            try:
                Redis(self.ctx.redis_url).delete_prefix(self.prefix)
            except (OSError, RuntimeError) as e:
                log(f"{self.name}: could not delete Redis keys {self.prefix}:*: {e}")



class Reference(ServerProcess):
    """The Django + DRF + simplejwt project in bench/reference under gunicorn."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.name = "reference"
        self.backend = "postgres" if ctx.pg_ok else "sqlite"
        self.dir = ctx.work / "reference"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pg_url = ctx.pg.create("django") if ctx.pg_ok else None
        self.env = {
            "DJANGO_SETTINGS_MODULE": "refproj.settings",
            "BENCH_DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "BENCH_DJANGO_DB": self.pg_url or str(self.dir / "db.sqlite3"),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        self.proc = None
        self.base = None

    def full_env(self, extra=None):
        e = dict(os.environ)
        e.update(self.env)
        e.update(extra or {})
        return e

    def manage(self, *args, extra=None):
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            env=self.full_env(extra),
            cwd=BENCH / "reference",
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        ).stdout

    def start(self, extra=None):
        port = free_port()
        err = open(self.dir / "gunicorn.log", "ab")
        self.proc = spawn(
            [
                sys.executable, "-m", "gunicorn", "refproj.wsgi:application",
                "--workers", str(self.ctx.gunicorn_workers), "--worker-class", "sync",
                "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
                "--backlog", "2048", "--timeout", "120",
            ],
            env=self.full_env(extra),
            cwd=BENCH / "reference",
            stderr=err,
            stdout=err,
        )
        self.base = f"http://127.0.0.1:{port}"
        wait_http(self.base, proc=self.proc)
        return self



# ---------------------------------------------------------------------------------------------
# Load generation.


def wrk_result(res):
    res["errors_total"] = sum(res["errors"].values())
    if res.get("exhausted") and res.get("active_rps", 0) > 0:
        # A refresh pool ran out before the end: wrk divides by the whole duration, so take the
        # rate over the span the threads were really refreshing (recorded by refresh.lua).
        res["rps_whole_run"] = res["rps"]
        res["rps"] = res["active_rps"]
    return res


def run_wrk(ctx, base, script, path="/", env=None, duration=None, connections=None,
            threads=None, timeout="10s"):
    duration = duration or ctx.duration
    connections = connections or ctx.connections
    threads = threads or ctx.threads
    e = dict(os.environ)
    e.update({"BENCH_LUA": str(LUA), "BENCH_THREADS": str(threads)})
    e.update(env or {})
    args = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--timeout", timeout,
        "-s", str(LUA / script), base + path,
    ]
    r = subprocess.run(args, env=e, capture_output=True, text=True, timeout=duration + 120)
    for line in r.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return wrk_result(json.loads(line[len("BENCH_JSON "):]))
    raise RuntimeError(f"wrk failed ({r.returncode}): {r.stdout[-2000:]} {r.stderr[-2000:]}")


def spawn_wrk(ctx, base, script, path, env, duration, connections, threads, timeout, out):
    e = dict(os.environ)
    e.update({"BENCH_LUA": str(LUA), "BENCH_THREADS": str(threads)})
    e.update(env or {})
    args = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--timeout", timeout,
        "-s", str(LUA / script), base + path,
    ]
    return spawn(args, env=e, stdout=out)


def parse_wrk_file(path):
    for line in Path(path).read_text().splitlines():
        if line.startswith("BENCH_JSON "):
            return wrk_result(json.loads(line[len("BENCH_JSON "):]))
    raise RuntimeError(f"no wrk summary in {path}")


def load_tool(ctx, *args, timeout=900):
    r = subprocess.run(
        [str(ctx.load_bin), *args], capture_output=True, text=True, timeout=timeout
    )
    if r.returncode != 0:
        raise RuntimeError(f"sekisho-load {args[0]} failed: {r.stderr[-2000:]}")
    return r


def run_pageload(ctx, base, tokens_file):
    r = load_tool(
        ctx, "pageload", "--base", base, "--tokens", str(tokens_file),
        "--users", str(PAGELOAD_USERS), "--fanout", str(PAGELOAD_FANOUT),
        "--seconds", str(ctx.duration), timeout=ctx.duration + 120,
    )
    for line in r.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            d = json.loads(line[len("BENCH_JSON "):])
            return {
                "rps": d["pages_per_s"],
                "requests_per_s": d["requests_per_s"],
                "p50_us": d["p50_us"],
                "p90_us": d["p90_us"],
                "p99_us": d["p99_us"],
                "max_us": d["max_us"],
                "requests": d["pages"],
                "errors_total": len(d["errors"]),
                "error_messages": d["errors"],
            }
    raise RuntimeError("sekisho-load pageload printed no result")


def make_pool(ctx, base, count, out):
    load_tool(
        ctx, "pool", "--base", base, "--username", POOL_USER, "--users", str(POOL_USERS),
        "--password", POOL_PASSWORD, "--count", str(count), "--concurrency",
        str(ctx.connections), "--out", str(out),
    )
    return [t for t in out.read_text().splitlines() if t]


# ---------------------------------------------------------------------------------------------
# Sides: a started server plus the credentials each workload needs.

USER, PASSWORD = "bench", "a long benchmark password"
POOL_USER, POOL_PASSWORD = "pool", "a pool password, hashed cheaply"
POOL_USERS = 16  # pool logins are spread over pool0..pool15 (no single hot user row)


class Side:
    def __init__(self, label, server):
        self.label, self.server = label, server
        self.pools = []  # per round: refresh-token pool file for the refresh workload
        self.page_tokens = []  # per round: file with PAGELOAD_USERS refresh tokens
        self.results = {}  # workload -> list of per-round results


def prepare_pools(ctx, side, probe_rate_hint):
    """Obtains the refresh tokens every round needs, over HTTP (one login each), while the server
    runs with a cheap password hash for the pool users only; it is restarted with the real
    settings afterwards. Pool size per round = the refresh rate of a short probe run on the
    warmed-up server x duration x BENCH_POOL_MARGIN (1.4)."""
    base = side.server.base
    rounds = ctx.rounds
    run_wrk(ctx, base, "get.lua", "/healthz", env={"BENCH_PATH": "/healthz"}, duration=1)
    probe_s = 2
    probe_n = int(probe_rate_hint * probe_s)
    probe_file = ctx.work / f"{side.label}-probe.txt"
    # How fast logins over HTTP make tokens (for the choice below), on a sample of up to 2,000.
    http_n = min(probe_n, 2000)
    t0 = time.time()
    probe_tokens = make_pool(ctx, base, http_n, probe_file)
    obtain_rate = http_n / max(0.001, time.time() - t0)
    if probe_n > http_n:
        # The rest of the probe pool the fast way, so that the probe itself cannot run dry.
        probe_tokens += direct_pool(ctx, side.server, probe_n - http_n)
        probe_file.write_text("\n".join(probe_tokens) + "\n")
    quiesce(base)
    probe = run_wrk(ctx, base, "refresh.lua", "/api/token/refresh/",
                    env={"BENCH_POOL": str(probe_file)}, duration=probe_s)
    rate = probe["rps"] * (3 if probe["exhausted"] else 1.0)
    per_round = int(math.ceil(rate * ctx.duration * ctx.pool_margin)) + 50
    need = (per_round + PAGELOAD_USERS) * rounds
    projected = need / obtain_rate
    source = ctx.pool_source
    if not isinstance(side.server, Sekisho):
        source = "http"
    elif source == "auto":
        source = "http" if projected <= ctx.pool_http_budget else "direct"
    side.pool_source = source
    side.pool_note = (f"{need:,} tokens; logins over HTTP ran at {obtain_rate:,.0f}/s "
                      f"(projected {projected:.0f}s)")
    log(f"{side.label}: refresh probe {probe['rps']:.0f}/s{' (probe pool ran out)' if probe['exhausted'] else ''}"
        f" -> pool of {per_round} per round, {need} tokens; HTTP logins at {obtain_rate:.0f}/s would "
        f"take {projected:.0f}s -> {source}")
    t0 = time.time()
    if source == "http":
        tokens = make_pool(ctx, base, need, ctx.work / f"{side.label}-all.txt")
    else:
        tokens = direct_pool(ctx, side.server, need)
    log(f"{side.label}: pool of {len(tokens)} ready in {time.time() - t0:.1f}s ({source})")
    for r in range(rounds):
        chunk = tokens[r * (per_round + PAGELOAD_USERS):(r + 1) * (per_round + PAGELOAD_USERS)]
        pf = ctx.work / f"{side.label}-pool-{r}.txt"
        pf.write_text("\n".join(chunk[:per_round]) + "\n")
        tf = ctx.work / f"{side.label}-page-{r}.txt"
        tf.write_text("\n".join(chunk[per_round:]) + "\n")
        side.pools.append(pf)
        side.page_tokens.append(tf)


def new_families(user_ids, n, now_s, now_ms):
    """Family rows shaped like the ones `POST /api/token/` creates (sekisho-core issue_pair)."""
    return [
        (secrets.token_hex(16), user_ids[i % len(user_ids)], secrets.token_hex(16), now_s,
         now_s + 86400, now_ms, now_s + 30 * 86400)
        for i in range(n)
    ]


def refresh_token_for(server, family):
    fid, uid, jti, iat, exp = family[:5]
    return mint_refresh(server.signing_key, {"token_type": "refresh", "exp": exp, "iat": iat,
                                             "jti": jti, "user_id": str(uid), "fid": fid})


def user_ids(server, prefix):
    sql = "SELECT id FROM users WHERE username LIKE ? ORDER BY id"
    if server.backend == "sqlite":
        import sqlite3

        db = sqlite3.connect(server.dir / "sekisho.db", timeout=30)
        ids = [r[0] for r in db.execute(sql, (prefix + "%",))]
        db.close()
        return ids
    import psycopg

    with psycopg.connect(server.pg_url) as db:
        return [r[0] for r in db.execute(sql.replace("?", "%s"), (prefix + "%",))]


def store_rows(ctx, server, users=(), sessions=(), families=()):
    """Writes rows straight into the server's store with the schema of its migrations (SQL) or
    the key layout of crates/sekisho-store/src/redis_store.rs (Redis)."""
    sess_sql = ("INSERT INTO sessions (id_hash, public_id, user_id, created_at_ms, last_seen_ms, "
                "idle_expires_at_ms, absolute_expires_at_ms, user_agent, ip) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?)")
    fam_sql = ("INSERT INTO refresh_families (id, user_id, current_jti, current_iat, current_exp, "
               "created_at_ms, absolute_exp) VALUES (?, ?, ?, ?, ?, ?, ?)")
    user_sql = "INSERT INTO users (username, password, date_joined) VALUES (?, ?, ?)"
    in_redis = server.backend == "postgres+redis"
    if server.backend == "sqlite":
        import sqlite3

        db = sqlite3.connect(server.dir / "sekisho.db", timeout=30)
        with db:
            db.executemany(user_sql, users)
            db.executemany(sess_sql, sessions)
            db.executemany(fam_sql, families)
        db.close()
    else:
        import psycopg

        with psycopg.connect(server.pg_url) as db:
            with db.cursor() as cur:
                if users:
                    with cur.copy("COPY users (username, password, date_joined) FROM STDIN") as cp:
                        for row in users:
                            cp.write_row(row)
                if sessions and not in_redis:
                    with cur.copy("COPY sessions (id_hash, public_id, user_id, created_at_ms, "
                                  "last_seen_ms, idle_expires_at_ms, absolute_expires_at_ms, "
                                  "user_agent, ip) FROM STDIN") as cp:
                        for row in sessions:
                            cp.write_row(row)
                if families and not in_redis:
                    with cur.copy("COPY refresh_families (id, user_id, current_jti, current_iat, "
                                  "current_exp, created_at_ms, absolute_exp) FROM STDIN") as cp:
                        for row in families:
                            cp.write_row(row)
            db.commit()
    if in_redis and (sessions or families):
        r = Redis(ctx.redis_url)
        p = server.prefix
        cmds, index_until = [], {}
        for (hid, pub, uid, cr, seen, idle, ab, ua, ip) in sessions:
            k = f"{p}:sess:{{{hid}}}"
            cmds.append(("HSET", k, "public", pub, "user", uid, "created", cr, "seen", seen,
                         "idle", idle, "abs", ab, "ua", ua, "ip", ip))
            cmds.append(("PEXPIREAT", k, min(idle, ab)))
            cmds.append(("SADD", f"{p}:usess:{{{uid}}}", hid))
            index_until[f"{p}:usess:{{{uid}}}"] = ab // 1000 + 1
        for (fid, uid, jti, iat, exp, cr, ab) in families:
            k = f"{p}:fam:{{{fid}}}"
            cmds.append(("HSET", k, "user", uid, "cur", jti, "iat", iat, "exp", exp,
                         "created", cr, "abs", ab))
            cmds.append(("EXPIREAT", k, exp + 1))
            cmds.append(("SADD", f"{p}:ufam:{{{uid}}}", fid))
            index_until[f"{p}:ufam:{{{uid}}}"] = ab + 1
        for k, until in index_until.items():
            cmds.append(("EXPIREAT", k, until, "GT"))
            cmds.append(("EXPIREAT", k, until, "NX"))
        r.pipeline(cmds)


def direct_pool(ctx, server, count):
    """Refresh tokens for families written straight into the store: the same rows and the same
    tokens `POST /api/token/` would produce, without a login each."""
    now_ms = int(time.time() * 1000)
    fams = new_families(user_ids(server, POOL_USER), count, now_ms // 1000, now_ms)
    store_rows(ctx, server, families=fams)
    return [refresh_token_for(server, f) for f in fams]


def credentials(side):
    """One access token, one session (cookie header) and one anonymous CSRF token."""
    h = Http(side.server.base)
    pair = h.call("POST", "/api/token/", {"username": USER, "password": PASSWORD})
    side.access = pair["access"]
    s = Http(side.server.base)
    s.call("GET", "/api/auth/csrf/")
    csrf = s.cookies["csrftoken"]
    s.call("POST", "/api/auth/login/", {"username": USER, "password": PASSWORD},
           headers={"X-CSRFToken": csrf})
    side.cookie = f"sessionid={s.cookies['sessionid']}; csrftoken={s.cookies['csrftoken']}"
    a = Http(side.server.base)
    a.call("GET", "/api/auth/csrf/")
    side.anon_csrf = a.cookies["csrftoken"]
    # Sanity: each workload's request succeeds once before it is timed.
    Http(side.server.base).call("GET", "/api/auth/me/",
                                headers={"Authorization": f"Bearer {side.access}"})
    Http(side.server.base).call("GET", "/api/auth/me/", headers={"Cookie": side.cookie})
    Http(side.server.base).call("POST", "/api/token/verify/", {"token": side.access})


def setup_sekisho(ctx, label, backend, bin=None):
    s = Sekisho(ctx, label, backend, bin)
    s.cli(["migrate"])
    s.cli(["user", "create", USER, "--password-stdin"], stdin=PASSWORD + "\n")
    cheap = {"SEKISHO_PASSWORDS__ARGON2_MEMORY_KIB": "8", "SEKISHO_PASSWORDS__ARGON2_ITERATIONS": "1"}
    for i in range(POOL_USERS):
        s.cli(["user", "create", f"{POOL_USER}{i}", "--password-stdin"], stdin=POOL_PASSWORD + "\n",
              extra=cheap)
    side = Side(label, s)
    s.start(extra=cheap)
    log(f"{label}: pool phase at {s.base}")
    prepare_pools(ctx, side, 25000)
    s.stop()
    s.start()
    log(f"{label}: sekisho ({backend}) at {s.base}")
    credentials(side)
    return side


def setup_reference(ctx):
    r = Reference(ctx)
    r.manage("migrate", "--noinput")
    ctx.facts["django_hasher"] = r.manage("benchuser", PASSWORD, USER).strip()
    cheap = {"BENCH_DJANGO_CHEAP_HASHER": "1"}
    r.manage("benchuser", POOL_PASSWORD, *[f"{POOL_USER}{i}" for i in range(POOL_USERS)], extra=cheap)
    side = Side("reference", r)
    r.start(extra=cheap)
    log(f"reference: pool phase at {r.base}")
    prepare_pools(ctx, side, 400)
    r.stop()
    r.start()
    log(f"reference: Django ({r.backend}, gunicorn {ctx.gunicorn_workers} sync workers) at {r.base}")
    credentials(side)
    return side


def quiesce(base, timeout=300):
    """Waits until the server has worked off what the previous run left queued (a client that
    stops does not stop requests already accepted, e.g. slow logins in gunicorn's backlog):
    two consecutive quick answers of the floor endpoint, then a short pause."""
    deadline = time.time() + timeout
    quick = 0
    while time.time() < deadline and quick < 2:
        t0 = time.time()
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=timeout) as r:
                r.read()
        except (OSError, urllib.error.URLError):
            pass
        quick = quick + 1 if time.time() - t0 < 0.05 else 0
        time.sleep(0.05)
    time.sleep(0.3)


def run_workload(ctx, side, workload, rnd):
    quiesce(side.server.base)
    base = side.server.base
    if workload == "floor":
        return run_wrk(ctx, base, "get.lua", "/healthz", env={"BENCH_PATH": "/healthz"})
    if workload == "bearer":
        return run_wrk(ctx, base, "bearer.lua", "/api/auth/me/",
                       env={"BENCH_PATH": "/api/auth/me/", "BENCH_ACCESS": side.access})
    if workload == "session":
        return run_wrk(ctx, base, "session.lua", "/api/auth/me/",
                       env={"BENCH_PATH": "/api/auth/me/", "BENCH_COOKIE": side.cookie})
    if workload == "verify":
        return run_wrk(ctx, base, "verify.lua", "/api/token/verify/",
                       env={"BENCH_ACCESS": side.access})
    if workload == "refresh":
        return run_wrk(ctx, base, "refresh.lua", "/api/token/refresh/",
                       env={"BENCH_POOL": str(side.pools[rnd])})
    if workload == "login":
        return run_wrk(ctx, base, "login.lua", "/api/auth/login/", timeout="60s",
                       env={"BENCH_CSRF": side.anon_csrf, "BENCH_USERNAME": USER,
                            "BENCH_PASSWORD": PASSWORD})
    if workload == "pageload":
        return run_pageload(ctx, base, side.page_tokens[rnd])
    raise ValueError(workload)


def median_result(runs):
    keys = ["rps", "p50_us", "p99_us"]
    out = {k: statistics.median(r[k] for r in runs) for k in keys}
    out["errors_total"] = sum(r["errors_total"] for r in runs)
    out["requests_total"] = sum(r["requests"] for r in runs)
    out["exhausted"] = any(r.get("exhausted") for r in runs)
    if "requests_per_s" in runs[0]:
        out["requests_per_s"] = statistics.median(r["requests_per_s"] for r in runs)
    out["runs"] = runs
    return out


def compare(ctx, sides):
    for s in sides:
        log(f"warm-up {s.label}")
        for w in ("floor", "bearer"):
            if w in ctx.workloads:
                saved = ctx.duration
                ctx.duration = 1
                try:
                    run_workload(ctx, s, w, 0)
                finally:
                    ctx.duration = saved
    for rnd in range(ctx.rounds):
        for w in ctx.workloads:
            for s in sides:
                # Every server, not only the next one, must have worked off its backlog: the
                # reference's queued logins (seconds of PBKDF2 each) otherwise run on into the
                # next side's timed run and make whichever side follows it look slower.
                for other in sides:
                    if other is not s:
                        quiesce(other.server.base)
                res = run_workload(ctx, s, w, rnd)
                s.results.setdefault(w, []).append(res)
                bad = f" ERRORS {res['errors_total']}" if res["errors_total"] else ""
                ex = " POOL EXHAUSTED" if res.get("exhausted") else ""
                log(f"round {rnd + 1}/{ctx.rounds} {w:9s} {s.label:22s} {res['rps']:10.1f}/s "
                    f"p50 {res['p50_us'] / 1000:8.2f} ms p99 {res['p99_us'] / 1000:8.2f} ms{bad}{ex}")
    out = {s.label: {w: median_result(rs) for w, rs in s.results.items()} for s in sides}
    # Ratios are taken within each round (the two runs minutes apart at most), then the median
    # of the rounds: drift in the machine's background load cancels out better than in a ratio
    # of two medians.
    ref = next((s for s in sides if s.label == "reference"), None)
    for s in sides:
        floor_runs = s.results.get("floor")
        for w, runs in s.results.items():
            m = out[s.label][w]
            if floor_runs:
                key = "requests_per_s" if w == "pageload" else "rps"
                m["of_floor"] = statistics.median(
                    r[key] / f["rps"] for r, f in zip(runs, floor_runs) if f["rps"])
            if ref is not None and s is not ref and w in ref.results:
                m["x_ref"] = statistics.median(
                    r["rps"] / x["rps"] for r, x in zip(runs, ref.results[w]) if x["rps"])
    return out


# ---------------------------------------------------------------------------------------------
# Login flood: p99 of bearer and session requests with and without wrong-password logins.


def flood(ctx, side):
    """Twice: with the default configuration (login throttling answers a flood from one address
    with 429 before hashing), and with throttling disabled so that every wrong password is
    really hashed. Each time: p99 of bearer and session calls alone, then under the flood."""
    d = min(ctx.duration, ctx.flood_duration)

    def measure(tag, with_flood):
        base = side.server.base
        quiesce(base)
        files = {k: ctx.work / f"flood-{side.label}-{tag}-{k}-{with_flood}.txt"
                 for k in ("bearer", "session", "flood")}
        procs = []
        if with_flood == "login":
            procs.append(spawn_wrk(ctx, base, "flood.lua", "/api/token/", {"BENCH_USERNAME": USER},
                                   d + 3, 64, 1, "60s", open(files["flood"], "w")))
            time.sleep(1.5)
        elif with_flood == "floor":
            procs.append(spawn_wrk(ctx, base, "get.lua", "/healthz", {"BENCH_PATH": "/healthz"},
                                   d + 3, 64, 1, "60s", open(files["flood"], "w")))
            time.sleep(1.5)
        measured = [
            spawn_wrk(ctx, base, "bearer.lua", "/api/auth/me/",
                      {"BENCH_PATH": "/api/auth/me/", "BENCH_ACCESS": side.access}, d, 8, 1, "10s",
                      open(files["bearer"], "w")),
            spawn_wrk(ctx, base, "session.lua", "/api/auth/me/",
                      {"BENCH_PATH": "/api/auth/me/", "BENCH_COOKIE": side.cookie}, d, 8, 1, "10s",
                      open(files["session"], "w")),
        ]
        threads = None
        if with_flood and isinstance(side.server, Sekisho):
            time.sleep(d / 2)
            threads = rss_kib(side.server.proc.pid).get("Threads")
        for p in measured + procs:
            p.wait(timeout=d + 180)
            PROCS.remove(p)
        r = {k: parse_wrk_file(files[k]) for k in ("bearer", "session")}
        if with_flood:
            r["flood"] = parse_wrk_file(files["flood"])
            r["server_threads"] = threads
        return r

    configs = [("default", None)]
    if isinstance(side.server, Sekisho):
        configs.append(("throttle off", {"SEKISHO_THROTTLE__MAX_FAILURES_PER_ACCOUNT": "0",
                                         "SEKISHO_THROTTLE__MAX_FAILURES_PER_IP": "0"}))
    out = {}
    for tag, extra in configs:
        if extra is not None:
            side.server.stop()
            side.server.start(extra=extra)
        idle = measure(tag, None)
        flooded = measure(tag, "login")
        control = measure(tag, "floor") if extra is None else None
        res = {}
        for k in ("bearer", "session"):
            res[k] = {
                "idle_p99_us": idle[k]["p99_us"],
                "flood_p99_us": flooded[k]["p99_us"],
                "ratio": flooded[k]["p99_us"] / max(1, idle[k]["p99_us"]),
                "idle_rps": idle[k]["rps"],
                "flood_rps": flooded[k]["rps"],
                "errors": idle[k]["errors_total"] + flooded[k]["errors_total"],
            }
            if control:
                res[k]["control_p99_us"] = control[k]["p99_us"]
                res[k]["control_ratio"] = control[k]["p99_us"] / max(1, idle[k]["p99_us"])
        f = flooded["flood"]
        res["flood"] = {"attempts_per_s": f["rps"], "completed": f["requests"],
                        "statuses": f.get("statuses", {}),
                        "server_threads": flooded.get("server_threads")}
        if control:
            res["control"] = {"requests_per_s": control["flood"]["rps"]}
        out[tag] = res
        log(f"flood {side.label} ({tag}): bearer p99 {res['bearer']['idle_p99_us'] / 1000:.2f} -> "
            f"{res['bearer']['flood_p99_us'] / 1000:.2f} ms ({res['bearer']['ratio']:.2f}x), session p99 "
            f"{res['session']['idle_p99_us'] / 1000:.2f} -> {res['session']['flood_p99_us'] / 1000:.2f} ms "
            f"({res['session']['ratio']:.2f}x); {f['rps']:.0f} wrong-password logins/s, statuses "
            f"{f.get('statuses')}")
    return out


# ---------------------------------------------------------------------------------------------
# Memory: RSS of a server holding N sessions and N refresh families.


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def mint_refresh(key, claims):
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(key.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(sig)}"


def count_rows(ctx, server):
    if server.backend == "postgres+redis":
        r = Redis(ctx.redis_url)
        counts = []
        for kind in ("sess", "fam"):
            cursor, found = "0", 0
            while True:
                cursor, keys = r.cmd("SCAN", cursor, "MATCH", f"{server.prefix}:{kind}:*", "COUNT", 5000)
                found += len(keys)
                if cursor == "0":
                    break
            counts.append(found)
        return tuple(counts)
    q = ("SELECT count(*) FROM sessions", "SELECT count(*) FROM refresh_families")
    if server.backend == "sqlite":
        import sqlite3

        db = sqlite3.connect(server.dir / "sekisho.db", timeout=30)
        out = tuple(db.execute(x).fetchone()[0] for x in q)
        db.close()
        return out
    import psycopg

    with psycopg.connect(server.pg_url) as db:
        return tuple(db.execute(x).fetchone()[0] for x in q)


def memory(ctx, backend):
    label = f"memory-{backend.replace('+', '-')}"
    n = ctx.memory_rows
    s = Sekisho(ctx, label, backend)
    try:
        s.cli(["migrate"])
        now_ms = int(time.time() * 1000)
        now_s = now_ms // 1000
        seed = secrets.token_hex(8)
        nusers = 1000

        def h(*parts):
            return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()

        users = [(f"mem{i}", "!", now_ms) for i in range(nusers)]
        cookies, sessions, families = [], [], []
        for i in range(n):
            cookie = h(seed, "s", i)
            uid = i % nusers + 1
            sessions.append((hashlib.sha256(cookie.encode()).hexdigest(), h(seed, "p", i)[:32], uid,
                             now_ms, now_ms, now_ms + 14 * 86400_000, now_ms + 30 * 86400_000,
                             "bench", "127.0.0.1"))
            cookies.append(cookie)
            families.append((h(seed, "f", i)[:32], uid, h(seed, "j", i)[:32], now_s, now_s + 86400,
                             now_ms, now_s + 30 * 86400))
        t0 = time.time()
        store_rows(ctx, s, users=users, sessions=sessions, families=families)
        counted = count_rows(ctx, s)
        load_s = time.time() - t0
        log(f"{label}: stored {counted[0]} sessions and {counted[1]} refresh families in {load_s:.1f}s")

        s.start()
        pid = s.proc.pid
        started = rss_kib(pid)
        # Touch a sample over HTTP: each request reads a different stored session or rotates a
        # different stored family.
        sample_n = min(n, ctx.memory_sample)
        cookie_file = ctx.work / f"{label}-cookies.txt"
        cookie_file.write_text("\n".join(cookies[:sample_n]) + "\n")
        tokens = [refresh_token_for(s, f) for f in families[:sample_n]]
        pool_file = ctx.work / f"{label}-tokens.txt"
        pool_file.write_text("\n".join(tokens) + "\n")
        Http(s.base).call("GET", "/api/auth/me/", headers={"Cookie": f"sessionid={cookies[0]}"})
        Http(s.base).call("POST", "/api/token/refresh/", {"refresh": tokens[-1]})
        touch_s = run_wrk(ctx, s.base, "cycle_session.lua", "/api/auth/me/",
                          env={"BENCH_PATH": "/api/auth/me/", "BENCH_COOKIES": str(cookie_file)},
                          duration=min(ctx.duration, 3))
        touch_r = run_wrk(ctx, s.base, "refresh.lua", "/api/token/refresh/",
                          env={"BENCH_POOL": str(pool_file)}, duration=min(ctx.duration, 3) + 5)
        after = rss_kib(pid)
        res = {
            "backend": backend,
            "sessions": counted[0],
            "families": counted[1],
            "stored_by": "rows inserted directly (same schema / key layout as the server's)",
            "touched_sessions_requests": touch_s["requests"],
            "touched_sessions_errors": touch_s["errors_total"],
            "touched_families": touch_r["requests"],
            "touched_families_errors": touch_r["errors_total"],
            "rss_start_kib": started["VmRSS"],
            "rss_kib": after["VmRSS"],
            "hwm_kib": after["VmHWM"],
        }
        log(f"{label}: RSS {after['VmRSS'] / 1024:.1f} MiB (peak {after['VmHWM'] / 1024:.1f} MiB; "
            f"{started['VmRSS'] / 1024:.1f} MiB at start)")
        return res
    finally:
        s.destroy()


# ---------------------------------------------------------------------------------------------
# Report.


def machine_facts(ctx):
    def sh(*args):
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=30).stdout.strip()
        except OSError:
            return ""

    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    facts = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": socket.gethostname(),
        "nproc": sh("nproc"),
        "cpu": cpu,
        "memory": sh("free", "-h").splitlines()[1] if sh("free", "-h") else "",
        "kernel": platform.release(),
        "os": Path("/etc/debian_version").read_text().strip()
        if Path("/etc/debian_version").exists() else platform.platform(),
        "rustc": sh("rustc", "--version"),
        "python": platform.python_version(),
        "wrk": (sh("wrk", "-v") or "").splitlines()[0] if sh("wrk", "-v") else "",
        "sekisho_commit": sh("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"),
        "sekisho_tree_dirty": bool(sh("git", "-C", str(ROOT), "status", "--porcelain", "--", "crates")),
        "reference_packages": Path(BENCH / "requirements.txt").read_text().split("\n", 1)[1].strip()
        .replace("\n", ", "),
    }
    facts.update(ctx.facts)
    return facts


def fmt_rps(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def fmt_ms(us):
    ms = us / 1000
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:,.0f}"


def render(ctx, results, sides, flood_res, mem_res, facts):
    ref = results.get("reference", {})
    sk = [s.label for s in sides if s.label != "reference"]
    L = []
    L.append(f"## Benchmark run {facts['date']} on `{facts['host']}`")
    L.append("")
    L.append(f"- machine: {facts['nproc']} CPUs ({facts['cpu']}), memory `{facts['memory']}`, "
             f"Debian {facts['os']}, Linux {facts['kernel']}; load average "
             f"{' '.join(facts['loadavg_start'])} at the start, {' '.join(facts['loadavg_end'])} at the end "
             f"(other work on the machine adds noise); whole run {facts['elapsed_s'] // 60} min")
    L.append(f"- sekisho {facts['sekisho_commit']}{' (with uncommitted changes in crates/)' if facts['sekisho_tree_dirty'] else ''}, "
             f"{facts['rustc']}, release build; reference: {facts['reference_packages']} on Python "
             f"{facts['python']}, gunicorn {ctx.gunicorn_workers} sync workers, database "
             f"{facts['reference_db']}")
    L.append(f"- load: {facts['wrk']}, `-t{ctx.threads} -c{ctx.connections} -d{ctx.duration:g}s` on "
             f"127.0.0.1 for every side; {ctx.rounds} rounds interleaved (each round runs every "
             f"workload on every side in turn); medians of the rounds")
    L.append(f"- page load: {PAGELOAD_USERS} virtual users, each refreshing then firing "
             f"{PAGELOAD_FANOUT} parallel bearer `GET /api/auth/me/` (sekisho-load); req/s column = page loads/s")
    pool_notes = "; ".join(f"{x.label}: {'over HTTP (one login each)' if x.pool_source == 'http' else 'family rows written to the store and tokens signed by the bench, as `POST /api/token/` would (HTTP would have been too slow: ' + x.pool_note + ')'}"
                           for x in sides if getattr(x, "pool_source", None))
    if pool_notes:
        L.append(f"- refresh pools (single-use tokens, made before the timed runs): {pool_notes}")
    L.append(f"- password hashing — sekisho: {SEKISHO_HASH}; Django: "
             f"{facts.get('django_hasher', '?')} (PBKDF2-SHA256). Not equal work: the login rows "
             f"compare each stack at its own default")
    L.append("")
    head = "| workload | reference req/s | p50 ms | p99 ms |"
    sep = "| --- | ---: | ---: | ---: |"
    for label in sk:
        head += f" {label} req/s | p50 ms | p99 ms | × ref | of floor |"
        sep += " ---: | ---: | ---: | ---: | ---: |"
    L.append(head)
    L.append(sep)
    for w in ctx.workloads:
        r = ref.get(w)
        row = f"| {LABELS[w]} |"
        row += (f" {fmt_rps(r['rps'])} | {fmt_ms(r['p50_us'])} | {fmt_ms(r['p99_us'])} |"
                if r else " – | – | – |")
        for label in sk:
            x = results[label].get(w)
            if not x:
                row += " – | – | – | – | – |"
                continue
            ratio = f"{x['x_ref']:,.1f}×" if "x_ref" in x else "–"
            v = x.get("of_floor")
            of_floor = "–" if v is None else f"{v:.2f}" if v >= 0.01 else f"{v:.4f}"
            row += (f" {fmt_rps(x['rps'])} | {fmt_ms(x['p50_us'])} | {fmt_ms(x['p99_us'])} |"
                    f" {ratio} | {of_floor} |")
        L.append(row)
    L.append("")
    notes = []
    for label, ws in results.items():
        for w, x in ws.items():
            if x["errors_total"]:
                notes.append(f"{label} {w}: {x['errors_total']} failed requests over "
                             f"{x['requests_total']} (socket errors, timeouts or non-2xx)")
            short = [r for r in x["runs"] if r.get("exhausted")]
            if short:
                spans = ", ".join(f"{r.get('active_s', 0):.1f} s" for r in short)
                notes.append(f"{label} {w}: in {len(short)} round(s) the token pool ran out before "
                             f"the end; their rate is taken over the time it lasted ({spans})")
    L.append("req/s, p50 and p99: medians of the rounds. \"of floor\": the workload's req/s over the same "
             "server's `GET /healthz` req/s in the same round (for the page load: its HTTP requests/s, "
             "11 per page); \"× ref\": sekisho req/s over the reference's req/s in the same round; both "
             "the median of the rounds' ratios.")
    if notes:
        L.append("")
        L.append("Notes: " + "; ".join(notes) + ".")
    if flood_res:
        fd = min(ctx.duration, ctx.flood_duration)
        L.append("")
        L.append(f"Login flood: 64 connections of wrong-password `POST /api/token/` for the account `{USER}` "
                 f"while 8 bearer and 8 session connections measure `GET /api/auth/me/` ({fd:g}s), "
                 f"against the same measurement without the flood. \"default\": login throttling on (it "
                 f"answers 429 before hashing once an account or address has too many failures); "
                 f"\"throttle off\": `throttle.max_failures_per_account = 0`, "
                 f"`throttle.max_failures_per_ip = 0`, so every attempt is an Argon2id hash. Control: the "
                 f"same 64 connections flooding `GET /healthz` instead (what request volume alone does).")
        L.append("")
        L.append("| side | config | bearer p99 idle → flood | × | session p99 idle → flood | × | "
                 "wrong-password logins/s | answers | control: × under a `/healthz` flood (bearer, session) |")
        L.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
        for label, per_cfg in flood_res.items():
            for tag, f in per_cfg.items():
                b, s_ = f["bearer"], f["session"]
                answers = ", ".join(f"{n:,} × {code}" for code, n in f["flood"]["statuses"].items())
                control = (f"{b['control_ratio']:.2f}, {s_['control_ratio']:.2f} "
                           f"({fmt_rps(f['control']['requests_per_s'])} req/s)"
                           if "control_ratio" in b else "–")
                L.append(f"| {label} | {tag} | {fmt_ms(b['idle_p99_us'])} → {fmt_ms(b['flood_p99_us'])} ms | "
                         f"{b['ratio']:.2f} | {fmt_ms(s_['idle_p99_us'])} → {fmt_ms(s_['flood_p99_us'])} ms | "
                         f"{s_['ratio']:.2f} | {fmt_rps(f['flood']['attempts_per_s'])} | {answers} | {control} |")
    if mem_res:
        L.append("")
        L.append(f"Memory (VmRSS of the sekisho process holding {ctx.memory_rows:,} live sessions and "
                 f"{ctx.memory_rows:,} refresh families, stored directly in the backend with the server's "
                 f"schema / key layout, after reading {ctx.memory_sample:,} distinct sessions and rotating "
                 f"up to {ctx.memory_sample:,} distinct families over HTTP):")
        L.append("")
        L.append("| backend | RSS at start | RSS after the touches | peak (VmHWM) |")
        L.append("| --- | ---: | ---: | ---: |")
        for m in mem_res:
            L.append(f"| {m['backend']} | {m['rss_start_kib'] / 1024:.1f} MiB | {m['rss_kib'] / 1024:.1f} MiB | "
                     f"{m['hwm_kib'] / 1024:.1f} MiB |")
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------------------------------------


class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--sekisho", required=True, type=Path)
    ap.add_argument("--load", required=True, type=Path)
    ap.add_argument("--baseline", type=Path,
                    help="an earlier sekisho binary, run as the extra side before-sqlite")
    ap.add_argument("--out", default=str(BENCH / "results"), type=Path)
    a = ap.parse_args()

    ctx = Ctx()
    ctx.work, ctx.sekisho_bin, ctx.load_bin = a.work, a.sekisho, a.load
    ctx.duration = parse_duration(os.environ.get("BENCH_DURATION", "10s"))
    ctx.rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    ctx.connections = int(os.environ.get("BENCH_CONNECTIONS", "32"))
    ctx.threads = int(os.environ.get("BENCH_THREADS", "2"))
    ctx.gunicorn_workers = int(os.environ.get("BENCH_GUNICORN_WORKERS", str(2 * (os.cpu_count() or 2))))
    ctx.workloads = [w for w in os.environ.get("BENCH_WORKLOADS", ",".join(ALL_WORKLOADS)).split(",") if w]
    for w in ctx.workloads:
        if w not in ALL_WORKLOADS:
            raise SystemExit(f"BENCH_WORKLOADS: unknown workload {w!r}")
    ctx.parts = [p for p in os.environ.get("BENCH_PARTS", "compare,flood,memory").split(",") if p]
    ctx.memory_rows = int(os.environ.get("BENCH_MEMORY_ROWS", "100000"))
    ctx.memory_sample = int(os.environ.get("BENCH_MEMORY_SAMPLE", "10000"))
    ctx.flood_duration = parse_duration(os.environ.get("BENCH_FLOOD_DURATION", "6s"))
    ctx.pool_margin = float(os.environ.get("BENCH_POOL_MARGIN", "1.4"))
    ctx.pool_source = os.environ.get("BENCH_POOL_SOURCE", "auto")
    if ctx.pool_source not in ("auto", "http", "direct"):
        raise SystemExit("BENCH_POOL_SOURCE: auto, http or direct")
    ctx.pool_http_budget = float(os.environ.get("BENCH_POOL_HTTP_BUDGET", "45"))
    pg_admin = os.environ.get("SEKISHO_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
    ctx.redis_url = os.environ.get("SEKISHO_TEST_REDIS_URL", "redis://127.0.0.1:6379")
    ctx.pg_ok = pg_reachable(pg_admin)
    ctx.redis_ok = redis_reachable(ctx.redis_url)
    ctx.pg = PgDatabases(pg_admin)
    ctx.facts = {"reference_db": "PostgreSQL" if ctx.pg_ok else "SQLite"}
    log(f"PostgreSQL {'reachable' if ctx.pg_ok else 'NOT reachable'}, Redis "
        f"{'reachable' if ctx.redis_ok else 'NOT reachable'}; duration {ctx.duration:g}s, "
        f"{ctx.rounds} rounds, -t{ctx.threads} -c{ctx.connections}")

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    started = time.time()
    ctx.facts["loadavg_start"] = Path("/proc/loadavg").read_text().split()[:3]
    sides, results, flood_res, mem_res = [], {}, {}, []
    try:
        if "compare" in ctx.parts or "flood" in ctx.parts:
            sides.append(setup_reference(ctx))
            sides.append(setup_sekisho(ctx, "sekisho-sqlite", "sqlite"))
            if a.baseline:
                # The same workloads on an earlier build, in the same rounds: before/after
                # figures from one run (SQLite only, to keep the run short).
                sides.append(setup_sekisho(ctx, "before-sqlite", "sqlite", bin=a.baseline))
            if ctx.pg_ok and ctx.redis_ok:
                sides.append(setup_sekisho(ctx, "sekisho-pg-redis", "postgres+redis"))
            else:
                log("PostgreSQL + Redis side skipped (not reachable)")
        if "compare" in ctx.parts:
            results = compare(ctx, sides)
        if "flood" in ctx.parts:
            for s in sides:
                if s.label.startswith("before-"):
                    continue
                if s.label != "reference" or os.environ.get("BENCH_FLOOD_REFERENCE") == "1":
                    flood_res[s.label] = flood(ctx, s)
        for s in sides:
            s.server.destroy()
        if "memory" in ctx.parts:
            backends = ["sqlite"] + (["postgres"] if ctx.pg_ok else []) + (
                ["postgres+redis"] if ctx.pg_ok and ctx.redis_ok else [])
            for b in backends:
                mem_res.append(memory(ctx, b))
    finally:
        stop_all()
        for s in sides:
            try:
                s.server.destroy()
            except Exception as e:  # noqa: BLE001 - cleanup must go on
                log(f"cleanup of {s.label}: {e}")
        ctx.pg.drop_all()

    ctx.facts["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    facts = machine_facts(ctx)
    facts["elapsed_s"] = round(time.time() - started)
    md = render(ctx, results, sides, flood_res, mem_res, facts)
    print(md)
    a.out.mkdir(parents=True, exist_ok=True)
    stem = a.out / f"{datetime.date.today().isoformat()}-{facts['host']}"
    stem.with_suffix(".md").write_text(md)
    doc = {
        "facts": facts,
        "settings": {"duration_s": ctx.duration, "rounds": ctx.rounds, "connections": ctx.connections,
                     "threads": ctx.threads, "gunicorn_workers": ctx.gunicorn_workers,
                     "workloads": ctx.workloads, "pageload_users": PAGELOAD_USERS,
                     "pageload_fanout": PAGELOAD_FANOUT},
        "results": results,
        "flood": flood_res,
        "memory": mem_res,
    }
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    log(f"wrote {stem}.md and {stem}.json in {facts['elapsed_s']}s")


if __name__ == "__main__":
    main()
