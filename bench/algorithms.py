#!/usr/bin/env python3
"""Bearer throughput per signing algorithm: one sekisho per `jwt.algorithm` (HS256, EdDSA,
ES256, RS256) on SQLite, each driven with the same wrk in the same rounds, and every figure
given as a ratio to that server's own floor (`GET /healthz`) and to HS256 in the same run.

    python3 bench/algorithms.py                     # builds the release binary
    python3 bench/algorithms.py --binary PATH       # a given binary

Per algorithm, in a throwaway data directory: `sekisho migrate`, `sekisho user create`,
`sekisho serve` on a free loopback port (the asymmetric keys are made at the first start and
sealed in the database), one login at `POST /api/token/` for an access token (1 h lifetime, so
it outlives the run). The workloads, run on every server in turn, round after round:

  floor   GET /healthz (no authentication)
  bearer  GET /api/auth/me/ with Authorization: Bearer <access>
  verify  POST /api/token/verify/ with the access token

Each request is checked: wrk counts every non-2xx answer, and a round with errors fails the run.
Writes bench/results/<date>-algorithms.{md,json} (--out to change).

Settings (environment): BENCH_DURATION [5s], BENCH_ROUNDS [3], BENCH_CONNECTIONS [32],
BENCH_THREADS [2], BENCH_ALGORITHMS [HS256,EdDSA,ES256,RS256].
"""

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import authz_common as common  # noqa: E402
import run as base  # noqa: E402

log = base.log
USER, PASSWORD = "bench", "a long benchmark password"
WORKLOADS = ("floor", "bearer", "verify")
ALGORITHMS = ("HS256", "EdDSA", "ES256", "RS256")


class Ctx:
    pass


def start(ctx, algorithm):
    s = base.Sekisho(ctx, f"sekisho-{algorithm.lower()}", "sqlite")
    s.env["SEKISHO_JWT__ALGORITHM"] = algorithm
    if algorithm != "HS256":
        # An asymmetric key is managed in the database; a secret would be refused.
        del s.env["SEKISHO_JWT__SIGNING_KEY"]
    s.cli(["migrate"])
    s.cli(["user", "create", USER, "--password-stdin"], stdin=PASSWORD + "\n")
    s.start()
    h = base.Http(s.base)
    s.access = h.call("POST", "/api/token/", {"username": USER, "password": PASSWORD})["access"]
    header = json.loads(base64url_decode(s.access.split(".")[0]))
    if header.get("alg") != algorithm:
        raise SystemExit(f"{algorithm}: the server signed with {header.get('alg')!r}")
    # Sanity: each timed request succeeds once first.
    base.Http(s.base).call("GET", "/api/auth/me/", headers={"Authorization": f"Bearer {s.access}"})
    base.Http(s.base).call("POST", "/api/token/verify/", {"token": s.access})
    log(f"{algorithm}: sekisho at {s.base}, kid {header.get('kid')}")
    return s


def base64url_decode(part):
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def workload(ctx, s, name):
    base.quiesce(s.base)
    if name == "floor":
        return base.run_wrk(ctx, s.base, "get.lua", "/healthz", env={"BENCH_PATH": "/healthz"})
    if name == "bearer":
        return base.run_wrk(ctx, s.base, "bearer.lua", "/api/auth/me/",
                            env={"BENCH_PATH": "/api/auth/me/", "BENCH_ACCESS": s.access})
    if name == "verify":
        return base.run_wrk(ctx, s.base, "verify.lua", "/api/token/verify/",
                            env={"BENCH_ACCESS": s.access})
    raise ValueError(name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", type=Path)
    ap.add_argument("--out", type=Path,
                    default=BENCH / "results" / f"{datetime.date.today().isoformat()}-algorithms")
    a = ap.parse_args()
    common.ensure_wrk()
    ctx = Ctx()
    ctx.duration = base.parse_duration(os.environ.get("BENCH_DURATION", "5s"))
    ctx.rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    ctx.connections = int(os.environ.get("BENCH_CONNECTIONS", "32"))
    ctx.threads = int(os.environ.get("BENCH_THREADS", "2"))
    algorithms = [x for x in os.environ.get("BENCH_ALGORITHMS", ",".join(ALGORITHMS)).split(",") if x]
    for x in algorithms:
        if x not in ALGORITHMS:
            raise SystemExit(f"BENCH_ALGORITHMS: unknown algorithm {x!r}")
    if "HS256" not in algorithms:
        raise SystemExit("BENCH_ALGORITHMS: HS256 is the reference of the ratios; keep it")
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="sekisho-alg-") as work:
        ctx.work = Path(work)
        ctx.sekisho_bin = common.prepare_binary(a.binary, work)
        ctx.pg = None
        ctx.redis_url = None
        servers = {}
        raw = {alg: {w: [] for w in WORKLOADS} for alg in algorithms}
        try:
            for alg in algorithms:
                servers[alg] = start(ctx, alg)
            for r in range(ctx.rounds):
                for w in WORKLOADS:
                    for alg in algorithms:
                        res = workload(ctx, servers[alg], w)
                        if res["errors_total"]:
                            raise SystemExit(f"{alg} {w}: {res['errors_total']} errors: {res['errors']}")
                        raw[alg][w].append(res)
                        log(f"round {r + 1}/{ctx.rounds} {alg:6} {w:6} {res['rps']:>9,.0f} req/s, "
                            f"p99 {res['p99_us'] / 1000:.2f} ms")
        finally:
            for s in servers.values():
                s.stop()
            base.stop_all()
    med = {alg: {w: {k: statistics.median(x[k] for x in raw[alg][w])
                     for k in ("rps", "p50_us", "p99_us")} for w in WORKLOADS} for alg in algorithms}
    facts = common.machine_facts()
    load = common.loadavg()
    hs = med["HS256"]
    lines = [
        f"Run {facts['date']} on `{facts['host']}`: {common.facts_line(facts)}. Load average at "
        f"the end {' '.join(load)}.",
        "",
        f"Command: `python3 bench/algorithms.py{' --binary …' if a.binary else ''}`; one sekisho per "
        f"algorithm on SQLite, `wrk -t{ctx.threads} -c{ctx.connections}`, {ctx.rounds} rounds of "
        f"{ctx.duration:g} s, every workload on every server in turn within a round; medians. "
        "\"of floor\" is the workload's throughput over the same server's `GET /healthz`; "
        "\"of HS256\" is over HS256's figure for the same workload in the same run.",
        "",
        "| algorithm | floor req/s | bearer req/s | bearer of floor | bearer of HS256 | bearer p99 ms "
        "| verify req/s | verify of floor | verify of HS256 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for alg in algorithms:
        m = med[alg]
        lines.append(
            f"| {alg} | {common.fmt_rps(m['floor']['rps'])} | {common.fmt_rps(m['bearer']['rps'])} | "
            f"{m['bearer']['rps'] / m['floor']['rps']:.2f} | {m['bearer']['rps'] / hs['bearer']['rps']:.2f} | "
            f"{common.fmt_ms(m['bearer']['p99_us'])} | {common.fmt_rps(m['verify']['rps'])} | "
            f"{m['verify']['rps'] / m['floor']['rps']:.2f} | {m['verify']['rps'] / hs['verify']['rps']:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".md").write_text("# Bearer throughput per signing algorithm\n\n" + text)
    doc = {"facts": facts, "elapsed_s": round(time.time() - started), "loadavg_end": load,
           "settings": {"duration_s": ctx.duration, "rounds": ctx.rounds,
                        "connections": ctx.connections, "threads": ctx.threads},
           "median": med, "rounds": raw}
    a.out.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    log(f"wrote {a.out.with_suffix('.md')} in {doc['elapsed_s']} s")


if __name__ == "__main__":
    main()
