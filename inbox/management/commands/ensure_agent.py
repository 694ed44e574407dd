"""Create a first agent account when there is none, and print its credentials once."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create an agent account (printing its password once) if no account exists yet."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="agent")

    def handle(self, *args: object, username: str, **options: object) -> None:
        User = get_user_model()
        if User.objects.exists():
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, password=password)
        self.stdout.write(
            self.style.SUCCESS(
                f"Created the first agent. Log in at /accounts/login/ as "
                f"{username!r} with password {password!r} (shown only this once)."
            )
        )
