"""Writes password hashes made by Django's own hashers, one JSON object a line:

    {"hasher": ..., "password": ..., "wrong": ..., "encoded": ..., "expect": ..., "django": ...}

`expect` is "upgrade" (sekisho must accept `password`, refuse `wrong` and ask to rehash) or
"never" (an unusable or unsupported value: sekisho must refuse both). Every line is first
checked with Django's own `check_password`, so a vector Django itself would not accept is
never written.

Run with Django 5.2 for the current hashers, and with `--legacy` and Django 4.2 first on
PYTHONPATH for the hashers Django has since removed (see scripts/django_hashers.sh). Salts are
random, so every run gives fresh vectors.
"""

import argparse
import json
import sys
import warnings

import django
from django.conf import settings

parser = argparse.ArgumentParser()
parser.add_argument("--legacy", action="store_true")
parser.add_argument("--out", default="-")
args = parser.parse_args()
LEGACY = args.legacy
if django.VERSION[:2] != ((4, 2) if LEGACY else (5, 2)):
    sys.exit(f"wrong Django on the path: {django.get_version()}")

CURRENT_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.BCryptPasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    "django.contrib.auth.hashers.MD5PasswordHasher",
]
LEGACY_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.SHA1PasswordHasher",
    "django.contrib.auth.hashers.UnsaltedSHA1PasswordHasher",
    "django.contrib.auth.hashers.UnsaltedMD5PasswordHasher",
    "django.contrib.auth.hashers.CryptPasswordHasher",
]

settings.configure(PASSWORD_HASHERS=LEGACY_HASHERS if LEGACY else CURRENT_HASHERS)
django.setup()
warnings.simplefilter("ignore")  # the legacy hashers warn that they are deprecated

from django.contrib.auth import hashers as h  # noqa: E402

PASSWORDS = [
    "hunter2",
    "lètmein",
    "пароль-密码-🔑",
    "",
    "  spaces kept  ",
    "x" * 100,
]
WRONG = {"": "x"}


def wrong_for(password):
    return WRONG.get(password, password + "!")


def fits_bcrypt(password):
    # Python's bcrypt 5 refuses passwords over 72 bytes instead of truncating them.
    return len(password.encode()) <= 72


out_lines = []


def emit(name, hasher, password, encoded=None, expect="upgrade"):
    if encoded is None:
        encoded = h.make_password(password, hasher=hasher)
    wrong = wrong_for(password)
    accepts = h.check_password(password, encoded)
    refuses = not h.check_password(wrong, encoded)
    if expect == "upgrade" and not (accepts and refuses):
        sys.exit(f"Django does not verify its own {name} hash {encoded!r}")
    if expect == "never" and accepts and name != "crypt":
        sys.exit(f"Django accepts the unusable {name} value {encoded!r}")
    out_lines.append(
        {
            "hasher": name,
            "password": password,
            "wrong": wrong,
            "encoded": encoded,
            "expect": expect,
            "django": django.get_version(),
        }
    )


if not LEGACY:
    import argon2

    class FastPBKDF2(h.PBKDF2PasswordHasher):
        iterations = 1000

    class FastPBKDF2SHA1(h.PBKDF2SHA1PasswordHasher):
        iterations = 1000

    class FastArgon2(h.Argon2PasswordHasher):
        time_cost = 1
        memory_cost = 64
        parallelism = 2

    class FastArgon2i(FastArgon2):
        """Django 1.10 to 3.1 wrote argon2i; this is its encoder with that type."""

        def params(self):
            p = super().params()
            p.type = argon2.low_level.Type.I
            return p

    class FastBCryptSHA256(h.BCryptSHA256PasswordHasher):
        rounds = 4

    class FastBCrypt(h.BCryptPasswordHasher):
        rounds = 4

    class FastBCrypt2a(FastBCrypt):
        """Older bcrypt libraries wrote the `$2a$` prefix."""

        def salt(self):
            import bcrypt

            return bcrypt.gensalt(self.rounds, prefix=b"2a")

    class FastScrypt(h.ScryptPasswordHasher):
        work_factor = 2**10
        parallelism = 1

    fast = [
        ("pbkdf2_sha256", FastPBKDF2()),
        ("pbkdf2_sha1", FastPBKDF2SHA1()),
        ("argon2id", FastArgon2()),
        ("argon2i", FastArgon2i()),
        ("bcrypt_sha256", FastBCryptSHA256()),
        ("bcrypt", FastBCrypt()),
        ("bcrypt_2a", FastBCrypt2a()),
        ("scrypt", FastScrypt()),
        ("md5", h.MD5PasswordHasher()),
    ]
    for name, hasher in fast:
        for pw in PASSWORDS:
            if name.startswith("bcrypt") and name != "bcrypt_sha256" and not fits_bcrypt(pw):
                continue
            emit(name, hasher, pw)

    # One vector per format at Django 5.2's own default cost.
    for name in [
        "pbkdf2_sha256",
        "pbkdf2_sha1",
        "argon2",
        "bcrypt_sha256",
        "bcrypt",
        "scrypt",
    ]:
        emit(name + "_default", h.get_hasher(name), "lètmein")

    # Argon2 as argon2-cffi wrote it before it stored the version (v=16 implied), and with the
    # version 16 spelled out; Django still accepts both.
    for pw in ["hunter2", "пароль-密码-🔑"]:
        raw = argon2.low_level.hash_secret(
            pw.encode(),
            h.get_random_string(16).encode(),
            time_cost=1,
            memory_cost=64,
            parallelism=2,
            hash_len=32,
            type=argon2.low_level.Type.I,
            version=0x10,
        ).decode()
        emit("argon2i_v16", None, pw, "argon2" + raw)
        emit("argon2i_noversion", None, pw, "argon2" + raw.replace("$v=16", "", 1))

    # set_unusable_password(): never matches, whatever is typed.
    for pw in ["", "hunter2"]:
        emit("unusable", None, pw, h.make_password(None), expect="never")
else:
    unsalted_md5 = h.UnsaltedMD5PasswordHasher()
    for pw in PASSWORDS:
        emit("sha1", h.SHA1PasswordHasher(), pw)
        emit("unsalted_sha1", h.UnsaltedSHA1PasswordHasher(), pw)
        bare = h.make_password(pw, hasher=unsalted_md5)
        emit("unsalted_md5", unsalted_md5, pw, bare)
        emit("unsalted_md5_prefixed", unsalted_md5, pw, "md5$$" + bare)
    # DES crypt is not supported (see django_hashers.rs): such rows must never match.
    try:
        import crypt  # noqa: F401  (gone from Python 3.13)

        for pw in ["hunter2", "lètmein"]:
            emit("crypt", h.CryptPasswordHasher(), pw, expect="never")
    except ImportError:
        pass

text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in out_lines)
if args.out == "-":
    sys.stdout.write(text)
else:
    with open(args.out, "a", encoding="utf-8") as f:
        f.write(text)
print(f"{len(out_lines)} vectors from Django {django.get_version()}", file=sys.stderr)
