"""Fills the project as years of production would: users whose passwords were hashed by
different hashers, an inactive user, two usernames that look alike, a group with permissions,
a direct permission, guardian grants to a user and to a group, a live simplejwt pair and a
blacklisted refresh token. Prints what the import test needs to know as one JSON object."""
import json

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission, User
from django.core.management.base import BaseCommand
from guardian.shortcuts import assign_perm
from rest_framework_simplejwt.tokens import RefreshToken

from shop.models import Order

# username -> (hasher, password)
ACCOUNTS = {
    "alice": ("pbkdf2_sha256", "alice-pass-1"),
    "bob": ("pbkdf2_sha1", "bob-pass-2"),
    "carol": ("argon2", "carol-pass-3"),
    "dave": ("bcrypt_sha256", "dave-pass-4"),
    "erin": ("scrypt", "erin-pass-5"),
    "frank": ("md5", "frank-pass-6"),
    "paypal": ("pbkdf2_sha256", "paypal-pass-7"),
    # A capital I: the same UTS #39 skeleton as "paypal".
    "paypaI": ("pbkdf2_sha256", "paypai-pass-8"),
}


class Command(BaseCommand):
    def handle(self, *args, **options):
        users = {}
        for name, (hasher, password) in ACCOUNTS.items():
            u = User(username=name, email=f"{name}@example.com", first_name=name.title())
            u.password = make_password(password, hasher=hasher)
            u.save()
            users[name] = u
        ivan = User.objects.create_user("ivan", password="ivan-pass-9", is_active=False)
        root = User.objects.create_superuser("root", "root@example.com", "root-pass-10")
        root.is_staff = True
        root.save()

        clerks = Group.objects.create(name="clerks")
        clerks.permissions.add(
            Permission.objects.get(codename="view_order"),
            Permission.objects.get(codename="change_order"),
        )
        users["alice"].groups.add(clerks)
        users["bob"].user_permissions.add(Permission.objects.get(codename="refund_order"))

        first = Order.objects.create(number="A-1")
        second = Order.objects.create(number="A-2")
        assign_perm("shop.change_order", users["carol"], first)
        assign_perm("shop.view_order", clerks, second)

        live = RefreshToken.for_user(users["alice"])
        revoked = RefreshToken.for_user(users["bob"])
        revoked.blacklist()

        print(json.dumps({
            "passwords": {name: pw for name, (_, pw) in ACCOUNTS.items()},
            "hashers": {name: h for name, (h, _) in ACCOUNTS.items()},
            "ids": {u.username: u.id for u in User.objects.all()},
            "inactive": {"ivan": "ivan-pass-9"},
            "superuser": {"root": "root-pass-10"},
            "orders": {"first": first.pk, "second": second.pk},
            "live_refresh": str(live),
            "live_access": str(live.access_token),
            "blacklisted_refresh": str(revoked),
        }))
