#!/usr/bin/env python3
"""Sequential cost of a session-authenticated request and of a refresh, per backend.
Usage: python3 bench/backend_cost.py target/release/sekisho
Starts the binary once per backend (SQLite; PostgreSQL; PostgreSQL + Redis, on the machine's
services) on loopback and prints the mean round trip of sequential keep-alive requests."""
import http.client, json, os, subprocess, sys, tempfile, time, uuid, statistics, shutil
BIN = sys.argv[1]
PG = "postgres://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379"

def run(backend):
    d = tempfile.mkdtemp()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEKISHO_")}
    env.update(SEKISHO_SERVER__BIND="127.0.0.1:0", SEKISHO_SERVER__DATA_DIR=d + "/data",
               SEKISHO_DATABASE__URL=f"sqlite://{d}/data/s.db", SEKISHO_LOG="warn")
    db = None
    if backend.startswith("postgres"):
        db = "sekisho_cost_" + uuid.uuid4().hex[:8]
        subprocess.run(["psql", PG, "-qc", f"CREATE DATABASE {db}"], check=True)
        env["SEKISHO_DATABASE__URL"] = PG.rsplit("/", 1)[0] + "/" + db
    if backend.endswith("redis"):
        env["SEKISHO_SESSIONS__STORE"] = REDIS
        env["SEKISHO_SESSIONS__KEY_PREFIX"] = "cost-" + uuid.uuid4().hex[:8]
    subprocess.run([BIN, "user", "create", "u", "--password-stdin"], input=b"pw-123456789\n", env=env, cwd=d, check=True, capture_output=True)
    p = subprocess.Popen([BIN, "serve"], env=env, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    addr = p.stdout.readline().decode().split("http://")[1].strip()
    host, port = addr.split(":")
    c = http.client.HTTPConnection(host, int(port))
    def req(method, path, body=None, headers=None):
        h = dict(headers or {})
        if body is not None:
            h["Content-Type"] = "application/json"; body = json.dumps(body)
        c.request(method, path, body=body, headers=h)
        r = c.getresponse(); data = r.read()
        return r.status, r.getheader("Set-Cookie"), json.loads(data) if data else None, r.headers
    st, _, b, _ = req("GET", "/api/auth/csrf/")
    csrf = b["csrfToken"]
    c.request("POST", "/api/auth/login/", body=json.dumps({"username": "u", "password": "pw-123456789"}),
              headers={"Content-Type": "application/json", "X-CSRFToken": csrf, "Cookie": f"csrftoken={csrf}"})
    r = c.getresponse(); r.read()
    sid = [v.split(";")[0] for k, v in r.getheaders() if k.lower() == "set-cookie" and v.startswith("sessionid=")][0]
    out = {}
    for label, ttl_note in [("session GET /api/auth/me/", "")]:
        n = 3000
        t0 = time.perf_counter()
        for _ in range(n):
            st, _, _, _ = req("GET", "/api/auth/me/", headers={"Cookie": sid})
            assert st == 200
        out[label] = (time.perf_counter() - t0) / n * 1e6
    st, _, b, _ = req("POST", "/api/token/", {"username": "u", "password": "pw-123456789"})
    tok = b["refresh"]
    n = 1000
    t0 = time.perf_counter()
    for _ in range(n):
        st, _, b, _ = req("POST", "/api/token/refresh/", {"refresh": tok})
        assert st == 200, b
        tok = b["refresh"]
    out["refresh with rotation"] = (time.perf_counter() - t0) / n * 1e6
    st, _, b, _ = req("GET", "/healthz")
    n = 3000
    t0 = time.perf_counter()
    for _ in range(n):
        req("GET", "/healthz")
    out["floor GET /healthz"] = (time.perf_counter() - t0) / n * 1e6
    p.kill(); p.wait()
    if db:
        subprocess.run(["psql", PG, "-qc", f"DROP DATABASE {db} WITH (FORCE)"], check=False)
    shutil.rmtree(d, ignore_errors=True)
    return out

for backend in ["sqlite", "postgres", "postgres+redis"]:
    res = run(backend)
    print(backend, " | ".join(f"{k}: {v:.0f} µs" for k, v in res.items()))
