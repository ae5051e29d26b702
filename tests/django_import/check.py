#!/usr/bin/env python3
"""The end-to-end check of `sekisho import-django` (scripts/django_import.sh runs it in the
pinned venv): a real Django 5.2 project is migrated and filled by `manage.py seed`, imported
by the real binary from its SQLite file, and then used against `sekisho serve` on loopback,
as a dual-run: browser sessions Django made (before and after the import) are taken over
without a new login, Django's simplejwt tokens keep working, password hashes stay Django's
until `import-django --finish`.

Environment: SEKISHO_BIN (the binary), WORK (a scratch directory)."""
import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ["SEKISHO_BIN"]
WORK = os.environ["WORK"]
SECRET = "django-import-e2e-secret-key-5fb1e0c4a9d24c7e8f61b2a3c4d5e6f7"
DJANGO_DB = os.path.join(WORK, "django.sqlite3")

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


django_env = dict(os.environ, DJANGO_SECRET_KEY=SECRET, DJANGO_IMPORT_DB=DJANGO_DB,
                  PYTHONDONTWRITEBYTECODE="1")
sekisho_env = {k: v for k, v in os.environ.items() if not k.startswith("SEKISHO_")}
sekisho_env.update({
    "SEKISHO_SERVER__BIND": "127.0.0.1:0",
    "SEKISHO_SERVER__DATA_DIR": os.path.join(WORK, "sekisho"),
    "SEKISHO_DATABASE__URL": f"sqlite://{WORK}/sekisho/sekisho.db",
    # The Django project's SECRET_KEY signs its simplejwt tokens (SIGNING_KEY = SECRET_KEY).
    "SEKISHO_JWT__SIGNING_KEY": SECRET,
    # The dual-run: Django's sessions, read live from its database, signed with SECRET_KEY.
    "SEKISHO_DJANGO__DATABASE_URL": DJANGO_DB,
    "SEKISHO_DJANGO__SECRET_KEY": SECRET,
    "SEKISHO_LOG": "warn",
})


def manage(*args):
    return subprocess.run([sys.executable, os.path.join(HERE, "manage.py"), *args], env=django_env,
                          check=True, capture_output=True, text=True).stdout


def sekisho(*args):
    return subprocess.run([BIN, *args], env=sekisho_env, capture_output=True, text=True)


def counts(out, table):
    for line in out.splitlines():
        cells = line.split()
        if cells and cells[0] == table:
            return [int(c) for c in cells[1:]]
    return None


def django(*args):
    return json.loads(manage("dualrun", *args))


def django_hashes():
    db = sqlite3.connect(DJANGO_DB)
    try:
        return dict(db.execute("SELECT username, password FROM auth_user"))
    finally:
        db.close()


manage("migrate", "-v0")
seed = json.loads(manage("seed"))
ids = seed["ids"]
# A browser logged in to Django before the move.
alice_session = django("login", "alice", seed["passwords"]["alice"])["sessionid"]

# --- the import ----------------------------------------------------------------------------
dry = sekisho("import-django", "--from", DJANGO_DB, "--dry-run")
check("dry run exits 0", dry.returncode == 0, dry.stderr)
check("dry run says it wrote nothing", "nothing was written" in dry.stdout, dry.stdout)
check("dry run counts every Django user", counts(dry.stdout, "auth_user") == [len(ids), 0, 0, 0],
      dry.stdout)
listed = sekisho("user", "list")
check("dry run left sekisho without users", len(listed.stdout.strip().splitlines()) == 1,
      listed.stdout)

run = sekisho("import-django", "--from", f"sqlite://{DJANGO_DB}")
print(run.stdout)
check("import exits 0", run.returncode == 0, run.stderr)
check("users created", counts(run.stdout, "auth_user") == [len(ids), 0, 0, 0])
check("group created", counts(run.stdout, "auth_group") == [1, 0, 0, 0])
check("memberships", counts(run.stdout, "auth_user_groups") == [1, 0, 0, 0])
check("direct permission", counts(run.stdout, "auth_user_user_permissions") == [1, 0, 0, 0])
check("group permissions", counts(run.stdout, "auth_group_permissions") == [2, 0, 0, 0])
check("guardian grants", counts(run.stdout, "guardian_*objectpermission") == [2, 0, 0, 0])
check("blacklisted token recorded",
      counts(run.stdout, "token_blacklist_blacklistedtoken") == [1, 0, 0, 0])
check("lookalike usernames reported",
      '"paypal" and "paypaI"' in run.stdout, run.stdout)

check("the import starts the dual-run", "dual-run in progress since" in run.stdout, run.stdout)

# Django keeps serving after the import: a new browser login, new tokens, a blacklisting.
paypal_session = django("login", "paypal", seed["passwords"]["paypal"])["sessionid"]
spare_session = django("login", "paypal", seed["passwords"]["paypal"])["sessionid"]
minted = django("mint", "carol")
doomed = django("mint", "dave")["refresh"]
django("blacklist", doomed)

groups = sekisho("group", "list").stdout
check("clerks carry their Django permissions",
      any("clerks" in l and "shop.change_order,shop.view_order" in l for l in groups.splitlines()),
      groups)

# --- the server ----------------------------------------------------------------------------
server = subprocess.Popen([BIN, "serve"], env=sekisho_env, stdout=subprocess.PIPE, text=True)
try:
    base = None
    for line in server.stdout:
        if line.startswith("sekisho listening on "):
            base = line.split("listening on ", 1)[1].strip()
            break
    assert base, "the server did not start"

    def call(method, path, body=None, bearer=None, cookies=None, headers=None, full=False):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if bearer:
            req.add_header("Authorization", f"Bearer {bearer}")
        if cookies:
            req.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()))
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, head, raw = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, head, raw = e.code, e.headers, e.read()
        body = json.loads(raw or b"{}")
        if not full:
            return status, body
        jar = {}
        for c in head.get_all("Set-Cookie") or []:
            name, _, rest = c.partition("=")
            jar[name.strip()] = rest.split(";", 1)[0]
        return status, body, jar

    # --- Django's browser sessions ----------------------------------------------------------
    status, me, jar = call("GET", "/api/auth/me/", cookies={"sessionid": alice_session},
                           full=True)
    check("the sessionid Django set before the import is accepted, no new login",
          status == 200 and me.get("id") == ids["alice"], (status, me))
    new_session = jar.get("sessionid", "")
    check("... exchanged for a fresh sekisho session and CSRF cookie",
          len(new_session) == 64 and new_session != alice_session and jar.get("csrftoken"), jar)
    own = {"sessionid": new_session, "csrftoken": jar.get("csrftoken", "")}
    status, me = call("GET", "/api/auth/me/", cookies=own)
    check("... which then works as a sekisho session", status == 200
          and me.get("username") == "alice", me)
    status, me = call("PATCH", "/api/auth/me/", {"first_name": "Alice"}, cookies=own,
                      headers={"X-CSRFToken": own["csrftoken"]})
    check("... CSRF token included", status == 200 and me.get("first_name") == "Alice", me)
    status, _ = call("GET", "/api/auth/me/", cookies={"sessionid": alice_session})
    check("the Django session key is accepted once (a replay is refused)", status == 401)
    status, me = call("GET", "/api/auth/me/", cookies={"sessionid": paypal_session})
    check("a Django session made after the import is accepted too",
          status == 200 and me.get("id") == ids["paypal"], me)

    # --- simplejwt tokens Django minted after the import --------------------------------------
    status, me = call("GET", "/api/auth/me/", bearer=minted["access"])
    check("an access token Django minted after the import works", status == 200
          and me.get("id") == ids["carol"], me)
    status, body = call("POST", "/api/token/refresh/", {"refresh": minted["refresh"]})
    check("a refresh token Django minted after the import refreshes",
          status == 200 and "access" in body, body)

    for name, password in seed["passwords"].items():
        status, body = call("POST", "/api/token/", {"username": name, "password": password})
        check(f"{name} ({seed['hashers'][name]}) logs in with the Django password", status == 200,
              body)
        status, _ = call("POST", "/api/token/", {"username": name, "password": password + "x"})
        check(f"{name}: a wrong password is refused", status == 401)
    status, _ = call("POST", "/api/token/", {"username": "ivan", "password": "ivan-pass-9"})
    check("an inactive Django user is refused", status == 401)

    status, me = call("GET", "/api/auth/me/", bearer=seed["live_access"])
    check("Django's access token is a bearer token here", status == 200, me)
    check("... naming the same user (Django's id)",
          me.get("id") == ids["alice"] and me.get("username") == "alice", me)
    check("... with the group and its permissions",
          me.get("groups") == ["clerks"]
          and me.get("permissions") == ["shop.change_order", "shop.view_order"], me)

    status, body = call("POST", "/api/token/refresh/", {"refresh": seed["live_refresh"]})
    check("Django's refresh token refreshes", status == 200 and "access" in body, body)
    if status == 200:
        status, me = call("GET", "/api/auth/me/", bearer=body["access"])
        check("... for the same user", me.get("id") == ids["alice"], me)

    for path in ("/api/token/refresh/", "/api/token/blacklist/"):
        status, body = call("POST", path, {"refresh": seed["blacklisted_refresh"]})
        check(f"the blacklisted refresh token stays refused at {path}",
              status == 401 and body.get("detail") == "Token is blacklisted", body)

    status, body = call("POST", "/api/token/", {"username": "carol", "password": "carol-pass-3"})
    carol = body.get("access")
    for order, allowed in ((seed["orders"]["first"], True), (seed["orders"]["second"], False)):
        status, body = call("POST", "/api/authz/check/",
                            {"permission": "shop.change_order", "object_type": "shop.order",
                             "object_id": str(order)}, bearer=carol)
        check(f"guardian: carol may change order {order}: {allowed}",
              status == 200 and body.get("allowed") is allowed, body)

    status, body = call("POST", "/api/token/", {"username": "root", "password": "root-pass-10"})
    status, me = call("GET", "/api/auth/me/", bearer=body.get("access"))
    check("the superuser stays one", me.get("is_superuser") is True and me.get("is_staff") is True,
          me)

    # --- hashes stay Django's during the dual-run -------------------------------------------
    def sekisho_hashes():
        stored = sqlite3.connect(f"{WORK}/sekisho/sekisho.db")
        try:
            return dict(stored.execute("SELECT username, password FROM users"))
        finally:
            stored.close()

    hashes, theirs = sekisho_hashes(), django_hashes()
    for name in seed["passwords"]:
        check(f"{name}'s hash stays Django's after the logins (dual-run)",
              hashes.get(name) == theirs.get(name), hashes.get(name, "")[:20])

    # --- a re-run: what Django changed since comes over, the blacklisting included ----------
    again = sekisho("import-django", "--from", DJANGO_DB)
    check("re-run exits 0", again.returncode == 0, again.stderr)
    for table in ("auth_group", "auth_permission", "auth_user_groups",
                  "auth_group_permissions", "guardian_*objectpermission"):
        c = counts(again.stdout, table)
        check(f"re-run: {table} unchanged", c is not None and c[0] == c[1] == c[3] == 0,
              again.stdout)
    # paypal logged in to Django after the import (last_login moved): the only update.
    check("re-run: auth_user only brings paypal's Django login over",
          counts(again.stdout, "auth_user") == [0, 1, len(ids) - 1, 0], again.stdout)
    check("re-run: the token Django blacklisted after the import is recorded",
          (counts(again.stdout, "token_blacklist_blacklistedtoken") or [0])[0] == 1,
          again.stdout)
    time.sleep(0.5)  # the server's read cache (cache.ttl, 250 ms) sees the re-run
    status, body = call("POST", "/api/token/refresh/", {"refresh": doomed})
    check("a token Django blacklisted after the import is refused once the import re-ran",
          status == 401 and body.get("detail") == "Token is blacklisted", body)

    # --- the end of the dual-run ------------------------------------------------------------
    dry = sekisho("import-django", "--finish", "--dry-run")
    check("--finish --dry-run says what would change",
          dry.returncode == 0 and dry.stdout.startswith("dry run: --finish would end"),
          (dry.stdout, dry.stderr))
    done = sekisho("import-django", "--finish")
    check("--finish ends the dual-run in one line",
          done.returncode == 0 and done.stdout.startswith("finished the dual-run")
          and len(done.stdout.strip().splitlines()) == 1, (done.stdout, done.stderr))
    status, _ = call("GET", "/api/auth/me/", cookies={"sessionid": spare_session})
    check("after --finish no Django session is exchanged", status == 401)
    for name, password in seed["passwords"].items():
        status, _ = call("POST", "/api/token/", {"username": name, "password": password})
        check(f"{name} logs in after --finish", status == 200)
    hashes = sekisho_hashes()
    for name in seed["passwords"]:
        check(f"{name}'s hash was rewritten to Argon2id at the first login after --finish",
              hashes.get(name, "").startswith("argon2$argon2id$"), hashes.get(name, "")[:20])
finally:
    server.terminate()
    server.wait(timeout=10)

# --- a re-run after the upgrades changes nothing --------------------------------------------
again = sekisho("import-django", "--from", DJANGO_DB)
check("re-run exits 0", again.returncode == 0, again.stderr)
for table in ("auth_user", "auth_group", "auth_permission", "auth_user_groups",
              "auth_group_permissions", "guardian_*objectpermission"):
    c = counts(again.stdout, table)
    check(f"re-run: {table} unchanged", c is not None and c[0] == c[1] == c[3] == 0, again.stdout)
check("re-run after --finish: the upgraded hashes are kept",
      sqlite3.connect(f"{WORK}/sekisho/sekisho.db").execute(
          "SELECT password FROM users WHERE username = 'alice'").fetchone()[0]
      .startswith("argon2$argon2id$"))

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
