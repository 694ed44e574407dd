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
# .env.example's own secrets (tests/deploy/test_deploy.py keeps them equal to the file's). They
# are for a trial on this machine: refused as soon as the app answers any other host.
EXAMPLE_SECRETS = {
    "SECRET_KEY": "django-insecure-example-key-replace-me-before-going-live-0123456789",
    "WEBHOOK_SECRET": "insecure-example-webhook-secret-replace-me",
}
# The WhatsApp channel's four secrets and ids: all or none (README, "Connect WhatsApp").
WHATSAPP_SETTINGS = (
    "WHATSAPP_VERIFY_TOKEN",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_ACCESS_TOKEN",
    "WHATSAPP_PHONE_NUMBER_ID",
)
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


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
    if settings.PROVIDER_URL and not settings.PROVIDER_SECRET:
        errors.append(
            Error(
                "PROVIDER_SECRET is not set while PROVIDER_URL is and DEBUG is off: the "
                "provider could not tell our replies from anyone's.",
                hint="Set PROVIDER_SECRET to the secret the provider checks "
                'X-Hub-Signature-256 with (README, "Replies").',
                id="inbox.E004",
            )
        )
    whatsapp = {name: bool(getattr(settings, name)) for name in WHATSAPP_SETTINGS}
    if any(whatsapp.values()) and not all(whatsapp.values()):
        missing = ", ".join(name for name, present in whatsapp.items() if not present)
        errors.append(
            Error(
                f"The WhatsApp channel is half configured while DEBUG is off: {missing} "
                "not set. It would take customers' messages it cannot answer, or answer "
                "webhooks it cannot authenticate.",
                hint='Set all four (README, "Connect WhatsApp"), or none to turn the channel off.',
                id="inbox.E005",
            )
        )
    public = sorted(set(settings.ALLOWED_HOSTS) - LOOPBACK_HOSTS)
    if public:
        for name, example in EXAMPLE_SECRETS.items():
            if _setting(name) == example:
                errors.append(
                    Error(
                        f"{name} is the example value from .env.example while ALLOWED_HOSTS "
                        f"names {', '.join(public)}: anyone who read the example knows it.",
                        hint=f"Set {name} to a new random value (see the README, "
                        '"Going live"); the example values are for a trial on localhost.',
                        id="inbox.E003",
                    )
                )
    return errors


def _setting(name: str) -> str:
    try:
        return getattr(settings, name)
    except ImproperlyConfigured:
        return ""


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
