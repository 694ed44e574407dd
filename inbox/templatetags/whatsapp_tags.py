"""How WhatsApp's message kinds read on the page (README, "Connect WhatsApp")."""

from django import template
from django.utils.translation import gettext_lazy, pgettext_lazy

from inbox.models import Message
from inbox.providers import graph

register = template.Library()

# A kind's label, for the placeholder of what is not text and for the list's preview.
KIND_LABELS = {
    "image": pgettext_lazy("whatsapp kind", "Image"),
    "audio": pgettext_lazy("whatsapp kind", "Audio"),
    "video": pgettext_lazy("whatsapp kind", "Video"),
    "document": pgettext_lazy("whatsapp kind", "Document"),
    "sticker": pgettext_lazy("whatsapp kind", "Sticker"),
    "location": pgettext_lazy("whatsapp kind", "Location"),
    "contacts": pgettext_lazy("whatsapp kind", "Shared contact"),
    "reaction": pgettext_lazy("whatsapp kind", "Reaction"),
    "interactive": pgettext_lazy("whatsapp kind", "Reply"),
    "template": pgettext_lazy("whatsapp kind", "Template"),
    "unsupported": pgettext_lazy("whatsapp kind", "Unsupported message"),
}
VOICE = gettext_lazy("Voice message")


@register.filter
def kind_label(message: Message) -> str:
    if message.kind == "audio" and (message.attachment or {}).get("voice"):
        return str(VOICE)
    return str(KIND_LABELS.get(message.kind, message.kind))


@register.filter
def message_preview(message: Message | None) -> str:
    """The list row's last-message text: the content, or for a caption-less image (say)
    its kind, so a row never reads empty."""
    if message is None:
        return ""
    if message.kind == "text":
        return message.content
    label = kind_label(message)
    return f"{label}: {message.content}" if message.content else label


@register.filter
def delivery_reason(error: str | None) -> str:
    return graph.delivery_reason(error)


@register.filter
def is_media(message: Message) -> bool:
    return message.kind in ("image", "audio", "video", "document", "sticker") and bool(
        (message.attachment or {}).get("media_id")
    )
