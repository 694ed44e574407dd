"""Add an agent account: a username and a password that passes the password validators.

`createsuperuser --noinput` (what agents were added with) skips the validators and makes
every agent a superuser with the whole admin; an agent needs neither. `--superuser` makes
one on purpose. The password comes from AGENT_PASSWORD, else a prompt; `--password` also
takes it, for scripts, though a command line can be seen by other users of the machine.
"""

import getpass
import os
import sys

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError, transaction

PASSWORD_VARIABLE = "AGENT_PASSWORD"  # noqa: S105  (a variable's name, not a password)


class Command(BaseCommand):
    help = (
        f"Add an agent account. The password comes from --password, the {PASSWORD_VARIABLE} "
        "environment variable or a prompt, and must pass the password validators."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--password", help=f"else ${PASSWORD_VARIABLE}, else a prompt")
        parser.add_argument(
            "--superuser",
            action="store_true",
            help="also staff and superuser: the whole admin (an operator, not an agent)",
        )

    def handle(
        self, *args: object, username: str, password: str | None, superuser: bool, **options
    ) -> None:
        User = get_user_model()
        user = User(username=username, is_staff=superuser, is_superuser=superuser)
        try:
            user.clean_fields(exclude=["password"])
        except ValidationError as error:
            raise CommandError(_messages(error, "username")) from None
        # The existing account is checked before the password is asked for.
        if User._default_manager.filter(username=user.get_username()).exists():
            raise CommandError(f"An account named {username!r} already exists; nothing changed.")
        password = password or os.environ.get(PASSWORD_VARIABLE) or self._prompt()
        try:
            password_validation.validate_password(password, user)
        except ValidationError as error:
            raise CommandError(_messages(error, "password")) from None
        user.set_password(password)
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:  # added by someone else since the check above
            raise CommandError(
                f"An account named {username!r} already exists; nothing changed."
            ) from None
        role = "superuser" if superuser else "agent"
        self.stdout.write(self.style.SUCCESS(f"Added the {role} {username!r}."))

    def _prompt(self) -> str:
        if not sys.stdin.isatty():
            raise CommandError(
                f"No password: set {PASSWORD_VARIABLE} or pass --password (there is no "
                "terminal to ask on)."
            )
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            raise CommandError("The two passwords differ; nothing changed.")
        return password


def _messages(error: ValidationError, field: str) -> str:
    texts = error.message_dict.get(field, []) if hasattr(error, "error_dict") else error.messages
    return f"The {field} is refused: " + " ".join(str(text) for text in texts)
