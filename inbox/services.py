"""Every write to the conversation store. Each is one transaction and idempotent.

Idempotency is an insert on the provider's primary key, with the integrity error caught:
never check-then-insert, so concurrent deliveries of one event leave exactly one row. The
conversation's row is locked first (`select_for_update`), which serialises writes to one
conversation and keeps its counters and last-activity time exact.

Providers deliver out of order: an event for a conversation that does not exist yet is held
(`HeldEvent`) and applied, in timestamp order, when its NEW_CONVERSATION arrives, so the
store ends in the same state whatever the order and however often events are delivered.
"""

import enum
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from inbox import db, live
from inbox.events import CloseConversation, Event, NewConversation, NewMessage, event_parse_held
from inbox.models import Conversation, HeldEvent, Message

logger = logging.getLogger(__name__)


class Result(enum.StrEnum):
    CREATED = "created"
    CLOSED = "closed"
    REOPENED = "reopened"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    NOT_FOUND = "not_found"
    HELD = "held"


@dataclass(frozen=True)
class Outcome:
    result: Result
    detail: str


def _last_activity(conversation: Conversation) -> datetime:
    times = [
        conversation.created_at,
        conversation.last_message_at,
        conversation.closed_at,
        conversation.reopened_at,
    ]
    return max(t for t in times if t is not None)


def _conversation_locked(conversation_id: UUID) -> Conversation | None:
    """The conversation's row, locked until the transaction ends; None if it does not exist."""
    return Conversation.objects.select_for_update().filter(pk=conversation_id).first()


def _not_found(conversation_id: UUID) -> Outcome:
    return Outcome(Result.NOT_FOUND, f"conversation {conversation_id} does not exist")


def _lock_conversation_key(conversation_id: UUID) -> None:
    """Serialise every write that concerns one conversation id, even before its row exists.

    Without it, on PostgreSQL an event could be held just as its conversation is created
    and drained, and wait forever.
    """
    db.key_lock(conversation_id)


def _lock_message_key(message_id: UUID) -> None:
    """Serialise storing and holding one message id, which may name two conversations.

    Taken after the conversation's key (never before), so two writers cannot deadlock:
    each transaction takes one conversation key at most. Without it, one id delivered to
    a known and an unknown conversation at once could be both stored and held.
    """
    db.key_lock(message_id)


def _message_held_elsewhere(message_id: UUID, conversation_id: UUID) -> HeldEvent | None:
    """The waiting held message of that id for another conversation, if there is one."""
    return (
        HeldEvent.objects.filter(
            event_type="NEW_MESSAGE", event_id=message_id, applied_at__isnull=True
        )
        .exclude(conversation_id=conversation_id)
        .first()
    )


def conversation_open(*, conversation_id: UUID, timestamp: datetime) -> Outcome:
    """Create an OPEN conversation created at `timestamp`, then apply its held events."""
    with db.write():
        _lock_conversation_key(conversation_id)
        try:
            with transaction.atomic():
                Conversation.objects.create(
                    id=conversation_id,
                    status=Conversation.Status.OPEN,
                    created_at=timestamp,
                    last_activity_at=timestamp,
                )
                transaction.on_commit(
                    lambda: live.conversation_changed(conversation_id), robust=True
                )
        except IntegrityError:
            existing = Conversation.objects.get(pk=conversation_id)
            if existing.created_at != timestamp:
                return Outcome(
                    Result.CONFLICT,
                    f"conversation {conversation_id} already exists, created at "
                    f"{existing.created_at.isoformat()}, not {timestamp.isoformat()}",
                )
            return Outcome(Result.DUPLICATE, f"conversation {conversation_id} already exists")
        applied = _held_events_apply(conversation_id=conversation_id)
    detail = f"conversation {conversation_id} created"
    if applied:
        detail += f"; {applied} held event(s) applied"
    return Outcome(Result.CREATED, detail)


def message_add(
    *,
    message_id: UUID,
    conversation_id: UUID,
    direction: str,
    content: str,
    timestamp: datetime,
) -> Outcome:
    """Add a message to its conversation, in its place in the thread.

    A CLOSED conversation takes late deliveries of messages sent before it closed, and
    refuses anything after. An id already held for another conversation is refused: the
    held event was answered 202 and must be the one applied when its conversation comes.
    """
    # A savepoint of its own: a refused message rolls back its insert, and only that.
    with db.write(savepoint=True):
        conversation = _conversation_locked(conversation_id)
        if conversation is None:
            return _not_found(conversation_id)
        _lock_message_key(message_id)
        held = _message_held_elsewhere(message_id, conversation_id)
        if held is not None:
            return Outcome(
                Result.CONFLICT,
                f"message {message_id} is already held for conversation {held.conversation_id}",
            )
        try:
            with transaction.atomic():
                message = Message.objects.create(
                    id=message_id,
                    conversation=conversation,
                    direction=direction,
                    content=content,
                    timestamp=timestamp,
                )
        except IntegrityError:
            return _message_redelivered(
                message_id=message_id,
                conversation_id=conversation_id,
                direction=direction,
                content=content,
                timestamp=timestamp,
            )
        if (
            conversation.status == Conversation.Status.CLOSED
            and conversation.closed_at is not None
            and timestamp > conversation.closed_at
        ):
            # Refused after the insert so that a re-delivery of a stored message is still
            # recognised as a duplicate; the atomic block rolls the insert back.
            transaction.set_rollback(True)
            return Outcome(
                Result.CONFLICT,
                f"conversation {conversation_id} closed at {conversation.closed_at.isoformat()}",
            )
        conversation.message_count += 1
        if conversation.last_message_at is None or (timestamp, message_id) > (
            conversation.last_message_at,
            conversation.last_message_id,
        ):
            conversation.last_message = message
            conversation.last_message_at = timestamp
        conversation.last_activity_at = _last_activity(conversation)
        conversation.save(
            update_fields=["message_count", "last_message", "last_message_at", "last_activity_at"]
        )
        transaction.on_commit(lambda: live.message_added(message_id, conversation_id), robust=True)
    return Outcome(Result.CREATED, f"message {message_id} added")


def _message_redelivered(
    *,
    message_id: UUID,
    conversation_id: UUID,
    direction: str,
    content: str,
    timestamp: datetime,
) -> Outcome:
    existing = Message.objects.get(pk=message_id)
    stored = {
        "conversation_id": existing.conversation_id,
        "direction": existing.direction,
        "content": existing.content,
        "timestamp": existing.timestamp,
    }
    delivered = {
        "conversation_id": conversation_id,
        "direction": direction,
        "content": content,
        "timestamp": timestamp,
    }
    differing = [name for name in stored if stored[name] != delivered[name]]
    if differing:
        return Outcome(
            Result.CONFLICT,
            f"message {message_id} already stored with a different {', '.join(differing)}",
        )
    return Outcome(Result.DUPLICATE, f"message {message_id} already stored")


def conversation_close(
    *, conversation_id: UUID, timestamp: datetime, agent: AbstractBaseUser | None = None
) -> Outcome:
    """Close a conversation at `timestamp` (by `agent`, when one closed it from the inbox);
    closing a closed one changes nothing.

    Nor does a close timestamped at or before the latest reopen by an agent: it is a replay
    of the close the agent undid (README, "The webhook"), and must not undo the reopen.
    """
    with db.write():
        conversation = _conversation_locked(conversation_id)
        if conversation is None:
            return _not_found(conversation_id)
        if conversation.status == Conversation.Status.CLOSED:
            return Outcome(Result.DUPLICATE, f"conversation {conversation_id} is already closed")
        if conversation.reopened_at is not None and timestamp <= conversation.reopened_at:
            return Outcome(
                Result.DUPLICATE,
                f"conversation {conversation_id} was reopened at "
                f"{conversation.reopened_at.isoformat()}, after this close",
            )
        conversation.status = Conversation.Status.CLOSED
        conversation.closed_at = timestamp
        conversation.closed_by = agent
        conversation.last_activity_at = _last_activity(conversation)
        conversation.save(update_fields=["status", "closed_at", "closed_by", "last_activity_at"])
        transaction.on_commit(lambda: live.conversation_changed(conversation_id), robust=True)
    by = f" by {agent}" if agent is not None else ""
    return Outcome(Result.CLOSED, f"conversation {conversation_id} closed{by}")


def conversation_close_by_agent(*, conversation_id: UUID, agent: AbstractBaseUser) -> Outcome:
    """An agent closes a conversation from the inbox, now; closing a closed one changes nothing."""
    return conversation_close(
        conversation_id=conversation_id, timestamp=timezone.now(), agent=agent
    )


def conversation_reopen(*, conversation_id: UUID, agent: AbstractBaseUser) -> Outcome:
    """An agent reopens a closed conversation, now; reopening an open one changes nothing.

    closed_at is cleared, since an open conversation has not closed, so the provider's
    messages are accepted again; reopened_at/by keep the record of who reopened it.
    """
    with db.write():
        conversation = _conversation_locked(conversation_id)
        if conversation is None:
            return _not_found(conversation_id)
        if conversation.status == Conversation.Status.OPEN:
            return Outcome(Result.DUPLICATE, f"conversation {conversation_id} is already open")
        conversation.status = Conversation.Status.OPEN
        conversation.closed_at = None
        conversation.closed_by = None
        conversation.reopened_at = timezone.now()
        conversation.reopened_by = agent
        conversation.last_activity_at = _last_activity(conversation)
        conversation.save(
            update_fields=[
                "status",
                "closed_at",
                "closed_by",
                "reopened_at",
                "reopened_by",
                "last_activity_at",
            ]
        )
        transaction.on_commit(lambda: live.conversation_changed(conversation_id), robust=True)
    return Outcome(Result.REOPENED, f"conversation {conversation_id} reopened by {agent}")


def _event_conversation_id(event: NewMessage | CloseConversation) -> UUID:
    return event.data.conversation_id if isinstance(event, NewMessage) else event.data.id


def _event_apply_existing(event: NewMessage | CloseConversation) -> Outcome:
    """Apply a message or a close to a conversation that may not exist (NOT_FOUND then)."""
    if isinstance(event, NewMessage):
        return message_add(
            message_id=event.data.id,
            conversation_id=event.data.conversation_id,
            direction=event.data.direction,
            content=event.data.content,
            timestamp=event.timestamp,
        )
    return conversation_close(conversation_id=event.data.id, timestamp=event.timestamp)


def _event_hold(event: NewMessage | CloseConversation) -> Outcome:
    conversation_id = _event_conversation_id(event)
    if isinstance(event, NewMessage):
        # A stored id held for another conversation would only be refused when that one
        # arrives, after the provider was told 202: refuse it now instead.
        _lock_message_key(event.data.id)
        stored = Message.objects.filter(pk=event.data.id).values_list("conversation_id").first()
        if stored is not None:
            return Outcome(
                Result.CONFLICT,
                f"message {event.data.id} is already stored in conversation {stored[0]}",
            )
    payload = event.model_dump(mode="json")
    try:
        with transaction.atomic():
            HeldEvent.objects.create(
                conversation_id=conversation_id,
                event_type=event.type,
                event_id=event.data.id,
                timestamp=event.timestamp,
                payload=payload,
            )
            closed_at = _held_close_before(event)
            if closed_at is not None:
                # After the insert, so that a message held before its close and delivered
                # again is still recognised (IntegrityError) and answered 202.
                transaction.set_rollback(True)
                return Outcome(
                    Result.CONFLICT,
                    f"conversation {conversation_id} closed at {closed_at.isoformat()} "
                    "(its close is held until the conversation arrives)",
                )
    except IntegrityError:
        held = HeldEvent.objects.get(event_type=event.type, event_id=event.data.id)
        if held.payload != payload:
            return Outcome(
                Result.CONFLICT,
                f"{event.type} {event.data.id} is already held with different fields",
            )
    held_events_report_overdue()
    return Outcome(
        Result.HELD,
        f"conversation {conversation_id} does not exist yet; the event is held and will be "
        "applied when it arrives",
    )


def _held_close_before(event: NewMessage | CloseConversation) -> datetime | None:
    """For a message, the time of its conversation's held close when that is earlier.

    Such a message is refused as one after the close of a stored conversation is: held, it
    would be answered 202 and then refused when the conversation arrives.
    """
    if not isinstance(event, NewMessage):
        return None
    closed_at = (
        HeldEvent.objects.filter(
            conversation_id=event.data.conversation_id,
            event_type="CLOSE_CONVERSATION",
            applied_at__isnull=True,
        )
        .values_list("timestamp", flat=True)
        .first()
    )
    return closed_at if closed_at is not None and event.timestamp > closed_at else None


def _held_events_apply(*, conversation_id: UUID) -> int:
    """Apply the events held for a conversation that has just been created.

    Messages first, in timestamp order, then the close. Each was answered 202 and none may
    be thrown away now: a message timestamped after the close was held before the close
    arrived (a later one is refused at delivery, `_held_close_before`), so it was accepted
    while the conversation was open, and is kept, as it would be had the conversation
    existed. For every history a provider can produce (messages before their close) this
    is the timestamp order, the result of delivering in order.
    """
    held = list(
        HeldEvent.objects.select_for_update().filter(
            conversation_id=conversation_id, applied_at__isnull=True
        )
    )
    held.sort(key=lambda h: (h.event_type == "CLOSE_CONVERSATION", h.timestamp, h.event_id))
    now = timezone.now()
    for row in held:
        outcome = _event_apply_existing(event_parse_held(row.payload))
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
    # Marks them reported: a write, so through the door, though a lone UPDATE needs no BEGIN.
    overdue = list(
        HeldEvent.objects.filter(
            applied_at__isnull=True, reported_at__isnull=True, received_at__lt=cutoff
        )[:100]
    )
    for row in overdue:
        logger.warning(
            "held %s %s: conversation %s has not arrived within %s s (held since %s)",
            row.event_type,
            row.event_id,
            row.conversation_id,
            settings.WEBHOOK_REORDER_WINDOW,
            row.received_at.isoformat(),
        )
    with db.write(atomic=False):
        HeldEvent.objects.filter(pk__in=[row.pk for row in overdue]).update(
            reported_at=timezone.now()
        )
    return len(overdue)


def event_apply(event: Event) -> Outcome:
    """Apply one validated webhook event to the store."""
    if isinstance(event, NewConversation):
        return conversation_open(conversation_id=event.data.id, timestamp=event.timestamp)
    with db.write():
        # Held under the conversation's key, so the conversation cannot be created and
        # drained between "it does not exist" and "the event is held".
        _lock_conversation_key(_event_conversation_id(event))
        outcome = _event_apply_existing(event)
        if outcome.result == Result.NOT_FOUND:
            return _event_hold(event)
        return outcome
