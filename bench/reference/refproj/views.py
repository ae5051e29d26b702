"""The reference endpoints, written the way a DRF project usually writes them."""

import json

from django.contrib.auth import authenticate, login
from django.http import JsonResponse
from django.middleware.csrf import get_token
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


def user_json(user):
    """The same fields sekisho's `GET /api/auth/me/` returns."""
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "permissions": sorted(user.get_all_permissions()),
    }


class Floor(APIView):
    """The unauthenticated floor: DRF's request handling with no authentication at all."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request):
        return Response({"status": "ok"})


class Me(APIView):
    """The protected endpoint: JWTAuthentication, then SessionAuthentication (the defaults)."""

    def get(self, request):
        return Response(user_json(request.user))


@require_GET
@ensure_csrf_cookie
def csrf(request):
    return JsonResponse({"csrfToken": get_token(request)})


@require_POST
def login_view(request):
    """Session login; CsrfViewMiddleware enforces the CSRF cookie/header pair."""
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"detail": "JSON parse error"}, status=400)
    user = authenticate(
        request, username=data.get("username"), password=data.get("password")
    )
    if user is None:
        return JsonResponse(
            {"detail": "No active account found with the given credentials"}, status=401
        )
    login(request, user)
    return JsonResponse({"user": user_json(user)})
