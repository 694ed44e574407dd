"""The generic provider's schema, where it used to live: `inbox.providers.generic` now."""

from inbox.providers.generic import (
    EARLIEST_TIMESTAMP,
    LATEST_AHEAD,
    CloseConversation,
    Event,
    FieldError,
    InvalidEvent,
    NewConversation,
    NewMessage,
    event_parse,
)

__all__ = [
    "EARLIEST_TIMESTAMP",
    "LATEST_AHEAD",
    "CloseConversation",
    "Event",
    "FieldError",
    "InvalidEvent",
    "NewConversation",
    "NewMessage",
    "event_parse",
]
