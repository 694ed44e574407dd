from django.apps import AppConfig
from django.http import HttpRequest


class InboxConfig(AppConfig):
    name = "inbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from inbox import checks  # noqa: F401  (registers the system checks)

        user_logged_out.connect(_close_the_sessions_sockets, dispatch_uid="inbox.live.logout")


def _close_the_sessions_sockets(sender: type, request: HttpRequest, **kwargs: object) -> None:
    # Sent by logout() before it flushes the session, so the key is still the one the
    # sockets were opened under.
    from inbox import live

    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key:
        live.session_ended(session_key)
