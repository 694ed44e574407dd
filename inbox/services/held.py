"""Held events: a message or a close that arrived before its conversation did.

Providers deliver out of order. Such a command is held (`HeldEvent`, answered 202) and
applied, in timestamp order, when its conversation is opened, so the store ends in the
same state whatever the order and however often events are delivered. A held row stores
the command (`inbox.commands.command_dump`), never a provider's wire format.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from inbox import db
from inbox.commands import AddMessage, CloseConversation, command_dump, command_load
from inbox.models import HeldEvent, Message
from inbox.services.locks import message_key_lock
from inbox.services.outcome import Outcome, Result

logger = logging.getLogger(__name__)

# The held table's kinds: the names its rows have always had (and the admin filters on).
HELD_MESSAGE = "NEW_MESSAGE"
HELD_CLOSE = "CLOSE_CONVERSATION"


def held_message_elsewhere(*, message_id: UUID, conversation_id: UUID) -> HeldEvent | None:
    """The waiting held message of that id for another conversation, if there is one."""
    return (
        HeldEvent.objects.filter(
            event_type=HELD_MESSAGE, event_id=message_id, applied_at__isnull=True
        )
        .exclude(conversation_id=conversation_id)
        .first()
    )


def held_message_hold(*, command: AddMessage) -> Outcome:
    """Hold a message for a conversation that has not arrived (the caller holds its key)."""
    # A stored id held for another conversation would only be refused when that one
    # arrives, after the provider was told 202: refuse it now instead.
    message_key_lock(command.message_id)
    stored = Message.objects.filter(pk=command.message_id).values_list("conversation_id").first()
    if stored is not None:
        return Outcome(
            Result.CONFLICT,
            f"message {command.message_id} is already stored in conversation {stored[0]}",
        )
    return _hold(
        command,
        kind=HELD_MESSAGE,
        ident=command.message_id,
        closed_at=lambda: _held_close_before(command),
    )


def held_close_hold(*, command: CloseConversation) -> Outcome:
    """Hold a close for a conversation that has not arrived (the caller holds its key)."""
    return _hold(command, kind=HELD_CLOSE, ident=command.conversation_id, closed_at=None)


def _hold(
    command: AddMessage | CloseConversation,
    *,
    kind: str,
    ident: UUID,
    closed_at: Callable[[], datetime | None] | None,
) -> Outcome:
    conversation_id = command.conversation_id
    payload = command_dump(command)
    try:
        with transaction.atomic():
            HeldEvent.objects.create(
                conversation_id=conversation_id,
                event_type=kind,
                event_id=ident,
                timestamp=command.timestamp,
                payload=payload,
            )
            closed = closed_at() if closed_at is not None else None
            if closed is not None:
                # After the insert, so that a message held before its close and delivered
                # again is still recognised (IntegrityError) and answered 202.
                transaction.set_rollback(True)
                return Outcome(
                    Result.CONFLICT,
                    f"conversation {conversation_id} closed at {closed.isoformat()} "
                    "(its close is held until the conversation arrives)",
                )
    except IntegrityError:
        held = HeldEvent.objects.get(event_type=kind, event_id=ident)
        # Compared as commands, not JSON: a row dumped before a field was added reads back
        # with that field's default.
        if command_load(held.payload) != command:
            return Outcome(Result.CONFLICT, f"{kind} {ident} is already held with different fields")
    held_events_report_overdue()
    return Outcome(
        Result.HELD,
        f"conversation {conversation_id} does not exist yet; the event is held and will be "
        "applied when it arrives",
    )


def _held_close_before(command: AddMessage) -> datetime | None:
    """The time of the message's conversation's held close, when that is earlier.

    Such a message is refused as one after the close of a stored conversation is: held, it
    would be answered 202 and then refused when the conversation arrives.
    """
    closed_at = (
        HeldEvent.objects.filter(
            conversation_id=command.conversation_id,
            event_type=HELD_CLOSE,
            applied_at__isnull=True,
        )
        .values_list("timestamp", flat=True)
        .first()
    )
    return closed_at if closed_at is not None and command.timestamp > closed_at else None


def held_events_apply(*, conversation_id: UUID) -> int:
    """Apply the events held for a conversation that has just been created.

    Messages first, in timestamp order, then the close. Each was answered 202 and none may
    be thrown away now: a message timestamped after the close was held before the close
    arrived (a later one is refused at delivery, `_held_close_before`), so it was accepted
    while the conversation was open, and is kept, as it would be had the conversation
    existed. For every history a provider can produce (messages before their close) this
    is the timestamp order, the result of delivering in order.
    """
    # Imported here: the dispatch table names conversation_open, which calls this.
    from inbox.services.dispatch import command_apply_waiting

    held = list(
        HeldEvent.objects.select_for_update().filter(
            conversation_id=conversation_id, applied_at__isnull=True
        )
    )
    held.sort(key=lambda h: (h.event_type == HELD_CLOSE, h.timestamp, h.event_id))
    now = timezone.now()
    for row in held:
        outcome = command_apply_waiting(command=command_load(row.payload))
        row.applied_at = now
        row.outcome = outcome.result
        row.save(update_fields=["applied_at", "outcome"])
        if outcome.result == Result.CONFLICT:
            logger.warning(
                "held %s %s refused when applied: %s", row.event_type, row.event_id, outcome.detail
            )
    return len(held)


def held_events_report_overdue() -> int:
    """Warn, once each, about held events whose conversation is overdue.

    Overdue means still waiting after WEBHOOK_REORDER_WINDOW. They are kept (and still
    applied if the conversation ever arrives): an operator sees them in the log and in the
    admin, never loses them.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.WEBHOOK_REORDER_WINDOW)
    overdue = list(
        HeldEvent.objects.filter(
            applied_at__isnull=True, reported_at__isnull=True, received_at__lt=cutoff
        )[:100]
    )
    for row in overdue:
        waits_for = (
            f"conversation {row.conversation_id}"
            if row.conversation_id
            else f"message {row.message_id}"
        )
        logger.warning(
            "held %s %s: %s has not arrived within %s s (held since %s)",
            row.event_type,
            row.event_id,
            waits_for,
            settings.WEBHOOK_REORDER_WINDOW,
            row.received_at.isoformat(),
        )
    # Marks them reported: a write, so through the door, though a lone UPDATE needs no BEGIN.
    with db.write(atomic=False):
        HeldEvent.objects.filter(pk__in=[row.pk for row in overdue]).update(
            reported_at=timezone.now()
        )
    return len(overdue)
