"""Messages: stored once each, in their place in the thread, whatever the delivery order."""

from datetime import datetime
from uuid import UUID

from django.db import IntegrityError, transaction
from django.db.models import Q

from inbox import db, live
from inbox.models import Conversation, Delivery, Direction, Message
from inbox.services import held
from inbox.services.conversations import last_activity
from inbox.services.delivery import held_statuses_apply, message_delivery_set
from inbox.services.locks import conversation_locked, message_key_lock
from inbox.services.outcome import Outcome, Result, not_found


def message_add(
    *,
    message_id: UUID,
    conversation_id: UUID,
    direction: str,
    content: str,
    timestamp: datetime,
    channel: str = "generic",
    provider_message_id: str | None = None,
) -> Outcome:
    """Add a message to its conversation, in its place in the thread.

    A CLOSED conversation takes late deliveries of messages sent before it closed, and
    refuses anything after. An id already held for another conversation is refused: the
    held event was answered 202 and must be the one applied when its conversation comes.
    """
    # A savepoint of its own: a refused message rolls back its insert, and only that.
    with db.write(savepoint=True):
        conversation = conversation_locked(conversation_id)
        if conversation is None:
            return not_found(conversation_id)
        message_key_lock(message_id)
        elsewhere = held.held_message_elsewhere(
            message_id=message_id, conversation_id=conversation_id
        )
        if elsewhere is not None:
            return Outcome(
                Result.CONFLICT,
                f"message {message_id} is already held for conversation "
                f"{elsewhere.conversation_id}",
            )
        try:
            with transaction.atomic():
                message = Message.objects.create(
                    id=message_id,
                    conversation=conversation,
                    direction=direction,
                    content=content,
                    timestamp=timestamp,
                    channel=channel,
                    provider_message_id=provider_message_id,
                )
        except IntegrityError:
            return _message_redelivered(
                message_id=message_id,
                conversation_id=conversation_id,
                direction=direction,
                content=content,
                timestamp=timestamp,
                channel=channel,
                provider_message_id=provider_message_id,
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
        message_counted(conversation, message)
        held_statuses_apply(message_id=message_id)
        live.message_added(message_id, conversation_id)
    return Outcome(Result.CREATED, f"message {message_id} added")


def message_counted(conversation: Conversation, message: Message) -> None:
    """Count a message just stored into its conversation's list fields (the caller holds
    the conversation's row lock): a provider's message and an agent's reply alike, so a
    reply ends the customer's wait by the same rule as a provider's SENT message."""
    conversation.message_count += 1
    newest = conversation.last_message_at is None or (message.timestamp, message.id) > (
        conversation.last_message_at,
        conversation.last_message_id,
    )
    if newest:
        conversation.last_message = message
        conversation.last_message_at = message.timestamp
    conversation.waiting_since = waiting_since(conversation, message, newest=newest)
    conversation.last_activity_at = last_activity(conversation)
    conversation.save(
        update_fields=[
            "message_count",
            "last_message",
            "last_message_at",
            "last_activity_at",
            "waiting_since",
        ]
    )


def waiting_since(conversation: Conversation, message: Message, *, newest: bool) -> datetime | None:
    """The conversation's `waiting_since` once `message` is in its thread (README, "Triage").

    Waiting is from the customer's first message after our last one, while the newest is
    theirs. A message delivered late (not the newest) moves it only if it falls inside: an
    older customer message with none of ours between it and the start, or one of ours after
    the start, which answers the messages before it. Replies come through here too
    (`message_counted`).
    """
    since = conversation.waiting_since
    if newest:
        if message.direction == Direction.SENT:
            return None
        return since if since is not None else message.timestamp
    if since is None:
        return None  # we spoke last: an old message changes nothing
    thread = Message.objects.filter(conversation_id=conversation.id)
    if message.direction == Direction.RECEIVED:
        if message.timestamp >= since:
            return since
        answered = thread.filter(
            direction=Direction.SENT, timestamp__gt=message.timestamp, timestamp__lt=since
        ).exists()
        return since if answered else message.timestamp
    if message.timestamp < since:
        return since
    return (
        thread.filter(
            Q(timestamp__gt=message.timestamp) | Q(timestamp=message.timestamp, id__gt=message.id),
            direction=Direction.RECEIVED,
        )
        .order_by("timestamp", "id")
        .values_list("timestamp", flat=True)
        .first()
    )


def _is_echo(existing: Message, direction: str) -> bool:
    """A SENT message that has a delivery state (one of our replies: the provider's own
    SENT messages have none until it sends their statuses), delivered again as SENT."""
    return (
        existing.direction == Direction.SENT
        and direction == Direction.SENT
        and existing.delivery is not None
    )


def _message_redelivered(
    *,
    message_id: UUID,
    conversation_id: UUID,
    direction: str,
    content: str,
    timestamp: datetime,
    channel: str,
    provider_message_id: str | None,
) -> Outcome:
    existing = Message.objects.filter(pk=message_id).first()
    if existing is None:
        # Not our id that collided but the provider's: it names another message already.
        other = Message.objects.get(channel=channel, provider_message_id=provider_message_id)
        return Outcome(
            Result.CONFLICT,
            f"{channel} message {provider_message_id} is already stored as message {other.id}",
        )
    stored = {
        "conversation_id": existing.conversation_id,
        "direction": existing.direction,
        "content": existing.content,
        "timestamp": existing.timestamp,
        "channel": existing.channel,
        "provider_message_id": existing.provider_message_id,
    }
    delivered = {
        "conversation_id": conversation_id,
        "direction": direction,
        "content": content,
        "timestamp": timestamp,
        "channel": channel,
        "provider_message_id": provider_message_id,
    }
    differing = [name for name in stored if stored[name] != delivered[name]]
    if differing in ([], ["timestamp"]) and _is_echo(existing, direction):
        # The provider's echo of one of our replies, whatever time it stamps it with: it
        # took the reply, which says SENT and nothing more (README, "Replies").
        moved = message_delivery_set(
            message_id=message_id, delivery=Delivery.SENT, only_from=Delivery.PENDING
        )
        if moved.result == Result.UPDATED:
            return Outcome(Result.UPDATED, f"message {message_id} (our reply) echoed: SENT")
        return Outcome(Result.DUPLICATE, f"message {message_id} (our reply) already echoed")
    if differing:
        return Outcome(
            Result.CONFLICT,
            f"message {message_id} already stored with a different {', '.join(differing)}",
        )
    return Outcome(Result.DUPLICATE, f"message {message_id} already stored")
