"""System checks that refuse an unsafe production start.

`migrate` runs them, and the container's start script migrates before it serves, so a
production container without its secrets stops at once with the reason instead of serving.
"""

from collections.abc import Sequence

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

# Values an example file may carry; `check --deploy` flags them so they never go live.
PLACEHOLDER_PREFIX = "insecure-"
MIN_WEBHOOK_SECRET_LENGTH = 32


@register()
def production_secrets_check(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: object
) -> list[CheckMessage]:
    if settings.DEBUG:
        return []
    errors: list[CheckMessage] = []
    if not _secret_key_set():
        errors.append(
            Error(
                "SECRET_KEY is not set while DEBUG is off.",
                hint="Set the SECRET_KEY environment variable to a long random string.",
                id="inbox.E001",
            )
        )
    if not settings.WEBHOOK_SECRET:
        errors.append(
            Error(
                "WEBHOOK_SECRET is not set while DEBUG is off: anyone could post events.",
                hint="Set the WEBHOOK_SECRET environment variable to the secret the "
                "provider signs its deliveries with.",
                id="inbox.E002",
            )
        )
    return errors


def _secret_key_set() -> bool:
    try:
        return bool(settings.SECRET_KEY)
    except ImproperlyConfigured:  # Django refuses to even hand out an empty key.
        return False


@register(Tags.security, deploy=True)
def webhook_secret_strength_check(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: object
) -> list[CheckMessage]:
    secret = settings.WEBHOOK_SECRET
    if not secret:
        return []  # production_secrets_check already refuses this.
    if len(secret) < MIN_WEBHOOK_SECRET_LENGTH or secret.startswith(PLACEHOLDER_PREFIX):
        return [
            Warning(
                f"WEBHOOK_SECRET is a placeholder or shorter than "
                f"{MIN_WEBHOOK_SECRET_LENGTH} characters.",
                hint="Generate one: python -c 'import secrets; print(secrets.token_hex(32))'",
                id="inbox.W001",
            )
        ]
    return []
