"""What Django does while it still serves traffic next to sekisho, one action per call, each
printing one JSON object:

  login USERNAME PASSWORD   a browser login through Django's own auth and session machinery
                            (django.test.Client.login: authenticate, login(), SessionStore);
                            prints the sessionid cookie Django set
  mint USERNAME             a simplejwt pair minted by Django now
  blacklist REFRESH         simplejwt's blacklisting of a refresh token, as its view does
  hash USERNAME             the password hash Django stores now"""
import json

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.test import Client
from rest_framework_simplejwt.tokens import RefreshToken


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("action", choices=["login", "mint", "blacklist", "hash"])
        parser.add_argument("values", nargs="*")

    def handle(self, *_, action, values, **options):
        args = values
        if action == "login":
            username, password = args
            client = Client()
            if not client.login(username=username, password=password):
                raise CommandError(f"Django refused the login of {username}")
            out = {"sessionid": client.cookies[settings.SESSION_COOKIE_NAME].value}
        elif action == "mint":
            refresh = RefreshToken.for_user(User.objects.get(username=args[0]))
            out = {"refresh": str(refresh), "access": str(refresh.access_token)}
        elif action == "blacklist":
            RefreshToken(args[0]).blacklist()
            out = {}
        else:
            out = {"hash": User.objects.get(username=args[0]).password}
        self.stdout.write(json.dumps(out))
