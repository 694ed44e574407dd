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

from inbox import db, live
from inbox.models import Conversation, Delivery, Direction, HeldEvent, Message
from inbox.phones import InvalidPhone, phone_normalise
from inbox.services.contacts import contact_for, name_fold
from inbox.services.conversations import conversation_open
from inbox.services.delivery import (
    HELD_STATUS,
    held_rows_apply,
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
    """Who the customer is (README, "Connect WhatsApp"): the conversation's contact, the
    one of their number (E.164 from the wa_id) when there is one, else a new one. The one
    place the channel touches contacts, inside the caller's transaction.

    WhatsApp's profile name fills a contact without one; a *new* profile name (another than
    the one WhatsApp last gave for this conversation) renames the contact, while the same
    one delivered again does not, so an agent's correction stands until the customer
    changes their WhatsApp name."""
    conversation = Conversation.objects.select_related("contact").filter(pk=conversation_id).first()
    if conversation is None:
        return
    contact = conversation.contact
    if contact is None:
        contact = contact_for(name=name, phone=_phone(wa_id))
        if contact is None:
            return
        conversation.contact = contact
        conversation.save(update_fields=["contact"])
        live.conversation_updated(conversation.id)
    if not name or name == conversation.wa_name:
        return
    # What WhatsApp called them last: in this conversation, or the contact's previous one.
    last = conversation.wa_name or (
        Conversation.objects.filter(contact=contact)
        .exclude(pk=conversation.pk)
        .exclude(wa_name="")
        .order_by("-created_at")
        .values_list("wa_name", flat=True)
        .first()
    )
    conversation.wa_name = name
    conversation.save(update_fields=["wa_name"])
    if name != last and contact.name != name:
        contact.name, contact.name_folded = name, name_fold(name)
        contact.save(update_fields=["name", "name_folded"])
        for ident in Conversation.objects.filter(contact=contact).values_list("id", flat=True):
            live.conversation_updated(ident)


def _phone(wa_id: str) -> str | None:
    """The customer's number in E.164 from their wa_id (digits with the country code), or
    None when it is not a valid number (the contact then has a name and no phone)."""
    try:
        return phone_normalise(f"+{wa_id}")
    except InvalidPhone:
        return None


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
                conversation_open(
                    conversation_id=conversation_id,
                    timestamp=timestamp,
                    contact_name=contact_name,
                    contact_phone=_phone(wa_id),
                )
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
        held = HeldEvent.objects.select_for_update().filter(
            event_type=HELD_STATUS, message_id=held_id, applied_at__isnull=True
        )
        return held_rows_apply(held, message_id=message_id)
