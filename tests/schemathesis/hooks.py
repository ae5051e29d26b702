"""Schemathesis hooks for scripts/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

Environment, set by the script:

  SEKISHO_ST_BASE       the server's base URL
  SEKISHO_ST_USERNAME   the acting account (a superuser, so the admin API answers past 403)
  SEKISHO_ST_PASSWORD   its password
  SEKISHO_ST_SELF_ID    its user id
  SEKISHO_ST_OTHER_ID   the id of another user, the target of admin cases aimed at SELF_ID
  SEKISHO_ST_RELOGIN    unset, or `bearer` / `session`: log in afresh for every test case

Every run: a case of `/api/admin/users/{id}/...` aimed at the acting account is sent to
SEKISHO_ST_OTHER_ID instead, so deactivating the account, setting its password or dropping its
flags cannot end the login the rest of the run depends on. Any other id, generated or taken from
a response by the stateful phase, is sent as it is.

With SEKISHO_ST_RELOGIN (the run of the operations that end the login they are called with:
logout, logout-all, password change, session delete, and session login, which replaces the
session its cookie names), each case gets a login of its own: a
bearer token from `POST /api/token/`, or a session from `GET /api/auth/csrf/` +
`POST /api/auth/login/` (the `sessionid` and rotated `csrftoken` cookies plus the `X-CSRFToken`
header). To reach the success paths too, every other password change is sent with the account's
real password as `old_password` (a successful change is followed: the next login uses the new
password), and every other session delete names a live session of the account.
"""

import itertools
import os
import threading
import time

import requests
import schemathesis

BASE = os.environ["SEKISHO_ST_BASE"].rstrip("/")
USERNAME = os.environ["SEKISHO_ST_USERNAME"]
SELF_ID = os.environ.get("SEKISHO_ST_SELF_ID")
OTHER_ID = os.environ.get("SEKISHO_ST_OTHER_ID")
RELOGIN = os.environ.get("SEKISHO_ST_RELOGIN", "")

# DESIGN §3.3: the cookie and header names (the defaults; the script configures no others).
SESSION_COOKIE = "sessionid"
CSRF_COOKIE = "csrftoken"
CSRF_HEADER = "X-CSRFToken"
TIMEOUT = 10
LOCKOUT_RETRIES = 5


class _Account:
    """The acting account's password, followed across changes. With SEKISHO_ST_PASSWORD_FILE,
    it is read from and written back to that file, so the runs after this one log in with it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.file = os.environ.get("SEKISHO_ST_PASSWORD_FILE")
        self._password = os.environ["SEKISHO_ST_PASSWORD"]
        if self.file and os.path.exists(self.file):
            with open(self.file) as f:
                self._password = f.read()

    @property
    def password(self):
        return self._password

    @password.setter
    def password(self, value):
        self._password = value
        if self.file:
            with open(self.file, "w") as f:
                f.write(value)


ACCOUNT = _Account()
_turns = itertools.count()


def _operation_id(case):
    return case.operation.definition.raw.get("operationId")


def _login(send):
    """Sends a login until it is not throttled: generated logins that reuse the acting
    username (schemathesis reuses values it has seen in responses) can lock the account out
    for `throttle.lockout`; the acting account's own login waits out `Retry-After`."""
    for _ in range(LOCKOUT_RETRIES):
        r = send()
        if r.status_code != 429:
            break
        time.sleep(int(r.headers.get("Retry-After", "1")))
    r.raise_for_status()
    return r


def session_login():
    """A fresh session: returns its cookies (`sessionid` and the session's `csrftoken`)."""
    s = requests.Session()
    r = s.get(f"{BASE}/api/auth/csrf/", timeout=TIMEOUT)
    r.raise_for_status()
    _login(
        lambda: s.post(
            f"{BASE}/api/auth/login/",
            json={"username": USERNAME, "password": ACCOUNT.password},
            headers={CSRF_HEADER: s.cookies[CSRF_COOKIE]},
            timeout=TIMEOUT,
        )
    )
    return {SESSION_COOKIE: s.cookies[SESSION_COOKIE], CSRF_COOKIE: s.cookies[CSRF_COOKIE]}


def bearer_login():
    r = _login(
        lambda: requests.post(
            f"{BASE}/api/token/",
            json={"username": USERNAME, "password": ACCOUNT.password},
            timeout=TIMEOUT,
        )
    )
    return r.json()["access"]


def spare_session_id():
    """The public id of a new session of the acting account (for a delete that succeeds)."""
    cookies = session_login()
    r = requests.get(f"{BASE}/api/auth/sessions/", cookies=cookies, timeout=TIMEOUT)
    r.raise_for_status()
    return next(s["id"] for s in r.json() if s["current"])


if RELOGIN:
    if RELOGIN not in ("bearer", "session"):
        raise RuntimeError(f"SEKISHO_ST_RELOGIN must be bearer or session, not {RELOGIN!r}")

    # No caching (a login per case) and no replay on 401: a 401 is an answer to check, not a
    # reason to log in again and hide it.
    @schemathesis.auth(refresh_interval=None, retry_on=[])
    class FreshLogin:
        def get(self, case, context):
            with ACCOUNT.lock:
                if RELOGIN == "bearer":
                    return {"access": bearer_login()}
                return {"cookies": session_login()}

        def set(self, case, data, context):
            if case.headers is None:
                case.headers = {}
            if "access" in data:
                case.headers["Authorization"] = f"Bearer {data['access']}"
            else:
                case.cookies = {**(case.cookies or {}), **data["cookies"]}
                case.headers[CSRF_HEADER] = data["cookies"][CSRF_COOKIE]


@schemathesis.hook
def before_call(context, case, kwargs):
    params = case.path_parameters
    if (
        SELF_ID
        and OTHER_ID
        and params
        and case.path.startswith("/api/admin/users/{id}")
        and str(params.get("id")) == SELF_ID
    ):
        params["id"] = int(OTHER_ID)
    if not RELOGIN:
        return
    op = _operation_id(case)
    if op == "changePassword" and isinstance(case.body, dict) and next(_turns) % 2 == 0:
        case.body["old_password"] = ACCOUNT.password
    elif op == "deleteSession" and params is not None and next(_turns) % 2 == 0:
        params["id"] = spare_session_id()


@schemathesis.hook
def after_call(context, case, response):
    if (
        RELOGIN
        and _operation_id(case) == "changePassword"
        and response.status_code == 200
        and isinstance(case.body, dict)
    ):
        with ACCOUNT.lock:
            ACCOUNT.password = case.body["new_password"]
