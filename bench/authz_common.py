"""Shared by bench/forward_auth.py and bench/authz_scale.py: the release binary, wrk, CPU
accounting from /proc, machine facts, and the results file both scripts write a section of.

The process, HTTP and wrk helpers are bench/run.py's (imported as `base`), so every process is
still started in its own process group and stopped by its process id.
"""

import datetime
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import run as base  # noqa: E402  (bench/run.py: spawn, stop, Http, Sekisho, run_wrk, ...)

log = base.log


def target_dir():
    return Path(os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target")))


def prepare_binary(given, work):
    """The sekisho release binary, copied into the work directory (a rebuild in the shared
    target directory during the run cannot swap it underneath). Built first unless given."""
    if given is None:
        log(f"building sekisho (release) in {target_dir()}")
        subprocess.run(["cargo", "build", "--release", "-p", "sekisho", "--locked"], cwd=ROOT,
                       check=True, stdout=sys.stderr)
        given = target_dir() / "release" / "sekisho"
    given = Path(given)
    if not given.exists():
        raise SystemExit(f"{given}: no such binary")
    dest = Path(work) / "sekisho-bin"
    shutil.copy2(given, dest)
    return dest


def ensure_wrk():
    if shutil.which("wrk"):
        return
    log("installing wrk (Debian package)")
    r = subprocess.run(["apt-get", "install", "-y", "wrk"], capture_output=True)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], capture_output=True, check=True)


# ---------------------------------------------------------------------------------------------
# CPU time of processes, from /proc (for a per-request cost breakdown).

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of one process (all its threads), in seconds; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children(pid):
    """Direct children of a process (nginx's workers under its master)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(d))
    return out


def self_children_cpu():
    """CPU seconds of this script's waited-for children (wrk runs through subprocess.run)."""
    t = os.times()
    return t.children_user + t.children_system


# ---------------------------------------------------------------------------------------------
# Report.


def sh(*args):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return ""


def machine_facts():
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    free = sh("free", "-h").splitlines()
    psql_v = sh("psql", "--version")
    pg_server = ""
    try:
        pg_server = base.psql(os.environ.get("SEKISHO_TEST_POSTGRES_URL", DEFAULT_PG),
                              "SHOW server_version").strip()
    except Exception:  # noqa: BLE001 - a fact, not a requirement
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": socket.gethostname(),
        "nproc": sh("nproc"),
        "cpu": cpu,
        "memory": free[1] if len(free) > 1 else "",
        "kernel": platform.release(),
        "os": Path("/etc/debian_version").read_text().strip()
        if Path("/etc/debian_version").exists() else platform.platform(),
        "rustc": sh("rustc", "--version"),
        "python": platform.python_version(),
        "sqlite": __import__("sqlite3").sqlite_version,
        "wrk": (sh("wrk", "-v") or "").splitlines()[0] if sh("wrk", "-v") else "",
        "nginx": subprocess.run(["/usr/sbin/nginx", "-v"], capture_output=True, text=True).stderr.strip()
        if Path("/usr/sbin/nginx").exists() else "",
        "postgres": pg_server or psql_v,
        "sekisho_commit": sh("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"),
        "sekisho_tree_dirty": bool(sh("git", "-C", str(ROOT), "status", "--porcelain", "--", "crates")),
    }


DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/test"


def loadavg():
    return Path("/proc/loadavg").read_text().split()[:3]


def facts_line(f):
    return (f"{f['nproc']} CPUs ({f['cpu']}), memory `{f['memory']}`, Debian {f['os']}, Linux "
            f"{f['kernel']}; sekisho {f['sekisho_commit']}"
            f"{' with uncommitted changes in crates/' if f['sekisho_tree_dirty'] else ''}, "
            f"{f['rustc']}, release build; {f['wrk']}")


def write_section(stem, key, title, markdown, doc):
    """Writes one script's section into `<stem>.md` and `<stem>.json`, keeping the other
    script's section: each script can be rerun alone."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    jpath, mpath = stem.with_suffix(".json"), stem.with_suffix(".md")
    data = json.loads(jpath.read_text()) if jpath.exists() else {}
    data[key] = doc
    jpath.write_text(json.dumps(data, indent=2) + "\n")
    begin, end = f"<!-- section:{key} -->", f"<!-- /section:{key} -->"
    block = f"{begin}\n## {title}\n\n{markdown.rstrip()}\n{end}\n"
    text = mpath.read_text() if mpath.exists() else (
        "# Authorization benchmarks\n\n"
        "Forward-auth behind nginx (`bench/forward_auth.py`) and object permissions at a million "
        "grants (`bench/authz_scale.py`). Each section is one run of its script; the raw "
        "figures of every round are in the `.json` file of the same name.\n\n")
    if begin in text:
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", lambda _: block, text,
                      flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block
    mpath.write_text(text)
    log(f"wrote section {key!r} of {mpath} and {jpath}")


def fmt_ms(us):
    ms = us / 1000
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:,.0f}"


def fmt_rps(v):
    return f"{v:,.0f}"


def wait_port(port, proc, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def start(doc):
    """The command line and settings both scripts share: `--sekisho`, `--out`, and the wrk
    settings from the environment (BENCH_DURATION, BENCH_ROUNDS, BENCH_CONNECTIONS,
    BENCH_THREADS). Returns (args, ctx)."""
    import argparse
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--sekisho", type=Path, help="a built sekisho binary (default: build it)")
    ap.add_argument("--out", type=Path,
                    default=BENCH / "results" / f"{datetime.date.today().isoformat()}-authz")
    a = ap.parse_args()
    ctx = base.Ctx()
    ctx.duration = base.parse_duration(os.environ.get("BENCH_DURATION", "10s"))
    ctx.rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    ctx.connections = int(os.environ.get("BENCH_CONNECTIONS", "32"))
    ctx.threads = int(os.environ.get("BENCH_THREADS", "2"))
    return a, ctx
