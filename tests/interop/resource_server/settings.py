"""A minimal Django + DRF + djangorestframework-simplejwt resource server, configured the way a
service that trusts sekisho's tokens would be: stateless JWT authentication (the user is the
token's `user_id`, no user table), every view behind IsAuthenticated, and the token settings
from the environment:

    INTEROP_SIMPLE_JWT   a JSON object: the SIMPLE_JWT setting (required), e.g.
                         {"ALGORITHM": "EdDSA", "JWK_URL": "http://127.0.0.1:8000/.well-known/jwks.json"}

No database is configured: nothing here reads one.
"""
import json
import os
import secrets

SECRET_KEY = os.environ.get("INTEROP_DJANGO_SECRET_KEY") or secrets.token_urlsafe(50)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "resource_server",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "resource_server.urls"
DATABASES = {}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTStatelessUserAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}

try:
    SIMPLE_JWT = json.loads(os.environ["INTEROP_SIMPLE_JWT"])
except KeyError:
    raise RuntimeError("INTEROP_SIMPLE_JWT is not set (the SIMPLE_JWT setting, as JSON)") from None
if not isinstance(SIMPLE_JWT, dict):
    raise RuntimeError("INTEROP_SIMPLE_JWT must be a JSON object")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "INFO"},
}
