"""The WhatsApp channel's writes (README, "Connect WhatsApp").

WhatsApp names customers, not conversations: a message from a `wa_id` goes to that
customer's open conversation, or opens one. Ids are derived from wamids (uuid5), so a
redelivery lands on the same rows: the message's id from its wamid, a conversation's from
the wamid of the message that opened it. Everything for one customer is serialised on a
key lock of their wa_id, so two deliveries at once cannot open two conversations.

Statuses name our replies by the wamid Graph gave when it took them. One that arrives
before the worker has stored that wamid (the webhook can beat the worker's commit) is held
under the wamid's derived id and applied when the wamid is stored (`whatsapp_reply_sent`).
"""

import uuid
from datetime import datetime
from typing import Any

from django.utils import timezone

from inbox import db
from inbox.commands import command_load
from inbox.models import Conversation, Delivery, Direction, HeldEvent, Message
from inbox.services.conversations import conversation_open
from inbox.services.delivery import (
    HELD_STATUS,
    message_delivery_set,
    message_status_apply,
)
from inbox.services.messages import message_add
from inbox.services.outcome import Outcome, Result

CHANNEL = "whatsapp"
# Fixed for ever: the ids below are derived from it, and a redelivery must find its rows.
NAMESPACE = uuid.UUID("5b0c7f53-6d1e-4a53-9a8e-2f4d1e0c9b71")


def whatsapp_message_id(wamid: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"message:{wamid}")


def whatsapp_conversation_id(wamid: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"conversation:{wamid}")


def _customer_lock(wa_id: str) -> None:
    db.key_lock(uuid.uuid5(NAMESPACE, f"wa_id:{wa_id}"))


def contact_note(*, conversation_id: uuid.UUID, wa_id: str, name: str) -> None:
    """Who the customer is: their wa_id and WhatsApp profile name on the conversation's
    contact (a later name replaces an earlier one). The one place the channel touches
    contacts, inside the caller's transaction."""
    if not name:
        return  # an envelope without contacts[] says nothing about the name
    Conversation.objects.filter(pk=conversation_id).exclude(wa_name=name).update(wa_name=name)


def whatsapp_message_receive(
    *,
    wamid: str,
    wa_id: str,
    contact_name: str,
    kind: str,
    content: str,
    attachment: dict[str, Any] | None,
    timestamp: datetime,
) -> Outcome:
    """Store a customer's message in their open conversation, opening one if they have none."""
    with db.write(savepoint=True):
        _customer_lock(wa_id)
        stored = (
            Message.objects.filter(channel=CHANNEL, provider_message_id=wamid)
            .values_list("conversation_id", flat=True)
            .first()
        )
        if stored is not None:
            contact_note(conversation_id=stored, wa_id=wa_id, name=contact_name)
            return Outcome(Result.DUPLICATE, f"whatsapp message {wamid} already stored")
        conversation_id = (
            Conversation.objects.filter(
                channel=CHANNEL, wa_id=wa_id, status=Conversation.Status.OPEN
            )
            .order_by("-last_activity_at")
            .values_list("id", flat=True)
            .first()
        )
        opened = False
        if conversation_id is None:
            conversation_id = whatsapp_conversation_id(wamid)
            if not Conversation.objects.filter(pk=conversation_id).exists():
                conversation_open(conversation_id=conversation_id, timestamp=timestamp)
                Conversation.objects.filter(pk=conversation_id).update(channel=CHANNEL, wa_id=wa_id)
                opened = True
        contact_note(conversation_id=conversation_id, wa_id=wa_id, name=contact_name)
        outcome = message_add(
            message_id=whatsapp_message_id(wamid),
            conversation_id=conversation_id,
            direction=Direction.RECEIVED,
            content=content,
            timestamp=timestamp,
            channel=CHANNEL,
            provider_message_id=wamid,
            kind=kind,
            attachment=attachment,
        )
    if opened and outcome.result == Result.CREATED:
        return Outcome(Result.CREATED, f"{outcome.detail}; conversation {conversation_id} opened")
    return outcome


def whatsapp_status_apply(
    *, wamid: str, status: str, error: str | None, timestamp: datetime
) -> Outcome:
    """WhatsApp's status of one of our messages, forward only (README, "Replies")."""
    with db.write(savepoint=True):
        held_id = whatsapp_message_id(wamid)
        # Serialised with whatsapp_reply_sent on the same key: a status is either found
        # by its wamid or held before the wamid is stored, never lost in between.
        db.key_lock(held_id)
        found = (
            Message.objects.filter(channel=CHANNEL, provider_message_id=wamid)
            .values_list("id", flat=True)
            .first()
        )
        return message_status_apply(
            message_id=found or held_id, status=status, error=error, timestamp=timestamp
        )


def whatsapp_reply_sent(*, message_id: uuid.UUID, wamid: str) -> int:
    """Graph took a reply: SENT, the wamid it gave recorded, then the statuses that came
    before it applied. Inside the caller's transaction (the worker's attempt record).

    The wamid's key is taken before the conversation's row, as `whatsapp_status_apply`
    takes them, so a status arriving at this moment waits instead of deadlocking."""
    held_id = whatsapp_message_id(wamid)
    with db.write():
        db.key_lock(held_id)
        message_delivery_set(
            message_id=message_id, delivery=Delivery.SENT, only_from=Delivery.PENDING
        )
        Message.objects.filter(pk=message_id).update(channel=CHANNEL, provider_message_id=wamid)
        rows = list(
            HeldEvent.objects.select_for_update().filter(
                event_type=HELD_STATUS, message_id=held_id, applied_at__isnull=True
            )
        )
        now = timezone.now()
        for row in sorted(rows, key=lambda r: (r.timestamp, r.event_id)):
            command = command_load(row.payload)
            outcome = message_delivery_set(
                message_id=message_id, delivery=command.status, error=command.error
            )
            row.applied_at = now
            row.outcome = outcome.result
            row.save(update_fields=["applied_at", "outcome"])
    return len(rows)
