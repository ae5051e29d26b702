"""`manage.py benchuser PASSWORD NAME [NAME ...]`: creates (or resets) users with PASSWORD;
prints the hasher used for the last one."""

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import identify_hasher
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create or reset benchmark users"

    def add_arguments(self, parser):
        parser.add_argument("password")
        parser.add_argument("usernames", nargs="+")

    def handle(self, *args, **opts):
        User = get_user_model()
        for name in opts["usernames"]:
            user, _ = User.objects.get_or_create(username=name)
            user.set_password(opts["password"])
            user.save()
        hasher = identify_hasher(user.password)
        iterations = getattr(hasher, "iterations", None)
        self.stdout.write(f"{hasher.algorithm} iterations={iterations}")
