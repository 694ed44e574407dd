"""WhatsApp Business Cloud API: Meta's webhook envelope in, domain commands out.

One POST carries an envelope (`object`, `entry[]`, each with `changes[]`, each a `value`)
whose `messages[]`, `statuses[]`, `contacts[]` and `errors[]` may hold any number of items
(README, "Connect WhatsApp", with the Meta pages it follows). Every array is walked; each
message becomes a `ReceiveWhatsAppMessage`, each status a `SetWhatsAppStatus`.

Parsing is pydantic's, strict on the fields we use (a wamid is a string, never a number)
and blind to the rest, since Meta adds fields often. A body that breaks the shape is
refused whole, naming the field the way the envelope spells it
(`entry[0].changes[1].value.messages[0].id`). A message type we do not know is kept as
`unsupported` with its type's name: nothing a customer sends is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from django.utils import timezone
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from inbox import commands
from inbox.providers.generic import EARLIEST_TIMESTAMP, LATEST_AHEAD, FieldError, InvalidEvent

CHANNEL = "whatsapp"
MEDIA_KINDS = ("image", "audio", "video", "document", "sticker")
# What WhatsApp's statuses[] say, in our delivery states. A voice message "played" has been
# heard, which is more than read; "deleted" (the customer deleted it) moves nothing.
STATUSES = {
    "sent": "SENT",
    "delivered": "DELIVERED",
    "read": "READ",
    "played": "READ",
    "failed": "FAILED",
}
# Cut to what the columns hold; past these a value is garbage, not a customer's words.
MAX_NAME = 200


def clean(text: str) -> str:
    """Text as both databases can store it: NUL out (neither stores it, in text or jsonb)
    and lone surrogates replaced, since a customer's words are kept, never refused."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _timestamp(value: str) -> str:
    if not value.isdigit():
        raise ValueError("must be Unix seconds as a string of digits")
    try:
        moment = datetime.fromtimestamp(int(value), tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{value!r} is out of range") from None
    if moment < EARLIEST_TIMESTAMP:
        raise ValueError(f"{value!r} is before {EARLIEST_TIMESTAMP:%Y-%m-%dT%H:%MZ}")
    if moment > timezone.now() + LATEST_AHEAD:
        raise ValueError(f"{value!r} is more than 24 h ahead of the server's clock")
    return value


# A wamid fits Message.provider_message_id, a wa_id Conversation.wa_id.
Wamid = Annotated[str, StringConstraints(min_length=1, max_length=128)]
WaId = Annotated[str, StringConstraints(min_length=1, max_length=32)]
Timestamp = Annotated[str, AfterValidator(_timestamp)]


def at(value: str) -> datetime:
    return datetime.fromtimestamp(int(value), tz=UTC)


class _Part(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")


class Text(_Part):
    body: str


class Media(_Part):
    id: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    mime_type: str = ""
    sha256: str = ""
    caption: str = ""
    filename: str = ""
    # A voice note (audio), or an animated sticker.
    voice: bool = False
    animated: bool = False


class Location(_Part):
    latitude: float
    longitude: float
    name: str = ""
    address: str = ""
    url: str = ""


class Reaction(_Part):
    message_id: str
    # Absent or empty: the customer took their reaction back.
    emoji: str = ""


class Reply(_Part):
    id: str = ""
    title: str = ""
    description: str = ""


class Interactive(_Part):
    type: str
    button_reply: Reply | None = None
    list_reply: Reply | None = None
    nfm_reply: dict[str, Any] | None = None


class Button(_Part):
    text: str = ""
    payload: str = ""


class SharedName(_Part):
    formatted_name: str = ""


class SharedPhone(_Part):
    phone: str = ""
    wa_id: str = ""


class SharedContact(_Part):
    name: SharedName = SharedName()
    phones: list[SharedPhone] = []


class ErrorData(_Part):
    details: str = ""


class GraphError(_Part):
    code: int
    title: str = ""
    message: str = ""
    error_data: ErrorData | None = None


class InboundMessage(_Part):
    # `from` is a keyword in Python.
    sender: WaId = Field(alias="from")
    id: Wamid
    timestamp: Timestamp
    type: str
    text: Text | None = None
    image: Media | None = None
    audio: Media | None = None
    video: Media | None = None
    document: Media | None = None
    sticker: Media | None = None
    location: Location | None = None
    contacts: list[SharedContact] | None = None
    reaction: Reaction | None = None
    interactive: Interactive | None = None
    button: Button | None = None
    errors: list[GraphError] = []


class Status(_Part):
    id: Wamid
    status: str
    timestamp: Timestamp
    recipient_id: str = ""
    errors: list[GraphError] = []


class Profile(_Part):
    name: str = ""


class Contact(_Part):
    wa_id: WaId
    profile: Profile = Profile()


class Value(_Part):
    messaging_product: str = "whatsapp"
    contacts: list[Contact] = []
    messages: list[InboundMessage] = []
    statuses: list[Status] = []
    errors: list[GraphError] = []


class Change(_Part):
    field: str
    # Another field's value (account updates, template reviews) has its own shape; only
    # "messages" is read, so the rest are kept as plain JSON and ignored.
    value: dict[str, Any]


class Entry(_Part):
    id: str
    changes: list[Change]


class Envelope(_Part):
    object: str
    entry: list[Entry]


@dataclass(frozen=True)
class Item:
    """One thing the envelope asks for, with where it was (for the delivery log)."""

    where: str
    command: commands.ReceiveWhatsAppMessage | commands.SetWhatsAppStatus | None
    # Why nothing is applied, when `command` is None (a status we do not track, errors[]).
    note: str = ""


def error_text(errors: list[GraphError]) -> str | None:
    """WhatsApp's errors[] as the reason a FAILED bubble shows: `WhatsApp error <code>:
    <title> (<details>)` per error; `delivery_reason` makes the code readable."""
    if not errors:
        return None
    parts = []
    for error in errors:
        text = f"WhatsApp error {error.code}: {error.title or error.message}"
        details = error.error_data.details if error.error_data else ""
        if details:
            text += f" ({details})"
        parts.append(clean(text))
    return "; ".join(parts)


def _kind_and_content(message: InboundMessage) -> tuple[str, str, dict[str, Any] | None]:
    """The message's kind, its legible text, and what else the page shows of it."""
    kind = message.type
    if kind == "text" and message.text is not None:
        return "text", clean(message.text.body), None
    if kind in MEDIA_KINDS and getattr(message, kind) is not None:
        media: Media = getattr(message, kind)
        attachment = {
            "media_id": clean(media.id),
            "mime_type": clean(media.mime_type),
            "sha256": clean(media.sha256),
            "filename": clean(media.filename),
        }
        if media.voice:
            attachment["voice"] = True
        return kind, clean(media.caption or media.filename), attachment
    if kind == "location" and message.location is not None:
        place = message.location
        words = ", ".join(clean(p) for p in (place.name, place.address) if p)
        attachment = {
            "latitude": place.latitude,
            "longitude": place.longitude,
            "name": clean(place.name),
            "address": clean(place.address),
            "url": clean(place.url),
        }
        coordinates = f"{place.latitude:.6f}, {place.longitude:.6f}"
        return "location", f"{words} ({coordinates})" if words else coordinates, attachment
    if kind == "contacts" and message.contacts is not None:
        shared = [
            {
                "name": clean(c.name.formatted_name),
                "phones": [clean(p.phone or p.wa_id) for p in c.phones if p.phone or p.wa_id],
            }
            for c in message.contacts
        ]
        lines = [
            " ".join(part for part in (c["name"], ", ".join(c["phones"])) if part) for c in shared
        ]
        return "contacts", "\n".join(line for line in lines if line), {"contacts": shared}
    if kind == "reaction" and message.reaction is not None:
        return (
            "reaction",
            clean(message.reaction.emoji),
            {
                "message_id": clean(message.reaction.message_id),
                "emoji": clean(message.reaction.emoji),
            },
        )
    if kind == "interactive" and message.interactive is not None:
        chosen = message.interactive.button_reply or message.interactive.list_reply
        if chosen is not None:
            text = " — ".join(clean(p) for p in (chosen.title, chosen.description) if p)
            return "interactive", text, {"reply_id": clean(chosen.id), "title": clean(chosen.title)}
        # A flow's answer (nfm_reply) or a type of reply we do not read: its name, legibly.
        return "interactive", "", {"type": clean(message.interactive.type)}
    if kind == "button" and message.button is not None:
        # A quick-reply button of one of our templates: the customer's answer is its text.
        return "interactive", clean(message.button.text), {"payload": clean(message.button.payload)}
    # "unsupported", or a type newer than this code: kept, with what WhatsApp said of it.
    attachment = {"type": clean(kind)[:64]}
    reason = error_text(message.errors)
    if reason:
        attachment["error"] = reason
    return "unsupported", "", attachment


def _where(loc: tuple[int | str, ...]) -> str:
    """Pydantic's location in the envelope's own spelling: entry[0].changes[1].value."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{'from' if part == 'sender' else part}" if text else str(part)
    return text or "body"


def _message(error: dict) -> str:
    if error["type"] == "json_invalid":
        return f"malformed JSON: {error['ctx']['error']}"
    if error["type"] == "model_type":
        return "must be a JSON object"
    if error["type"] == "missing":
        return "missing"
    return error["msg"].removeprefix("Value error, ")


def _invalid(errors: list[tuple[str, str]]) -> InvalidEvent:
    return InvalidEvent([FieldError(field=field, message=message) for field, message in errors])


def envelope_parse(body: bytes) -> list[Item]:
    """Every item of a webhook body, in the envelope's order, or InvalidEvent naming each
    field at fault (nothing is applied from a body that is refused)."""
    try:
        envelope = Envelope.model_validate_json(body)
    except ValidationError as exc:
        raise _invalid([(_where(e["loc"]), _message(e)) for e in exc.errors()]) from None
    if envelope.object != "whatsapp_business_account":
        raise _invalid(
            [("object", f"expected 'whatsapp_business_account', not {envelope.object!r}")]
        )
    items: list[Item] = []
    problems: list[tuple[str, str]] = []
    for e, entry in enumerate(envelope.entry):
        for c, change in enumerate(entry.changes):
            where = f"entry[{e}].changes[{c}]"
            if change.field != "messages":
                items.append(Item(where, None, f"field {clean(change.field)[:64]!r} is not read"))
                continue
            try:
                value = Value.model_validate(change.value)
            except ValidationError as exc:
                problems += [
                    (f"{where}.value.{_where(err['loc'])}", _message(err)) for err in exc.errors()
                ]
                continue
            items += _value_items(f"{where}.value", value)
    if problems:
        raise _invalid(problems)
    return items


def _value_items(where: str, value: Value) -> list[Item]:
    names = {contact.wa_id: clean(contact.profile.name)[:MAX_NAME] for contact in value.contacts}
    items = []
    for n, message in enumerate(value.messages):
        kind, content, attachment = _kind_and_content(message)
        items.append(
            Item(
                f"{where}.messages[{n}]",
                commands.ReceiveWhatsAppMessage(
                    wamid=clean(message.id),
                    wa_id=clean(message.sender),
                    contact_name=names.get(message.sender, ""),
                    kind=kind,
                    content=content,
                    attachment=attachment,
                    timestamp=at(message.timestamp),
                ),
            )
        )
    for n, status in enumerate(value.statuses):
        state = STATUSES.get(status.status)
        if state is None:
            items.append(
                Item(
                    f"{where}.statuses[{n}]",
                    None,
                    f"status {clean(status.status)[:32]!r} moves nothing",
                )
            )
            continue
        items.append(
            Item(
                f"{where}.statuses[{n}]",
                commands.SetWhatsAppStatus(
                    wamid=clean(status.id),
                    status=state,
                    error=error_text(status.errors) if state == "FAILED" else None,
                    timestamp=at(status.timestamp),
                ),
            )
        )
    for n, error in enumerate(value.errors):
        items.append(Item(f"{where}.errors[{n}]", None, error_text([error]) or ""))
    return items


def window_closes(last_received: datetime | None) -> datetime | None:
    """When WhatsApp's customer-service window closes: 24 h after the customer's last message."""
    return None if last_received is None else last_received + timedelta(hours=24)
