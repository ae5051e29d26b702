"""Mint a refresh/access pair with simplejwt, as a Django deployment that shares sekisho's HS256
key would: the access token given is verified by simplejwt (AccessToken), its stateless user
(TOKEN_USER_CLASS) handed to RefreshToken.for_user. Prints {"refresh", "access", "user_id"}."""
import json

from django.core.management.base import BaseCommand
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("access_token")

    def handle(self, *args, access_token, **options):
        user = api_settings.TOKEN_USER_CLASS(AccessToken(access_token))
        refresh = RefreshToken.for_user(user)
        self.stdout.write(
            json.dumps(
                {
                    "refresh": str(refresh),
                    "access": str(refresh.access_token),
                    "user_id": user.id,
                }
            )
        )
