"""Create a first agent account when there is none, and print its credentials once."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Create an agent account (printing its password once) if no account exists yet."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="agent")
        parser.add_argument(
            "--login-url",
            default="/accounts/login/",
            help="the full address of the login page, to print with the credentials",
        )

    def handle(self, *args: object, username: str, login_url: str, **options: object) -> None:
        User = get_user_model()
        if User.objects.exists():
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, password=password)
        # Boxed, with the whole address: it is printed once, among the migrations' and the
        # server's lines, and a newcomer must not miss it.
        lines = [
            "The first agent was created (the password is shown only this once):",
            f"  log in at  {login_url}",
            f"  username   {username}",
            f"  password   {password}",
        ]
        width = max(len(line) for line in lines)
        rule = "+" + "-" * (width + 2) + "+"
        box = [rule, *(f"| {line.ljust(width)} |" for line in lines), rule]
        self.stdout.write(self.style.SUCCESS("\n".join(box)))
