"""The WhatsApp channel's reads: the 24-hour window, the templates the composer offers."""

from datetime import datetime, timedelta

from inbox.models import Conversation, Direction, Message, WhatsAppTemplate

# WhatsApp's customer-service window: free text only this long after the customer's last
# message; after it, only an approved template (README, "Connect WhatsApp").
WHATSAPP_WINDOW = timedelta(hours=24)


def whatsapp_window_closes(conversation: Conversation) -> datetime | None:
    """When the conversation's 24-hour window closes (or closed); None if the customer
    never wrote, which WhatsApp treats as closed. One indexed read (message_thread)."""
    last = (
        Message.objects.filter(conversation=conversation, direction=Direction.RECEIVED)
        .order_by("-timestamp")
        .values_list("timestamp", flat=True)
        .first()
    )
    return None if last is None else last + WHATSAPP_WINDOW


def whatsapp_templates() -> list[WhatsAppTemplate]:
    return list(WhatsAppTemplate.objects.all()[:50])
