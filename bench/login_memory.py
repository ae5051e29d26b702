#!/usr/bin/env python3
"""The memory a burst of logins leaves behind: RSS of the server before and after N concurrent
logins (default 256) with the default Argon2id parameters (19 MiB, t=2), for one or more
sekisho binaries measured in the same run (e.g. before and after a change).

    python3 bench/login_memory.py --binary before=PATH --binary after=PATH
    python3 bench/login_memory.py                       # builds the release binary: "current"

Per binary, in a throwaway data directory on SQLite: `sekisho user create`, `sekisho serve` on a
free loopback port, one login (warm-up), RSS; then N logins at once (N threads, one connection
each, `POST /api/token/`), every answer checked to be 200; RSS right after and again after 2 s
of idle, plus the peak (VmHWM). The binaries run one after the other, each BENCH_ROUNDS (2)
times, alternating. Writes bench/results/<date>-login-memory.{md,json} (--out to change).

Settings (environment): BENCH_LOGINS [256], BENCH_ROUNDS [2].
"""

import argparse
import concurrent.futures
import datetime
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
USER, PASSWORD = "burst", "a long benchmark password"


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing for {pid}")


def env_for(data):
    env = {k: v for k, v in os.environ.items() if not (k.startswith("SEKISHO_") and "__" in k)}
    env.update({
        "SEKISHO_SERVER__DATA_DIR": str(data),
        "SEKISHO_PASSWORDS__ARGON2_MEMORY_KIB": "19456",
        "SEKISHO_PASSWORDS__ARGON2_ITERATIONS": "2",
        # Every login comes from 127.0.0.1: no per-address lockout in the middle of the burst.
        "SEKISHO_THROTTLE__MAX_FAILURES_PER_IP": "0",
        "SEKISHO_LOG": "warn",
    })
    return env


def login(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    body = json.dumps({"username": USER, "password": PASSWORD})
    c.request("POST", "/api/token/", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def measure(binary, logins):
    with tempfile.TemporaryDirectory(prefix="sekisho-mem-") as work:
        data = Path(work) / "data"
        env = env_for(data)
        subprocess.run([binary, "user", "create", USER, "--password-stdin"], input=PASSWORD + "\n",
                       text=True, env=env, cwd=work, check=True, capture_output=True)
        port = free_port()
        env["SEKISHO_SERVER__BIND"] = f"127.0.0.1:{port}"
        proc = subprocess.Popen([binary, "serve"], env=env, cwd=work,
                                stdout=subprocess.DEVNULL, stderr=open(Path(work) / "err.log", "w"))
        try:
            for _ in range(300):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            if login(port) != 200:
                raise RuntimeError("warm-up login failed")
            idle = status_kib(proc.pid, "VmRSS")
            t0 = time.time()
            with concurrent.futures.ThreadPoolExecutor(max_workers=logins) as ex:
                statuses = list(ex.map(lambda _: login(port), range(logins)))
            took = time.time() - t0
            bad = [s for s in statuses if s != 200]
            if bad:
                raise RuntimeError(f"{len(bad)} logins did not answer 200: {bad[:5]}")
            after = status_kib(proc.pid, "VmRSS")
            time.sleep(2)
            settled = status_kib(proc.pid, "VmRSS")
            peak = status_kib(proc.pid, "VmHWM")
            return {"idle_kib": idle, "after_kib": after, "settled_kib": settled,
                    "peak_kib": peak, "seconds": round(took, 2)}
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", action="append", default=[], metavar="LABEL=PATH")
    ap.add_argument("--out", type=Path,
                    default=BENCH / "results" / f"{datetime.date.today().isoformat()}-login-memory")
    a = ap.parse_args()
    logins = int(os.environ.get("BENCH_LOGINS", "256"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "2"))
    binaries = []
    for b in a.binary:
        label, _, path = b.partition("=")
        binaries.append((label, path))
    if not binaries:
        subprocess.run(["cargo", "build", "--release", "-p", "sekisho", "--locked"], cwd=ROOT,
                       check=True)
        target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        binaries = [("current", str(target / "release" / "sekisho"))]
    with tempfile.TemporaryDirectory() as copies:
        runs = {label: [] for label, _ in binaries}
        local = []
        for label, path in binaries:
            dest = Path(copies) / label
            shutil.copy2(path, dest)
            local.append((label, str(dest)))
        for r in range(rounds):
            for label, path in local:
                m = measure(path, logins)
                log(f"round {r + 1}/{rounds} {label}: idle {m['idle_kib'] / 1024:.1f} MiB, "
                    f"after {m['after_kib'] / 1024:.1f}, 2 s later {m['settled_kib'] / 1024:.1f}, "
                    f"peak {m['peak_kib'] / 1024:.1f} ({m['seconds']} s)")
                runs[label].append(m)
    mib = lambda kib: f"{kib / 1024:.1f}"  # noqa: E731
    load = os.getloadavg()
    lines = [
        f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on "
        f"`{socket.gethostname()}` ({os.cpu_count()} CPUs, load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end).",
        "",
        f"Command: `{' '.join(['python3', 'bench/login_memory.py'] + sys.argv[1:])}`; "
        f"{logins} concurrent logins (`POST /api/token/`, one connection each) after one warm-up, "
        f"Argon2id 19 MiB t=2, SQLite; {rounds} rounds per binary, alternating; medians.",
        "",
        "| binary | RSS idle MiB | right after MiB | 2 s later MiB | peak MiB | burst s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    summary = {}
    for label, ms in runs.items():
        med = {k: statistics.median(m[k] for m in ms) for k in ms[0]}
        summary[label] = {"median": med, "rounds": ms}
        lines.append(f"| {label} | {mib(med['idle_kib'])} | {mib(med['after_kib'])} | "
                     f"{mib(med['settled_kib'])} | {mib(med['peak_kib'])} | {med['seconds']:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".md").write_text(text)
    a.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    log(f"wrote {a.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
