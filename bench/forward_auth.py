#!/usr/bin/env python3
"""What forward-auth costs behind nginx: the same upstream through the same nginx, without
authentication (A) and with `auth_request` to sekisho's `GET /api/auth/check/` (B), driven by
the same wrk in interleaved rounds; the ratio B/A from one run.

    python3 bench/forward_auth.py                     # builds sekisho (release), 3 rounds of 10 s
    BENCH_DURATION=3s BENCH_ROUNDS=1 python3 bench/forward_auth.py   # a quick look
    python3 bench/forward_auth.py --sekisho PATH      # an already built binary

One nginx (Debian's, /usr/sbin/nginx, with auth_request) serves three server blocks on
127.0.0.1: the upstream (`return 200 "ok"`), A (proxy to the upstream) and B (the same proxy
behind `auth_request`, copying sekisho's identity headers to the upstream request). sekisho runs
on SQLite in a throwaway data directory with a policy file whose rule for the benchmarked path
needs the model-wide permission `perm:shop.view_report`, granted to the benchmark user with
`sekisho perm create` / `sekisho user grant`, so every check is a real permission decision.
Before anything is timed, B must answer 200 with the token and with the session cookie, 401
without credentials and 403 for a user without the permission.

Settings (environment, defaults in brackets): BENCH_DURATION [10s], BENCH_ROUNDS [3],
BENCH_CONNECTIONS [32], BENCH_THREADS [2] (wrk -c / -t for every side),
BENCH_WORKLOADS [plain,bearer,session,direct], BENCH_NGINX_WORKERS [auto],
BENCH_KEEP_WORK [0] (1: keep the throwaway directory, with the logs).
Writes its section of bench/results/<date>-authz.{md,json} (--out to change the stem).
Every process it starts is stopped by its process id.
"""

import datetime
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import authz_common as C

base = C.base
log = C.log

NGINX = "/usr/sbin/nginx"
PATH = "/reports/q3"
PERM = "shop.view_report"
USER, PASSWORD = "reporter", "a long benchmark password"
OUTSIDER = "outsider"
POLICY = f"""# bench/forward_auth.py: the benchmarked path needs a model-wide permission.
default = "authenticated"

[[rules]]
path = "/reports/**"
require = "perm:{PERM}"
"""

ALL_WORKLOADS = ["plain", "bearer", "session", "direct"]
LABELS = {
    "plain": "A: nginx → upstream, no auth",
    "bearer": "B: nginx `auth_request` → sekisho → upstream, bearer token",
    "session": "B: the same, session cookie",
    "direct": "sekisho `GET /api/auth/check/` alone (bearer, no nginx)",
}


class Nginx:
    """One nginx master (and its workers) in its own process group, on a throwaway prefix."""

    def __init__(self, work, auth_authority, workers):
        self.dir = Path(work) / "nginx"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.auth = auth_authority
        self.workers = workers
        self.proc = None

    def config(self):
        d = self.dir
        proxy = """proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;"""
        return f"""
worker_processes {self.workers};
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  default_type text/plain;
  upstream app {{ server 127.0.0.1:{self.up}; keepalive 64; }}
  upstream sekisho {{ server {self.auth}; keepalive 64; }}

  # The upstream both sides proxy to.
  server {{
    listen 127.0.0.1:{self.up};
    location / {{ return 200 "ok"; }}
  }}

  # A: no authentication.
  server {{
    listen 127.0.0.1:{self.port_a};
    location / {{
      {proxy}
      proxy_pass http://app;
    }}
  }}

  # B: the same, behind auth_request to sekisho (as in crates/sekisho/tests/forward_auth_nginx.rs).
  server {{
    listen 127.0.0.1:{self.port_b};
    location = /_sekisho_check {{
      internal;
      proxy_pass http://sekisho/api/auth/check/;
      {proxy}
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
    }}
    location / {{
      auth_request /_sekisho_check;
      auth_request_set $sekisho_user_id $upstream_http_x_auth_user_id;
      auth_request_set $sekisho_username $upstream_http_x_auth_username;
      auth_request_set $sekisho_groups $upstream_http_x_auth_groups;
      proxy_set_header X-Auth-User-Id $sekisho_user_id;
      proxy_set_header X-Auth-Username $sekisho_username;
      proxy_set_header X-Auth-Groups $sekisho_groups;
      {proxy}
      proxy_pass http://app;
    }}
  }}
}}
"""

    def start(self):
        for attempt in range(5):
            self.up, self.port_a, self.port_b = (base.free_port() for _ in range(3))
            conf = self.dir / "nginx.conf"
            conf.write_text(self.config())
            err = open(self.dir / "stderr.log", "ab")
            self.proc = base.spawn([NGINX, "-p", str(self.dir), "-c", str(conf)], stderr=err, stdout=err)
            if all(C.wait_port(p, self.proc) for p in (self.up, self.port_a, self.port_b)):
                return self
            base.stop(self.proc)
            log(f"nginx attempt {attempt + 1} failed: "
                f"{(self.dir / 'error.log').read_text()[-500:] if (self.dir / 'error.log').exists() else ''}")
        raise RuntimeError("nginx did not start")

    def pids(self):
        return [self.proc.pid] + C.children(self.proc.pid)

    def stop(self):
        if self.proc:
            base.stop(self.proc)
            self.proc = None


def status_of(url, headers=None):
    """One GET; (status, body text)."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def verify(a_url, b_url, sekisho_url, access, cookie, outsider_access):
    """The timed requests must be the success path: each expectation is checked once first."""
    bearer = {"Authorization": f"Bearer {access}"}
    checks = [
        ("A, no credentials", a_url + PATH, {}, 200, "ok"),
        ("B, bearer token of the user holding the permission", b_url + PATH, bearer, 200, "ok"),
        ("B, session cookie of that user", b_url + PATH, {"Cookie": cookie}, 200, "ok"),
        ("B, no credentials", b_url + PATH, {}, 401, None),
        ("B, an invalid token", b_url + PATH, {"Authorization": "Bearer not.a.token"}, 401, None),
        ("B, bearer token of a user without the permission", b_url + PATH,
         {"Authorization": f"Bearer {outsider_access}"}, 403, None),
        ("sekisho check alone, bearer token", sekisho_url + "/api/auth/check/",
         {**bearer, "X-Original-URI": PATH, "X-Original-Method": "GET"}, 200, None),
        ("sekisho check alone, user without the permission", sekisho_url + "/api/auth/check/",
         {"Authorization": f"Bearer {outsider_access}", "X-Original-URI": PATH,
          "X-Original-Method": "GET"}, 403, None),
    ]
    done = []
    for label, url, headers, want, want_body in checks:
        status, body = status_of(url, headers)
        if status != want or (want_body is not None and body != want_body):
            raise RuntimeError(f"{label}: expected {want}{' ' + repr(want_body) if want_body else ''}, "
                               f"got {status} {body[:200]!r}")
        done.append({"check": label, "status": status})
        log(f"verified: {label} -> {status}")
    return done


def main():
    a, ctx = C.start(__doc__)
    workloads = [w for w in os.environ.get("BENCH_WORKLOADS", ",".join(ALL_WORKLOADS)).split(",") if w]
    for w in workloads:
        if w not in ALL_WORKLOADS:
            raise SystemExit(f"BENCH_WORKLOADS: unknown workload {w!r}")
    nginx_workers = os.environ.get("BENCH_NGINX_WORKERS", "auto")
    if not Path(NGINX).exists():
        raise SystemExit(f"{NGINX} is missing (Debian's nginx package, with auth_request)")
    C.ensure_wrk()

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    work = Path(tempfile.mkdtemp(prefix="sekisho-forward-auth."))
    ctx.work = work
    ctx.pg = None
    ctx.redis_url = None
    started = time.time()
    load_start = C.loadavg()
    nginx = None
    server = None
    runs = {w: [] for w in workloads}
    try:
        ctx.sekisho_bin = C.prepare_binary(a.sekisho, work)
        server = base.Sekisho(ctx, "server-sqlite", "sqlite")
        policy = server.dir / "policy.toml"
        policy.write_text(POLICY)
        gate = {"SEKISHO_POLICY__FILE": str(policy), "SEKISHO_SERVER__TRUSTED_PROXIES": "127.0.0.1"}
        server.cli(["migrate"])
        server.cli(["user", "create", USER, "--password-stdin"], stdin=PASSWORD + "\n")
        server.cli(["user", "create", OUTSIDER, "--password-stdin"], stdin=PASSWORD + "\n")
        server.cli(["perm", "create", PERM])
        server.cli(["user", "grant", USER, PERM])
        policy_text = server.cli(["config", "check"], extra=gate)
        policy_lines = [ln[2:] for ln in policy_text.splitlines()
                        if ln.startswith("# ") and ("require" in ln or "default" in ln or "->" in ln)]
        server.start(extra=gate)
        log(f"sekisho at {server.base}")

        h = base.Http(server.base)
        access = h.call("POST", "/api/token/", {"username": USER, "password": PASSWORD})["access"]
        outsider = h.call("POST", "/api/token/", {"username": OUTSIDER, "password": PASSWORD})["access"]
        s = base.Http(server.base)
        s.call("GET", "/api/auth/csrf/")
        s.call("POST", "/api/auth/login/", {"username": USER, "password": PASSWORD},
               headers={"X-CSRFToken": s.cookies["csrftoken"]})
        cookie = f"sessionid={s.cookies['sessionid']}"

        nginx = Nginx(work, server.base.removeprefix("http://"), nginx_workers).start()
        a_url = f"http://127.0.0.1:{nginx.port_a}"
        b_url = f"http://127.0.0.1:{nginx.port_b}"
        log(f"nginx: upstream :{nginx.up}, A {a_url}, B {b_url} ({nginx_workers} workers)")
        verified = verify(a_url, b_url, server.base, access, cookie, outsider)

        def one(w, duration=None):
            if w == "plain":
                url, script, env = a_url, "bearer.lua", {"BENCH_PATH": PATH, "BENCH_ACCESS": access}
            elif w == "bearer":
                url, script, env = b_url, "bearer.lua", {"BENCH_PATH": PATH, "BENCH_ACCESS": access}
            elif w == "session":
                url, script, env = b_url, "session.lua", {"BENCH_PATH": PATH, "BENCH_COOKIE": cookie}
            else:
                url, script, env = server.base, "headers.lua", {
                    "BENCH_PATH": "/api/auth/check/",
                    "BENCH_HEADERS": f"Authorization: Bearer {access}\nX-Original-URI: {PATH}\n"
                                     "X-Original-Method: GET",
                }
            base.quiesce(server.base)
            ngx_pids = nginx.pids()
            before = (sum(C.cpu_seconds(p) for p in ngx_pids), C.cpu_seconds(server.proc.pid),
                      C.self_children_cpu())
            r = base.run_wrk(ctx, url, script, env["BENCH_PATH"], env=env, duration=duration)
            after = (sum(C.cpu_seconds(p) for p in ngx_pids), C.cpu_seconds(server.proc.pid),
                     C.self_children_cpu())
            n = max(1, r["requests"])
            r["cpu_us_per_request"] = {
                k: round((y - x) / n * 1e6, 1) for k, x, y in zip(("nginx", "sekisho", "wrk"), before, after)
            }
            return r

        log("warm-up")
        for w in workloads:
            one(w, duration=1)
        for rnd in range(ctx.rounds):
            for w in workloads:
                r = one(w)
                runs[w].append(r)
                bad = f" ERRORS {r['errors_total']}" if r["errors_total"] else ""
                cpu = r["cpu_us_per_request"]
                log(f"round {rnd + 1}/{ctx.rounds} {w:8s} {r['rps']:9.0f}/s p50 {r['p50_us'] / 1000:6.2f} ms "
                    f"p99 {r['p99_us'] / 1000:6.2f} ms; CPU µs/req nginx {cpu['nginx']} sekisho "
                    f"{cpu['sekisho']} wrk {cpu['wrk']}{bad}")
        # The gate still answers as it did before timing (nothing degraded into an error path).
        verify(a_url, b_url, server.base, access, cookie, outsider)
    finally:
        if nginx:
            nginx.stop()
        base.stop_all()
        if os.environ.get("BENCH_KEEP_WORK") != "1":
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")

    result = {}
    for w, rs in runs.items():
        m = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_us", "p90_us", "p99_us", "p999_us")}
        m["errors_total"] = sum(r["errors_total"] for r in rs)
        m["requests_total"] = sum(r["requests"] for r in rs)
        m["cpu_us_per_request"] = {k: statistics.median(r["cpu_us_per_request"][k] for r in rs)
                                   for k in ("nginx", "sekisho", "wrk")}
        if "plain" in runs and w != "plain":
            m["x_plain"] = statistics.median(r["rps"] / p["rps"] for r, p in zip(rs, runs["plain"]) if p["rps"])
            m["x_plain_rounds"] = [round(r["rps"] / p["rps"], 3) for r, p in zip(rs, runs["plain"])]
        m["runs"] = rs
        result[w] = m

    facts = C.machine_facts()
    facts["loadavg_start"], facts["loadavg_end"] = load_start, C.loadavg()
    facts["elapsed_s"] = round(time.time() - started)
    env_used = {k: v for k, v in os.environ.items() if k.startswith("BENCH_")}
    command = " ".join([*(f"{k}={shlex.quote(v)}" for k, v in sorted(env_used.items())),
                        "python3", "bench/forward_auth.py", *map(shlex.quote, sys.argv[1:])])
    settings = {"duration_s": ctx.duration, "rounds": ctx.rounds, "connections": ctx.connections,
                "threads": ctx.threads, "nginx_workers": nginx_workers, "path": PATH,
                "policy": POLICY, "workloads": workloads}
    md = render(facts, settings, result, verified, policy_lines, command)
    print(md)
    C.write_section(a.out, "forward_auth", "Forward-auth behind nginx (`bench/forward_auth.py`)", md, {
        "facts": facts, "settings": settings, "command": command, "verified": verified, "policy_check": policy_lines,
        "results": result,
    })


def render(facts, st, res, verified, policy_lines, command):
    L = []
    L.append(f"Run {facts['date']} on `{facts['host']}`: {C.facts_line(facts)}; {facts['nginx']}. "
             f"Load average {' '.join(facts['loadavg_start'])} at the start, "
             f"{' '.join(facts['loadavg_end'])} at the end (other work shares the machine); "
             f"whole run {facts['elapsed_s']} s.")
    L.append("")
    L.append(f"Command: `{command}`")
    L.append("")
    L.append(f"One nginx ({st['nginx_workers']} worker processes) with three server blocks on 127.0.0.1: the "
             "upstream (`return 200 \"ok\"`), A (proxy to it, keep-alive) and B (the same proxy "
             "behind `auth_request` to sekisho's `GET /api/auth/check/`, passing `X-Original-URI` / "
             "`X-Original-Method` and copying the identity headers to the upstream request). "
             f"sekisho: release build, SQLite, defaults plus `server.trusted_proxies = 127.0.0.1` and a "
             f"policy file whose rule for `{st['path']}` is `perm:{PERM}` (granted to the user with "
             f"`sekisho perm create` + `sekisho user grant`). Every request is `GET {st['path']}`; "
             f"wrk `-t{st['threads']} -c{st['connections']} -d{st['duration_s']:g}s`, {st['rounds']} "
             "rounds, the workloads interleaved in each round; medians of the rounds. A's requests "
             "carry the same `Authorization` header (ignored), so A and B bearer send the same bytes.")
    L.append("")
    if policy_lines:
        L.append("The policy as `sekisho config check` reports it: " + "; ".join(f"`{x}`" for x in policy_lines) + ".")
        L.append("")
    L.append("Checked before and after the timed runs: " + "; ".join(
        f"{v['check']} → {v['status']}" for v in verified) + ".")
    L.append("")
    L.append("| workload | req/s | p50 ms | p99 ms | × A | CPU µs per request: nginx | sekisho | wrk |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for w in st["workloads"]:
        m = res[w]
        cpu = m["cpu_us_per_request"]
        ratio = f"{m['x_plain']:.2f}" if "x_plain" in m else "–"
        L.append(f"| {LABELS[w]} | {C.fmt_rps(m['rps'])} | {C.fmt_ms(m['p50_us'])} | {C.fmt_ms(m['p99_us'])} | "
                 f"{ratio} | {cpu['nginx']:.0f} | {cpu['sekisho']:.0f} | {cpu['wrk']:.0f} |")
    L.append("")
    L.append("\"× A\": the workload's req/s over A's in the same round, median of the rounds. CPU µs per "
             "request: user + system time of the nginx master and workers, of the sekisho process and of "
             "wrk during the run (from /proc and the child's rusage), over the requests completed.")
    errors = [f"{w}: {m['errors_total']} of {m['requests_total']}" for w, m in res.items() if m["errors_total"]]
    if errors:
        L.append("")
        L.append("Failed requests (socket errors, timeouts or non-2xx): " + "; ".join(errors) + ".")
    L.append("")
    verdicts = []
    for w in ("bearer", "session"):
        if w in res and "x_plain" in res[w]:
            x = res[w]["x_plain"]
            rounds = ", ".join(f"{v:.2f}" for v in res[w]["x_plain_rounds"])
            verdicts.append(f"B/A {w}: **{x:.2f}** (rounds: {rounds}) — target ≥ 0.7 "
                            f"{'met' if x >= 0.7 else '**missed**'}")
    if verdicts:
        L.append("Target: " + "; ".join(verdicts) + ".")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
