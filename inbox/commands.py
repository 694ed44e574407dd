"""What a provider asks of the inbox, in the domain's words: plain frozen dataclasses.

A provider (`inbox.providers`) validates its own wire format and turns each event into one
of these; the services take nothing else, so they never see a provider's JSON or pydantic.
A command is also what the held-event table stores (`command_dump`/`command_load`), so an
event held today is applied by tomorrow's services whatever the provider's schema became.
"""

import dataclasses
import typing
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

_T = TypeVar("_T")

_COMMANDS: dict[str, type] = {}


def _command(cls: type[_T]) -> type[_T]:
    """Register a command type under its class name, the name `command_dump` stores."""
    _COMMANDS[cls.__name__] = cls
    return cls


@_command
@dataclass(frozen=True, kw_only=True)
class OpenConversation:
    conversation_id: UUID
    timestamp: datetime
    # Who the customer is, when the provider says (README, "Triage"); the phone in E.164.
    contact_name: str = ""
    contact_phone: str | None = None


@_command
@dataclass(frozen=True, kw_only=True)
class AddMessage:
    message_id: UUID
    conversation_id: UUID
    direction: str
    content: str
    timestamp: datetime
    # The provider's own id, when it is not `message_id` (WhatsApp's wamid), unique per channel.
    channel: str = "generic"
    provider_message_id: str | None = None


@_command
@dataclass(frozen=True, kw_only=True)
class CloseConversation:
    conversation_id: UUID
    timestamp: datetime


@_command
@dataclass(frozen=True, kw_only=True)
class SetMessageStatus:
    """The provider's word on a SENT message's delivery (README, "Replies")."""

    message_id: UUID
    status: str  # SENT, DELIVERED, READ or FAILED
    error: str | None = None
    timestamp: datetime


Command = OpenConversation | AddMessage | CloseConversation | SetMessageStatus


def command_name(command: Command) -> str:
    return type(command).__name__


def command_dump(command: Command) -> dict[str, Any]:
    """The command as JSON-ready data: its type's name, then its fields as text."""
    data: dict[str, Any] = {"command": command_name(command)}
    for name, value in dataclasses.asdict(command).items():
        data[name] = value.isoformat() if isinstance(value, datetime) else value
        if isinstance(value, UUID):
            data[name] = str(value)
    return data


def command_load(data: dict[str, Any]) -> Command:
    """Rebuild a command from `command_dump`'s output.

    No validation beyond the types: it was valid when it was dumped, and a timestamp that
    was in the provider's window then is applied whatever the clock says now.
    """
    cls = _COMMANDS[data["command"]]
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name not in data:
            continue  # a field added since it was dumped: its default
        value = data[field.name]
        if value is not None and hints[field.name] is UUID:
            value = UUID(value)
        elif value is not None and hints[field.name] is datetime:
            value = datetime.fromisoformat(value)
        values[field.name] = value
    return cls(**values)
