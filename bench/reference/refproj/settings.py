"""The reference stack as a typical DRF + simplejwt project would configure it: the default
middleware of `startproject`, JWT and session authentication side by side, rotation with
blacklisting on, Django's default password hasher (PBKDF2-SHA256).

Everything machine-specific comes from the environment set by bench/run.py:
BENCH_DJANGO_SECRET_KEY, BENCH_DJANGO_DB (``postgres://user@host:port/name`` or a SQLite path),
BENCH_DJANGO_CHEAP_HASHER=1 only while refresh-token pools are generated (see bench/README.md).
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ["BENCH_DJANGO_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "refproj",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "refproj.urls"
WSGI_APPLICATION = "refproj.wsgi.application"

_db = os.environ["BENCH_DJANGO_DB"]
if _db.startswith("postgres://"):
    _u = urlsplit(_db)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _u.path.lstrip("/"),
            "USER": _u.username or "postgres",
            "PASSWORD": _u.password or "",
            "HOST": _u.hostname or "127.0.0.1",
            "PORT": str(_u.port or 5432),
            # Persistent connections, as any production deployment sets them.
            "CONN_MAX_AGE": 600,
        }
    }
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _db}}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"

if os.environ.get("BENCH_DJANGO_CHEAP_HASHER") == "1":
    # Only while the refresh-token pool is obtained over HTTP (one login per token); the timed
    # runs use Django's default hashers below.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
    ],
}

SIMPLE_JWT = {
    # Long enough to outlive one benchmark run; lifetimes do not change the per-request cost.
    "ACCESS_TOKEN_LIFETIME": timedelta(hours=1),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=1),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
