#!/usr/bin/env python3
"""Writes session data as Django's database session backend signs it, for the unit tests of
crates/sekisho-core/src/import/signing.rs (crates/sekisho-core/tests/fixtures/django_sessions.json).
Run with the venv of scripts/django_import.sh: `python session_vectors.py > FILE`."""
import json
import sys

import django
from django.conf import settings

SECRET = "django-insecure-session-vectors-7c1f0a9e4b2d8c6e5f3a1b0c9d8e7f6a"
settings.configure(SECRET_KEY=SECRET, INSTALLED_APPS=["django.contrib.sessions"],
                   USE_TZ=True)
django.setup()

from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.utils.crypto import salted_hmac  # noqa: E402

cases = []
for password in ("pbkdf2_sha256$1000000$salt0123456789ab$c2VjcmV0aGFzaHZhbHVlZm9ydGVzdA==",
                 "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdA$aGFzaA"):
    auth_hash = salted_hmac("django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash",
                            password, algorithm="sha256").hexdigest()
    data = {"_auth_user_id": str(len(cases) + 1),
            "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
            "_auth_user_hash": auth_hash}
    cases.append({"password": password, "decoded": data,
                  "session_data": SessionStore().encode(data)})
small = {"n": 1}
cases.append({"decoded": small, "session_data": SessionStore().encode(small)})
json.dump({"django": django.get_version(), "secret_key": SECRET, "sessions": cases}, sys.stdout,
          indent=1)
print()
