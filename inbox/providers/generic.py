"""The generic provider's event schema: its JSON in, a validated event out, then a command.

Parsing is pydantic's, in strict mode, so every refusal names the field and the reason and
no JSON type is silently coerced into another (a number is not an id, `true` is not text).
Unknown keys are ignored, so a provider that adds fields does not break the webhook.

The event types are a registry (`event_type`), not a closed union: a new type is one class
with its `command()`, and the parser, the tag list of its errors and the dispatch follow.
"""

import functools
import typing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    TypeAdapter,
    ValidationError,
)

from inbox import commands
from inbox.phones import InvalidPhone, phone_normalise

# The window a provider's timestamp must fall in (README, "The webhook"). Outside it a time
# is a provider's bug, not a conversation: nothing we talk to predates 2000, and a clock a
# day ahead of ours is wrong. It also keeps stored times far from the calendar's edges.
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_AHEAD = timedelta(hours=24)


def _parse_timestamp(value: object) -> datetime:
    """ISO 8601 text; a timestamp without a zone is read in WEBHOOK_TIMEZONE."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 timestamp string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(settings.WEBHOOK_TIMEZONE))
    try:
        # Normalised to UTC now, so a timestamp at the edge of the calendar fails here
        # with a 400 rather than later in the database.
        parsed = parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value!r} is out of range") from None
    if parsed < EARLIEST_TIMESTAMP:
        raise ValueError(f"{value!r} is before {EARLIEST_TIMESTAMP:%Y-%m-%dT%H:%MZ}")
    if parsed > timezone.now() + LATEST_AHEAD:
        raise ValueError(f"{value!r} is more than 24 h ahead of the server's clock")
    return parsed


def _check_content(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    # Neither database can store these; refusing them here keeps the answer a 400.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def _check_phone(value: str) -> str:
    try:
        return phone_normalise(value)
    except InvalidPhone as error:
        raise ValueError(str(error)) from None


def _check_name(value: str) -> str:
    value = " ".join(value.split())
    # Neither database stores NUL; a lone surrogate is no name.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


Timestamp = Annotated[
    datetime,
    PlainValidator(_parse_timestamp),
    PlainSerializer(lambda value: value.isoformat(), return_type=str),
]
Content = Annotated[str, AfterValidator(_check_content)]
Phone = Annotated[str, Field(max_length=64), AfterValidator(_check_phone)]
Name = Annotated[str, Field(max_length=200), AfterValidator(_check_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")


class ConversationData(_Strict):
    id: UUID


class ContactData(_Strict):
    """Who the customer is: both optional, a phone in national or international form."""

    name: Name = ""
    phone: Phone | None = None


class NewConversationData(ConversationData):
    contact: ContactData | None = None


class MessageData(_Strict):
    id: UUID
    direction: Literal["SENT", "RECEIVED"]
    content: Content
    conversation_id: UUID


class Event(_Strict):
    """An event of the generic provider: a `type` tag, a timestamp, and its command.

    Every type subclasses it and registers with `event_type`; the union is the registry.
    """

    timestamp: Timestamp

    def command(self) -> commands.Command:
        raise NotImplementedError


_EventT = TypeVar("_EventT", bound=type[Event])
_EVENT_TYPES: dict[str, type[Event]] = {}


def event_type(cls: _EventT) -> _EventT:
    """Register an event class under the tag its `type` field's Literal names."""
    (tag,) = typing.get_args(cls.model_fields["type"].annotation)
    _EVENT_TYPES[tag] = cls
    _event_adapter.cache_clear()
    return cls


@functools.cache
def _event_adapter() -> TypeAdapter[Any]:
    union = functools.reduce(lambda a, b: a | b, _EVENT_TYPES.values())
    return TypeAdapter(Annotated[union, Field(discriminator="type")])


@event_type
class NewConversation(Event):
    type: Literal["NEW_CONVERSATION"]
    data: NewConversationData

    def command(self) -> commands.OpenConversation:
        contact = self.data.contact or ContactData()
        return commands.OpenConversation(
            conversation_id=self.data.id,
            timestamp=self.timestamp,
            contact_name=contact.name,
            contact_phone=contact.phone,
        )


@event_type
class NewMessage(Event):
    type: Literal["NEW_MESSAGE"]
    data: MessageData

    def command(self) -> commands.AddMessage:
        return commands.AddMessage(
            message_id=self.data.id,
            conversation_id=self.data.conversation_id,
            direction=self.data.direction,
            content=self.data.content,
            timestamp=self.timestamp,
        )


@event_type
class CloseConversation(Event):
    type: Literal["CLOSE_CONVERSATION"]
    data: ConversationData

    def command(self) -> commands.CloseConversation:
        return commands.CloseConversation(conversation_id=self.data.id, timestamp=self.timestamp)


class MessageStatusData(_Strict):
    id: UUID
    status: Literal["SENT", "DELIVERED", "READ", "FAILED"]
    # The provider's reason, for FAILED; kept as sent (cut to 500 characters when stored).
    error: str | None = None


@event_type
class MessageStatus(Event):
    type: Literal["MESSAGE_STATUS"]
    data: MessageStatusData

    def command(self) -> commands.SetMessageStatus:
        return commands.SetMessageStatus(
            message_id=self.data.id,
            status=self.data.status,
            # NUL out: neither database stores it, and a reason is text for an agent.
            error=self.data.error.replace("\x00", "") if self.data.error is not None else None,
            timestamp=self.timestamp,
        )


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class InvalidEvent(Exception):
    """The body is not a valid event; `errors` says which field and why."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))


def _field_name(loc: tuple[int | str, ...]) -> str:
    # Pydantic puts the union's tag in the location ("NEW_MESSAGE.data.id"); the provider
    # only knows its own field names.
    parts = [str(p) for p in loc]
    if parts and parts[0] in _EVENT_TYPES:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _message(error: dict) -> str:
    if error["type"] == "json_invalid":
        return f"malformed JSON: {error['ctx']['error']}"
    if error["type"] == "model_attributes_type":
        return "the event must be a JSON object"
    if error["type"] == "union_tag_invalid":
        return (
            f"unknown event type {error['ctx']['tag']!r}; expected one of "
            f"{error['ctx']['expected_tags']}"
        )
    if error["type"] == "union_tag_not_found":
        return "missing: every event has a 'type'"
    if error["type"] == "missing":
        return "missing"
    return error["msg"].removeprefix("Value error, ")


def event_parse(body: bytes) -> Event:
    """Parse and validate one webhook body, or raise InvalidEvent naming every problem."""
    try:
        return _event_adapter().validate_json(body)
    except ValidationError as exc:
        raise InvalidEvent(
            [
                FieldError(
                    field="type" if e["type"].startswith("union_tag") else _field_name(e["loc"]),
                    message=_message(e),
                )
                for e in exc.errors()
            ]
        ) from None
