from django.apps import AppConfig
from django.http import HttpRequest


class InboxConfig(AppConfig):
    name = "inbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_out
        from django.contrib.sessions.models import Session
        from django.db.models.signals import post_delete, post_save

        from inbox import checks  # noqa: F401  (registers the system checks)

        # What ends a session's right to its sockets (README Security, "Logins"): each
        # tells the sockets concerned, which close with 4401 (inbox/consumers.py).
        user_logged_out.connect(_close_the_sessions_sockets, dispatch_uid="inbox.live.logout")
        post_delete.connect(
            _close_a_deleted_sessions_sockets, sender=Session, dispatch_uid="inbox.live.session"
        )
        post_save.connect(
            _recheck_the_accounts_sockets, sender=get_user_model(), dispatch_uid="inbox.live.user"
        )


def _close_the_sessions_sockets(sender: type, request: HttpRequest, **kwargs: object) -> None:
    # Sent by logout() before it flushes the session, so the key is still the one the
    # sockets were opened under.
    from inbox import live

    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key:
        live.session_ended(session_key)


def _close_a_deleted_sessions_sockets(sender: type, instance: object, **kwargs: object) -> None:
    # A deleted row (the admin, a script, clearsessions) logs its session out everywhere.
    # Once committed: a rolled-back delete logged no one out.
    from django.db import transaction

    from inbox import live

    session_key = instance.session_key
    transaction.on_commit(lambda: live.session_ended(session_key))


def _recheck_the_accounts_sockets(
    sender: type, instance: object, update_fields: frozenset | None = None, **kwargs: object
) -> None:
    # Deactivated, or a new password: the account's sessions may no longer log it in. The
    # sockets check for themselves, so a save that changed neither closes nothing. Every
    # login saves last_login alone, which changes neither.
    from django.db import transaction

    from inbox import live

    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return
    user_id = instance.pk
    transaction.on_commit(lambda: live.account_changed(user_id))
