"""Interop with the real thing: sekisho's tokens against a Django + DRF +
djangorestframework-simplejwt resource server and PyJWT, all from PyPI (pinned in
requirements.txt), each side in its own process on loopback.

Per algorithm (SEKISHO_INTEROP_ALGORITHMS, default HS256 EdDSA ES256 RS256) one sekisho is
started in a fresh data dir, with two users made by `sekisho user create --password-stdin`, and
a login at POST /api/token/ gives the tokens. Then:

  - the resource server (resource_server/, JWTStatelessUserAuthentication, a protected DRF view)
    is configured as a deployment would be — HS256: SIGNING_KEY = sekisho's signing key;
    asymmetric: JWK_URL = sekisho's JWKS, and separately VERIFYING_KEY = the PEM built from the
    JWKS entry — and accepts sekisho's access token as the user it names;
  - it refuses, with simplejwt's message, a tampered token (another user's id), an expired one
    (issued by a second sekisho on the same data dir with a 1 s access lifetime), one signed
    by another key under the same header (same kid), one whose kid the JWKS does not list, a
    refresh token used as access, `alg: none`, and HS256 signed with the public key; sekisho
    refuses each of them too;
  - asymmetric: the JWKS entries are RFC 7517 public keys with kid, alg and use, served with
    Cache-Control; PyJWT's PyJWKClient finds the key by kid and verifies;
  - asymmetric: across `sekisho keys rotate` tokens signed before and after verify in Django
    (JWK_URL) and PyJWT, a refresh token from before the rotation still refreshes, and after
    `sekisho keys retire --revoke OLD` the JWKS no longer lists the old key;
  - HS256: sekisho accepts what Django's simplejwt mints with the same key
    (RefreshToken.for_user on the stateless user of a sekisho token) at /api/token/verify/,
    /api/token/refresh/ and as a bearer token.

An algorithm the binary cannot sign with fails every test of it, with the reason; it is never
skipped. Run by scripts/interop.sh, which builds the venv and the binary.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import sys
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.core.management.utils import get_random_secret_key

import harness as h

# ==== The contract this module assumes: every name of sekisho's asymmetric signing lives here.
# (DESIGN §3.1, §3.6, §4, §5.) Adjust these if the implementation names them otherwise.
ALGORITHM_ENV = "SEKISHO_JWT__ALGORITHM"  # jwt.algorithm: HS256 (default) | EdDSA | ES256 | RS256
SIGNING_KEY_ENV = "SEKISHO_JWT__SIGNING_KEY"  # jwt.signing_key (HS256: used as UTF-8 bytes)
ACCESS_LIFETIME_ENV = "SEKISHO_JWT__ACCESS_TOKEN_LIFETIME"  # jwt.access_token_lifetime
JWKS_PATH = "/.well-known/jwks.json"
# The public JWK of each algorithm: kty, fixed members, the public key's members.
JWK_SHAPE = {
    "EdDSA": ("OKP", {"crv": "Ed25519"}, ("x",)),
    "ES256": ("EC", {"crv": "P-256"}, ("x", "y")),
    "RS256": ("RSA", {}, ("n", "e")),
}
JWK_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
KEYS_LIST = ["keys", "list"]
KEYS_ROTATE = ["keys", "rotate"]  # publishes a new key now; it becomes the signing key later
KEYS_RETIRE = ["keys", "retire", "--revoke"]  # followed by the KID: out of the JWKS at once
# Extra environment for every sekisho of one algorithm (none needed so far).
ALGORITHM_EXTRA_ENV: dict[str, dict[str, str]] = {"EdDSA": {}, "ES256": {}, "RS256": {}}
# Extra environment for the sekisho of the rotation test: how soon a key published by
# `keys rotate` becomes the signing key (the automatic-rotation settings' names are not final).
ROTATION_ENV = {"SEKISHO_JWT__KEY_PUBLISH_AHEAD": "3s"}
# Whether the rotated key signs only after a restart (False: the running server switches).
ROTATION_NEEDS_RESTART = False
# Bounds: a published/retired key showing in the JWKS (a running server on SQLite re-reads the
# keys every 30 s; on PostgreSQL a CLI change is broadcast at once); the new key signing.
JWKS_CHANGE_TIMEOUT = 45.0
ROTATION_SWITCH_TIMEOUT = 60.0
# ==== end of the contract

ALL_ALGORITHMS = ("HS256", "EdDSA", "ES256", "RS256")
ASYMMETRIC = tuple(a for a in ALL_ALGORITHMS if a != "HS256")
# How the resource server gets its key, per algorithm (simplejwt 5.5: for HS* the SIGNING_KEY
# verifies; otherwise JWK_URL when set, else VERIFYING_KEY).
DJANGO_MODES = {"HS256": ("SIGNING_KEY",), **{a: ("JWK_URL", "VERIFYING_KEY") for a in ASYMMETRIC}}
ALG_MODES = [(a, m) for a in ALL_ALGORITHMS for m in DJANGO_MODES[a]]

USERNAME = "alice"
OTHER_USERNAME = "bob"
PASSWORD = "interop password, not trimmed "
# What a deployment's settings.py holds: a Django SECRET_KEY (the HS256 key on both sides).
HS256_SECRET = get_random_secret_key()
# simplejwt's settings that must agree with sekisho's (jwt.user_id_claim, jwt.leeway), stated
# although they are the defaults on both sides.
COMMON_SIMPLE_JWT = {"USER_ID_CLAIM": "user_id", "TOKEN_TYPE_CLAIM": "token_type", "LEEWAY": 0}

DJANGO_401_DETAIL = "Given token not valid for any token type"


def sekisho_env(alg: str) -> dict[str, str]:
    env = {ALGORITHM_ENV: alg, **ALGORITHM_EXTRA_ENV.get(alg, {})}
    if alg == "HS256":
        env[SIGNING_KEY_ENV] = HS256_SECRET
    return env


# ---- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def binary() -> str:
    path = os.environ.get("SEKISHO_BIN", "")
    if not path or not os.access(path, os.X_OK):
        pytest.fail(f"SEKISHO_BIN is {path!r}: not an executable (scripts/interop.sh sets it)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def supports(binary, tmp_path_factory):
    """supports(alg): fails the calling test, with the reason, when `sekisho config check`
    refuses jwt.algorithm = alg."""
    verdicts: dict[str, str | None] = {}

    def check(alg: str) -> None:
        if alg not in verdicts:
            s = h.Sekisho(binary, tmp_path_factory.mktemp(f"config-check-{alg}"), sekisho_env(alg))
            r = s.cli(["config", "check"])
            reason = (r.stderr.strip() or r.stdout.strip()).splitlines()
            verdicts[alg] = None if r.returncode == 0 else (reason[-1] if reason else f"exit {r.returncode}")
        if verdicts[alg] is not None:
            pytest.fail(
                f"{binary} does not support {ALGORITHM_ENV}={alg}: `sekisho config check` says "
                f"{verdicts[alg]!r}. This test needs every algorithm of SEKISHO_INTEROP_ALGORITHMS "
                f"(now: {os.environ.get('SEKISHO_INTEROP_ALGORITHMS', 'the default, all four')}); "
                "set it to those the binary supports, e.g. SEKISHO_INTEROP_ALGORITHMS=HS256.",
                pytrace=False,
            )

    return check


class World:
    """One algorithm's sekisho, its users and a login's tokens."""

    def __init__(self, alg: str, binary: str, root: Path):
        self.alg = alg
        self.binary = binary
        self.root = root
        self.sekisho = h.Sekisho(binary, root / "sekisho", sekisho_env(alg))
        self.user_id = self.sekisho.create_user(USERNAME, PASSWORD)
        self.other_user_id = self.sekisho.create_user(OTHER_USERNAME, PASSWORD)
        self.sekisho.start()
        tokens = self.sekisho.login(USERNAME, PASSWORD)
        self.access, self.refresh = tokens["access"], tokens["refresh"]
        self.header = h.header_of(self.access)
        self.kid = self.header.get("kid")
        self.jwks_url = self.sekisho.url(JWKS_PATH)
        self._expired: str | None = None
        self._other_key = None

    # The JWKS entry that verifies this world's tokens, and its PEM (VERIFYING_KEY).
    def jwk(self) -> dict:
        r = h.http("GET", self.jwks_url)
        assert r.status == 200, r
        matches = [k for k in r.json["keys"] if k.get("kid") == self.kid]
        assert len(matches) == 1, f"kid {self.kid!r} in the JWKS: {r.json}"
        return matches[0]

    def pem(self) -> str:
        key = jwt.PyJWK(self.jwk()).key
        return key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def expired(self) -> str:
        """An access token sekisho issued with a 1 s lifetime, once it has expired: a second
        sekisho on the same data dir (so the same key) issues it."""
        if self._expired is None:
            short = h.Sekisho(
                self.binary,
                self.sekisho.workdir,
                {**sekisho_env(self.alg), ACCESS_LIFETIME_ENV: "1s"},
                name="sekisho-short-lived",
            ).start()
            try:
                token = short.login(USERNAME, PASSWORD)["access"]
            finally:
                short.stop()
            assert h.header_of(token) == self.header, "the short-lived instance signs with the same key"
            exp = h.claims_of(token)["exp"]
            h.wait_for("the 1 s token expiring", lambda: time.time() >= exp + 1, timeout=10)
            self._expired = token
        return self._expired

    def other_key(self):
        """A key the test controls, of the same algorithm as sekisho's."""
        if self._other_key is None:
            self._other_key = {
                "HS256": lambda: secrets.token_bytes(32),
                "EdDSA": ed25519.Ed25519PrivateKey.generate,
                "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
                "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
            }[self.alg]()
        return self._other_key

    def stop(self) -> None:
        self.sekisho.stop()


@pytest.fixture(scope="session")
def worlds(binary, supports, tmp_path_factory):
    """worlds(alg): that algorithm's World, started on first use."""
    made: dict[str, World] = {}

    def get(alg: str) -> World:
        supports(alg)
        if alg not in made:
            made[alg] = World(alg, binary, tmp_path_factory.mktemp(f"world-{alg}"))
        return made[alg]

    yield get
    for w in made.values():
        w.stop()


def simple_jwt_for(world: World, mode: str) -> dict:
    conf = {"ALGORITHM": world.alg, **COMMON_SIMPLE_JWT}
    if mode == "SIGNING_KEY":
        conf["SIGNING_KEY"] = HS256_SECRET
    elif mode == "JWK_URL":
        conf["JWK_URL"] = world.jwks_url
    elif mode == "VERIFYING_KEY":
        conf["VERIFYING_KEY"] = world.pem()
    else:
        raise AssertionError(mode)
    return conf


@pytest.fixture(scope="session")
def djangos(worlds, tmp_path_factory):
    """djangos(alg, mode): the resource server configured for that algorithm's sekisho."""
    made: dict[tuple[str, str], h.Django] = {}

    def get(alg: str, mode: str) -> h.Django:
        world = worlds(alg)
        if (alg, mode) not in made:
            made[(alg, mode)] = h.Django(
                sys.executable,
                simple_jwt_for(world, mode),
                tmp_path_factory.mktemp(f"django-{alg}-{mode}"),
                name=f"django-{alg}-{mode}",
            ).start()
        return made[(alg, mode)]

    yield get
    for d in made.values():
        d.stop()


# ---- forged tokens --------------------------------------------------------------------------


def sign_with(world: World, key, header: dict, claims: dict, alg: str | None = None) -> str:
    extra = {k: v for k, v in header.items() if k != "alg"}
    return jwt.encode(claims, key, algorithm=alg or world.alg, headers=extra)


def forge_tampered(w: World) -> str:
    return h.with_claims(w.access, user_id=w.other_user_id)


def forge_expired(w: World) -> str:
    return w.expired()


def forge_other_key(w: World) -> str:
    return sign_with(w, w.other_key(), w.header, h.claims_of(w.access))


def forge_unknown_kid(w: World) -> str:
    return sign_with(w, w.other_key(), {**w.header, "kid": "not-" + str(w.kid)}, h.claims_of(w.access))


def forge_refresh_as_access(w: World) -> str:
    return w.refresh


def forge_alg_none(w: World) -> str:
    header = {**w.header, "alg": "none"}
    return ".".join([h.b64url(json.dumps(header).encode()), w.access.split(".")[1], ""])


def forge_hs256_with_public_key(w: World) -> str:
    header = {**w.header, "alg": "HS256"}
    signing_input = h.b64url(json.dumps(header).encode()) + "." + w.access.split(".")[1]
    mac = hmac.new(w.pem().encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + h.b64url(mac)


# (name, forge, applies to (alg, mode), simplejwt's message)
FORGERIES = [
    ("tampered", forge_tampered, lambda a, m: True, "Token is invalid"),
    ("expired", forge_expired, lambda a, m: True, "Token is expired"),
    ("other-key-same-header", forge_other_key, lambda a, m: True, "Token is invalid"),
    ("unknown-kid", forge_unknown_kid, lambda a, m: m == "JWK_URL", "Token is invalid"),
    ("refresh-as-access", forge_refresh_as_access, lambda a, m: True, "Token has wrong type"),
    ("alg-none", forge_alg_none, lambda a, m: True, "Token is invalid"),
    ("hs256-with-public-key", forge_hs256_with_public_key, lambda a, m: a in ASYMMETRIC, "Token is invalid"),
]
REFUSALS = [
    pytest.param(a, m, name, id=f"{a}-{m}-{name}")
    for a, m in ALG_MODES
    for name, _, applies, _ in FORGERIES
    if applies(a, m)
]


def forgery(name: str):
    for n, forge, _, message in FORGERIES:
        if n == name:
            return forge, message
    raise AssertionError(name)


def assert_django_refuses(reply: h.Reply, message: str) -> None:
    assert reply.status == 401, reply
    assert reply.headers.get("WWW-Authenticate") == 'Bearer realm="api"', reply.headers
    body = reply.json
    assert body["detail"] == DJANGO_401_DETAIL and body["code"] == "token_not_valid", body
    assert [m["message"] for m in body["messages"]] == [message], body


def sekisho_me(world: World, token: str) -> h.Reply:
    return h.http("GET", world.sekisho.url("/api/auth/me/"), token=token)


# ---- every algorithm: the resource server accepts and refuses -------------------------------


@pytest.mark.parametrize("alg,mode", [pytest.param(a, m, id=f"{a}-{m}") for a, m in ALG_MODES])
def test_django_accepts_a_sekisho_access_token(worlds, djangos, alg, mode):
    w = worlds(alg)
    claims = h.claims_of(w.access)
    assert claims["token_type"] == "access" and claims["user_id"] == w.user_id
    assert isinstance(claims["user_id"], str) and re.fullmatch(r"[0-9a-f]{32}", claims["jti"])
    assert w.header["alg"] == alg
    r = djangos(alg, mode).whoami(w.access)
    assert r.status == 200, r
    assert r.json == {"user_id": w.user_id, "token_type": "access", "jti": claims["jti"]}


@pytest.mark.parametrize("alg,mode,case", REFUSALS)
def test_django_refuses(worlds, djangos, alg, mode, case):
    w = worlds(alg)
    forge, message = forgery(case)
    token = forge(w)
    assert_django_refuses(djangos(alg, mode).whoami(token), message)
    # The same token as a bearer token on sekisho's own API: refused as well.
    r = sekisho_me(w, token)
    assert r.status == 401 and r.json["code"] == "token_not_valid", r


@pytest.mark.parametrize("alg", ALL_ALGORITHMS)
def test_the_expired_token_was_good_until_it_expired(worlds, alg):
    """The expired case above is refused for its exp alone: the same token, with simplejwt's
    LEEWAY (and PyJWT's) wide enough, verifies."""
    w = worlds(alg)
    token = w.expired()
    key = HS256_SECRET if alg == "HS256" else w.pem()
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token, key, algorithms=[alg])
    claims = jwt.decode(token, key, algorithms=[alg], leeway=3600)
    assert claims["user_id"] == w.user_id and claims["token_type"] == "access"


# ---- HS256: both sides mint and verify ------------------------------------------------------


@pytest.mark.parametrize("alg", ["HS256"])
def test_pyjwt_decodes_a_sekisho_hs256_token_with_the_shared_key(worlds, alg):
    w = worlds(alg)
    claims = jwt.decode(w.access, HS256_SECRET, algorithms=["HS256"])
    assert claims["user_id"] == w.user_id and claims["exp"] > claims["iat"]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(w.access, HS256_SECRET + "x", algorithms=["HS256"])


@pytest.mark.parametrize("alg", ["HS256"])
def test_sekisho_accepts_tokens_minted_by_django_simplejwt(worlds, djangos, alg):
    w = worlds(alg)
    django = djangos(alg, "SIGNING_KEY")
    minted = django.mint(w.access)
    assert minted["user_id"] == w.user_id
    refresh_claims = h.claims_of(minted["refresh"])
    assert refresh_claims["token_type"] == "refresh" and refresh_claims["user_id"] == w.user_id

    assert w.sekisho.verifies(minted["access"])
    assert w.sekisho.verifies(minted["refresh"])
    me = sekisho_me(w, minted["access"])
    assert me.status == 200 and str(me.json["id"]) == w.user_id, me
    assert me.json["username"] == USERNAME

    r = w.sekisho.post("/api/token/refresh/", {"refresh": minted["refresh"]})
    assert r.status == 200, r
    # What sekisho hands back for Django's refresh token is again good in Django.
    back = django.whoami(r.json["access"])
    assert back.status == 200 and back.json["user_id"] == w.user_id, back
    if "refresh" in r.json:
        assert w.sekisho.verifies(r.json["refresh"])
    # And Django's own access token in Django (the round trip's other half).
    assert django.whoami(minted["access"]).status == 200


@pytest.mark.parametrize("alg", ["HS256"])
def test_hs256_jwks_never_publishes_the_secret(worlds, alg):
    w = worlds(alg)
    r = h.http("GET", w.jwks_url)
    assert r.status in (200, 404), r
    if r.status == 200:
        for k in r.json.get("keys", []):
            assert k.get("kty") != "oct" and "k" not in k, r.json
    assert HS256_SECRET.encode() not in r.raw


# ---- asymmetric: the JWKS and PyJWT ---------------------------------------------------------


@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_jwks_serves_rfc7517_public_keys(worlds, alg):
    w = worlds(alg)
    assert w.header["alg"] == alg and w.kid, w.header
    r = h.http("GET", w.jwks_url)
    assert r.status == 200, r
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    assert r.headers.get("Cache-Control"), "the JWKS carries Cache-Control"
    keys = r.json["keys"]
    assert keys and len({k["kid"] for k in keys}) == len(keys), r.json
    kty, fixed, members = JWK_SHAPE[alg]
    for k in keys:
        assert not set(JWK_PRIVATE_MEMBERS) & set(k), f"private members in {k}"
    entry = w.jwk()
    assert entry["kty"] == kty and entry["alg"] == alg and entry["use"] == "sig", entry
    for name, value in fixed.items():
        assert entry[name] == value, entry
    for name in members:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", entry[name]), entry
    key = jwt.PyJWK(entry)
    assert key.algorithm_name == alg
    if alg == "RS256":
        assert key.key.key_size >= 2048


@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_pyjwk_client_verifies_by_kid(worlds, alg):
    w = worlds(alg)
    client = jwt.PyJWKClient(w.jwks_url)
    key = client.get_signing_key_from_jwt(w.access)
    assert key.key_id == w.kid
    claims = jwt.decode(w.access, key.key, algorithms=[alg])
    assert claims["user_id"] == w.user_id and claims["token_type"] == "access"

    forged = forge_other_key(w)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, client.get_signing_key_from_jwt(forged).key, algorithms=[alg])
    with pytest.raises(jwt.PyJWKClientError):
        client.get_signing_key_from_jwt(forge_unknown_kid(w))
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(w.expired(), client.get_signing_key_from_jwt(w.expired()).key, algorithms=[alg])


# ---- asymmetric: key rotation ---------------------------------------------------------------


def jwks_kids(s: h.Sekisho) -> set[str]:
    r = h.http("GET", s.url(JWKS_PATH))
    assert r.status == 200, r
    return {k["kid"] for k in r.json["keys"]}


@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_key_rotation_breaks_nothing(binary, supports, tmp_path_factory, alg):
    supports(alg)
    root = tmp_path_factory.mktemp(f"rotation-{alg}")
    s = h.Sekisho(binary, root / "sekisho", {**sekisho_env(alg), **ROTATION_ENV}, name="sekisho-rotation")
    user_id = s.create_user(USERNAME, PASSWORD)
    s.start()
    djangos: list[h.Django] = []

    def django(name: str) -> h.Django:
        d = h.Django(
            sys.executable,
            {"ALGORITHM": alg, "JWK_URL": s.url(JWKS_PATH), **COMMON_SIMPLE_JWT},
            root / name,
            name=name,
        ).start()
        djangos.append(d)
        return d

    def accepted(d: h.Django, token: str) -> bool:
        r = d.whoami(token)
        assert r.status in (200, 401), r
        return r.status == 200 and r.json["user_id"] == user_id

    try:
        before = s.login(USERNAME, PASSWORD)
        spare_refresh = s.login(USERNAME, PASSWORD)["refresh"]  # used only after the switch
        old_kid = h.header_of(before["access"])["kid"]
        assert old_kid in jwks_kids(s)
        # A verifier that fetched the JWKS before the rotation (refetching on an unknown kid).
        early = jwt.PyJWKClient(s.url(JWKS_PATH), cooldown_duration=0)
        assert early.get_signing_key_from_jwt(before["access"]).key_id == old_kid

        s.cli_ok(KEYS_ROTATE)
        new_kids = h.wait_for(
            "the rotated key published in the JWKS",
            lambda: (jwks_kids(s) - {old_kid}) or None,
            JWKS_CHANGE_TIMEOUT,
        )
        assert len(new_kids) == 1, new_kids
        (new_kid,) = new_kids
        assert old_kid in jwks_kids(s), "the old key is still published"
        listing = s.cli_ok(KEYS_LIST)
        assert old_kid in listing and new_kid in listing, listing

        # A resource server whose JWKS is fetched after the publication (as every verifier's is
        # once its cache has turned over while the new key waits to sign).
        d = django("django-rotation")
        assert accepted(d, before["access"])

        if ROTATION_NEEDS_RESTART:
            s.stop()
            s.start()
        # The new key takes over signing; the refresh chain goes on across the switch.
        refresh = before["refresh"]

        def next_access():
            nonlocal refresh
            r = s.post("/api/token/refresh/", {"refresh": refresh})
            assert r.status == 200, r
            refresh = r.json.get("refresh", refresh)
            kid = h.header_of(r.json["access"])["kid"]
            assert kid in (old_kid, new_kid), kid
            return r.json["access"] if kid == new_kid else None

        after = h.wait_for("the rotated key signing", next_access, ROTATION_SWITCH_TIMEOUT, 0.5)

        def pyjwt_user(client: jwt.PyJWKClient, token: str) -> str:
            key = client.get_signing_key_from_jwt(token).key
            return jwt.decode(token, key, algorithms=[alg])["user_id"]

        for token in (before["access"], after):
            assert accepted(d, token)
            assert s.verifies(token)
            assert pyjwt_user(jwt.PyJWKClient(s.url(JWKS_PATH)), token) == user_id
        assert pyjwt_user(early, after) == user_id  # refetched on the unknown kid
        # A refresh token signed by the old key still refreshes, now under the new key.
        r = s.post("/api/token/refresh/", {"refresh": spare_refresh})
        assert r.status == 200, r
        assert h.header_of(r.json["access"])["kid"] == new_kid
        assert accepted(d, r.json["access"])

        s.cli_ok([*KEYS_RETIRE, old_kid])
        h.wait_for(
            "the retired key gone from the JWKS",
            lambda: old_kid not in jwks_kids(s),
            JWKS_CHANGE_TIMEOUT,
        )
        assert new_kid in jwks_kids(s)
        with pytest.raises(jwt.PyJWKClientError):
            jwt.PyJWKClient(s.url(JWKS_PATH)).get_signing_key_from_jwt(before["access"])
        fresh = django("django-after-retire")
        assert_django_refuses(fresh.whoami(before["access"]), "Token is invalid")
        assert accepted(fresh, after)
    finally:
        for d in djangos:
            d.stop()
        s.stop()
