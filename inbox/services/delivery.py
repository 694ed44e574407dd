"""A SENT message's delivery state: it only moves forward (README, "Replies").

PENDING < SENT < FAILED < DELIVERED < READ, with FAILED reachable only from PENDING or
SENT. A message is in the highest state it was ever told, whatever order and however often
the provider's statuses arrive: a FAILED after a DELIVERED is refused (it was delivered), a
DELIVERED after a FAILED wins (the provider delivered it after all). Only an agent's retry
(`outbox.message_retry`) takes a FAILED reply back to PENDING.

Every change is made under the conversation's row lock and pushed live (the bubble, in
place, by its id; the row) by `live.message_added`, the push of a new message, which
replaces a bubble that is already there.
"""

import uuid
from collections.abc import Iterable
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from inbox import db, live
from inbox.commands import SetMessageStatus, command_dump, command_load
from inbox.models import Delivery, Direction, HeldEvent, Message
from inbox.services.locks import conversation_locked, message_key_lock
from inbox.services.outcome import Outcome, Result

# The held table's kind for a status waiting for its message.
HELD_STATUS = "MESSAGE_STATUS"
# The provider's answers and reasons are cut to this when stored.
MAX_ERROR_LENGTH = 500

_RANK = {
    Delivery.PENDING: 0,
    Delivery.SENT: 1,
    Delivery.FAILED: 2,
    Delivery.DELIVERED: 3,
    Delivery.READ: 4,
}


def delivery_moves(current: str, new: str) -> bool:
    """Whether `new` moves a message in state `current` forward."""
    if new == Delivery.FAILED and current not in (Delivery.PENDING, Delivery.SENT):
        return False
    return _RANK[Delivery(new)] > _RANK[Delivery(current)]


def error_cut(error: str | None) -> str | None:
    """An error as stored: at most MAX_ERROR_LENGTH characters, no NUL (neither database)."""
    if error is None:
        return None
    return error.replace("\x00", "")[:MAX_ERROR_LENGTH]


def message_delivery_set(
    *, message_id: uuid.UUID, delivery: str, error: str | None = None, only_from: str | None = None
) -> Outcome:
    """Move a SENT message to `delivery` if that is forward (and, with `only_from`, only
    from that state). The caller's transaction, or one of its own."""
    with db.write():
        found = Message.objects.filter(pk=message_id).values_list("conversation_id").first()
        if found is None:
            return Outcome(Result.NOT_FOUND, f"message {message_id} does not exist")
        conversation_locked(found[0])
        message = Message.objects.get(pk=message_id)
        if message.direction != Direction.SENT:
            return Outcome(
                Result.CONFLICT, f"message {message_id} is RECEIVED: it has no delivery state"
            )
        current = message.delivery_state
        if (only_from is not None and current != only_from) or not delivery_moves(
            current, delivery
        ):
            return Outcome(Result.DUPLICATE, f"message {message_id} is already {current}")
        message.delivery = delivery
        message.error = error_cut(error) if delivery == Delivery.FAILED else None
        message.save(update_fields=["delivery", "error"])
        live.message_added(message.id, message.conversation_id)
    return Outcome(Result.UPDATED, f"message {message_id} is now {delivery}")


def message_status_apply(
    *, message_id: uuid.UUID, status: str, error: str | None, timestamp: datetime
) -> Outcome:
    """The provider's MESSAGE_STATUS; one for a message not stored yet is held for it."""
    with db.write(savepoint=True):
        outcome = message_delivery_set(message_id=message_id, delivery=status, error=error)
        if outcome.result != Result.NOT_FOUND:
            return outcome
        # Serialised with message_add's insert of that id, so the status cannot be held
        # just after its message was stored (and then wait forever).
        message_key_lock(message_id)
        if Message.objects.filter(pk=message_id).exists():
            return message_delivery_set(message_id=message_id, delivery=status, error=error)
        command = SetMessageStatus(
            message_id=message_id, status=status, error=error, timestamp=timestamp
        )
        # One held row per (message, status): a repeat is held once, like other events.
        ident = uuid.uuid5(message_id, status)
        try:
            with transaction.atomic():
                HeldEvent.objects.create(
                    message_id=message_id,
                    event_type=HELD_STATUS,
                    event_id=ident,
                    timestamp=timestamp,
                    payload=command_dump(command),
                )
        except IntegrityError:
            held = command_load(
                HeldEvent.objects.get(event_type=HELD_STATUS, event_id=ident).payload
            )
            # Its time does not matter (a state is the same state whenever it is told), so
            # only another reason for the same status is a conflict.
            if held.error != command.error:
                return Outcome(
                    Result.CONFLICT,
                    f"status {status} of message {message_id} is already held with "
                    "different fields",
                )
    return Outcome(
        Result.HELD,
        f"message {message_id} does not exist yet; its status is held and will be applied "
        "when it arrives",
    )


def held_statuses_apply(*, message_id: uuid.UUID) -> int:
    """Apply the statuses held for a message just stored (the caller holds its locks)."""
    held = HeldEvent.objects.select_for_update().filter(
        message_id=message_id, applied_at__isnull=True
    )
    return held_rows_apply(held, message_id=message_id)


def held_rows_apply(held: Iterable[HeldEvent], *, message_id: uuid.UUID) -> int:
    """Apply held status rows to `message_id`, oldest first, each marked applied with its
    outcome (the caller holds the message's locks and has selected the rows for update)."""
    rows = list(held)
    now = timezone.now()
    for row in sorted(rows, key=lambda h: (h.timestamp, h.event_id)):
        command = command_load(row.payload)
        outcome = message_delivery_set(
            message_id=message_id, delivery=command.status, error=command.error
        )
        row.applied_at = now
        row.outcome = outcome.result
        row.save(update_fields=["applied_at", "outcome"])
    return len(rows)
