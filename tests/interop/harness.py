"""Processes and bytes for the interop test: the real sekisho binary and the Django resource
server (tests/interop/resource_server), each on a free loopback port in a process of its own,
plus the JWS pieces the test forges tokens from. Nothing here knows the asymmetric-signing
contract's names: test_interop.py passes them in.
"""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent

# How long a process may take to come up: a debug build generating an RSA key, or Django
# importing itself on a loaded two-core machine.
START_TIMEOUT = 60.0


class Fail(Exception):
    """A harness step that could not be done; the message says which and why."""


# --- HTTP ------------------------------------------------------------------------------------


class Reply:
    def __init__(self, status: int, headers, body: bytes):
        self.status = status
        self.headers = headers
        self.raw = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self) -> str:
        return f"<{self.status} {self.raw[:300]!r}>"


def http(method: str, url: str, body=None, token: str | None = None, timeout: float = 30) -> Reply:
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Reply(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        with e:
            return Reply(e.code, e.headers, e.read())


def wait_for(what: str, probe, timeout: float, interval: float = 0.2):
    """Calls probe() until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Fail(f"{what}: not within {timeout:g}s")
        time.sleep(interval)


# --- processes -------------------------------------------------------------------------------


class Process:
    """A child process whose stdout and stderr go to files in its directory."""

    def __init__(self, name: str, argv: list[str], cwd: Path, env: dict[str, str]):
        self.name = name
        self.out_path = cwd / f"{name}.out"
        self.err_path = cwd / f"{name}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def errors(self) -> str:
        return self.err_path.read_text(errors="replace")

    def wait_line(self, pattern: str) -> re.Match:
        """The first match of `pattern` in the process's stdout, waiting for it."""

        def probe():
            m = re.search(pattern, self.output(), re.M)
            if m:
                return m
            if self.proc.poll() is not None:
                raise Fail(
                    f"{self.name} exited ({self.proc.returncode}) before it was ready:\n"
                    f"{self.errors()[-3000:]}"
                )
            return None

        return wait_for(f"{self.name} printing its address", probe, START_TIMEOUT, 0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """The caller's environment without any SEKISHO_<SECTION>__<KEY> (the server and the CLI see
    only the configuration the test gives them), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not (k.startswith("SEKISHO_") and "__" in k)}
    env.update(extra)
    return env


# Settings every sekisho here runs with: cheap Argon2 parameters (every sekisho user is
# created, and logs in, several times per run; the defaults are tested in sekisho-core) and
# quiet logs.
SEKISHO_BASE_ENV = {
    "SEKISHO_PASSWORDS__ARGON2_MEMORY_KIB": "256",
    "SEKISHO_PASSWORDS__ARGON2_ITERATIONS": "1",
    "SEKISHO_LOG": "warn",
}


class Sekisho:
    """The real binary, run in `workdir` (its zero-config data dir is ./sekisho-data there)."""

    def __init__(self, binary: str, workdir: Path, env: dict[str, str], name: str = "sekisho"):
        self.binary = binary
        self.workdir = workdir
        self.env = {**SEKISHO_BASE_ENV, **env}
        self.name = name
        self.process: Process | None = None
        self.base = ""
        workdir.mkdir(parents=True, exist_ok=True)

    def cli(self, args: list[str], stdin: str = "", extra_env: dict[str, str] | None = None):
        """Runs `sekisho ARGS`; returns the CompletedProcess (text)."""
        return subprocess.run(
            [self.binary, *args],
            cwd=self.workdir,
            env=clean_env({**self.env, **(extra_env or {})}),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def cli_ok(self, args: list[str], stdin: str = "") -> str:
        r = self.cli(args, stdin)
        if r.returncode != 0:
            raise Fail(
                f"`sekisho {' '.join(args)}` exited {r.returncode}: {r.stderr.strip() or r.stdout.strip()}"
            )
        return r.stdout

    def create_user(self, username: str, password: str) -> str:
        """`sekisho user create NAME --password-stdin`; returns the new user's id."""
        out = self.cli_ok(["user", "create", username, "--password-stdin"], password + "\n")
        m = re.search(r"\(id (\d+)\)", out)
        if not m:
            raise Fail(f"`sekisho user create` printed no id: {out!r}")
        return m.group(1)

    def start(self) -> "Sekisho":
        env = clean_env({**self.env, "SEKISHO_SERVER__BIND": "127.0.0.1:0"})
        self.process = Process(self.name, [self.binary, "serve"], self.workdir, env)
        self.base = self.process.wait_line(r"^sekisho listening on (\S+)").group(1)
        wait_for(
            f"{self.base}/readyz answering 200",
            lambda: self._ready(),
            START_TIMEOUT,
        )
        return self

    def _ready(self) -> bool:
        try:
            return http("GET", self.url("/readyz"), timeout=5).status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process:
            self.process.stop()
            self.process = None

    def url(self, path: str) -> str:
        return self.base + path

    def post(self, path: str, body) -> Reply:
        return http("POST", self.url(path), body)

    def login(self, username: str, password: str) -> dict:
        r = self.post("/api/token/", {"username": username, "password": password})
        if r.status != 200:
            raise Fail(f"POST /api/token/ answered {r!r}")
        return r.json

    def verifies(self, token: str) -> bool:
        """POST /api/token/verify/: True on 200 {}, False on 401; anything else is a failure."""
        r = self.post("/api/token/verify/", {"token": token})
        if r.status == 200 and r.json == {}:
            return True
        if r.status == 401:
            return False
        raise Fail(f"POST /api/token/verify/ answered {r!r}")


class Django:
    """The resource server of tests/interop, configured with `simple_jwt` (its SIMPLE_JWT
    setting): Django's own `runserver` on 127.0.0.1, port 0 (the port it binds is the one it
    prints), no autoreloader."""

    def __init__(self, python: str, simple_jwt: dict, workdir: Path, name: str = "django"):
        self.python = python
        self.simple_jwt = simple_jwt
        self.workdir = workdir
        self.name = name
        self.process: Process | None = None
        self.base = ""
        workdir.mkdir(parents=True, exist_ok=True)

    def _env(self) -> dict[str, str]:
        return clean_env(
            {
                "DJANGO_SETTINGS_MODULE": "resource_server.settings",
                "PYTHONPATH": str(HERE),
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
                "DJANGO_RUNSERVER_HIDE_WARNING": "true",
                "INTEROP_SIMPLE_JWT": json.dumps(self.simple_jwt),
            }
        )

    def start(self) -> "Django":
        argv = [self.python, str(HERE / "manage.py"), "runserver", "127.0.0.1:0", "--noreload"]
        self.process = Process(self.name, argv, self.workdir, self._env())
        self.base = self.process.wait_line(
            r"^Starting development server at (http://127\.0\.0\.1:\d+)/"
        ).group(1)
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()
            self.process = None

    def whoami(self, token: str) -> Reply:
        """GET the protected view with `Authorization: Bearer TOKEN`."""
        return http("GET", self.base + "/api/whoami/", token=token)

    def mint(self, access_token: str) -> dict:
        """`manage.py mint_tokens ACCESS`: simplejwt's RefreshToken.for_user on the stateless
        user of an access token it accepts."""
        r = subprocess.run(
            [self.python, str(HERE / "manage.py"), "mint_tokens", access_token],
            cwd=self.workdir,
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if r.returncode != 0:
            raise Fail(f"manage.py mint_tokens exited {r.returncode}: {r.stderr[-3000:]}")
        return json.loads(r.stdout)


# --- JWS -------------------------------------------------------------------------------------


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def segments(token: str) -> tuple[dict, dict, str]:
    """(header, claims, signature segment) of a compact JWS, unverified."""
    h, p, s = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p)), s


def header_of(token: str) -> dict:
    return segments(token)[0]


def claims_of(token: str) -> dict:
    return segments(token)[1]


def with_claims(token: str, **changes) -> str:
    """The token with its payload re-encoded with `changes`; header and signature kept."""
    h, _, s = token.split(".")
    claims = {**claims_of(token), **changes}
    return ".".join([h, b64url(json.dumps(claims, separators=(",", ":")).encode()), s])


def python_version() -> str:
    return sys.version.split()[0]
