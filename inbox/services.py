"""Every write to the conversation store. Each is one transaction and idempotent.

Idempotency is an insert on the provider's primary key, with the integrity error caught:
never check-then-insert, so concurrent deliveries of one event leave exactly one row. The
conversation's row is locked first (`select_for_update`), which serialises writes to one
conversation and keeps its counters and last-activity time exact.
"""

import enum
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db import IntegrityError, transaction

from inbox import live
from inbox.events import CloseConversation, Event, NewConversation, NewMessage
from inbox.models import Conversation, Message


class Result(enum.StrEnum):
    CREATED = "created"
    CLOSED = "closed"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class Outcome:
    result: Result
    detail: str


def _last_activity(conversation: Conversation) -> datetime:
    times = [conversation.created_at, conversation.last_message_at, conversation.closed_at]
    return max(t for t in times if t is not None)


def conversation_open(*, conversation_id: UUID, timestamp: datetime) -> Outcome:
    """Create an OPEN conversation created at `timestamp`."""
    try:
        with transaction.atomic():
            Conversation.objects.create(
                id=conversation_id,
                status=Conversation.Status.OPEN,
                created_at=timestamp,
                last_activity_at=timestamp,
            )
            transaction.on_commit(lambda: live.conversation_changed(conversation_id), robust=True)
    except IntegrityError:
        existing = Conversation.objects.get(pk=conversation_id)
        if existing.created_at != timestamp:
            return Outcome(
                Result.CONFLICT,
                f"conversation {conversation_id} already exists, created at "
                f"{existing.created_at.isoformat()}, not {timestamp.isoformat()}",
            )
        return Outcome(Result.DUPLICATE, f"conversation {conversation_id} already exists")
    return Outcome(Result.CREATED, f"conversation {conversation_id} created")


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
    refuses anything after.
    """
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().filter(pk=conversation_id).first()
        if conversation is None:
            return Outcome(Result.NOT_FOUND, f"conversation {conversation_id} does not exist")
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
            # recognised as a duplicate; the outer atomic block rolls the insert back.
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
        transaction.on_commit(lambda: live.message_added(message_id), robust=True)
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


def conversation_close(*, conversation_id: UUID, timestamp: datetime) -> Outcome:
    """Close a conversation at `timestamp`; closing a closed one changes nothing."""
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().filter(pk=conversation_id).first()
        if conversation is None:
            return Outcome(Result.NOT_FOUND, f"conversation {conversation_id} does not exist")
        if conversation.status == Conversation.Status.CLOSED:
            return Outcome(Result.DUPLICATE, f"conversation {conversation_id} is already closed")
        conversation.status = Conversation.Status.CLOSED
        conversation.closed_at = timestamp
        conversation.last_activity_at = _last_activity(conversation)
        conversation.save(update_fields=["status", "closed_at", "last_activity_at"])
        transaction.on_commit(lambda: live.conversation_changed(conversation_id), robust=True)
    return Outcome(Result.CLOSED, f"conversation {conversation_id} closed")


def event_apply(event: Event) -> Outcome:
    """Apply one validated webhook event to the store."""
    match event:
        case NewConversation():
            return conversation_open(conversation_id=event.data.id, timestamp=event.timestamp)
        case NewMessage():
            return message_add(
                message_id=event.data.id,
                conversation_id=event.data.conversation_id,
                direction=event.data.direction,
                content=event.data.content,
                timestamp=event.timestamp,
            )
        case CloseConversation():
            return conversation_close(conversation_id=event.data.id, timestamp=event.timestamp)
    raise TypeError(f"not an event: {event!r}")
