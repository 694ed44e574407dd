"""The event schema: what it accepts and how it explains a refusal."""

import json
import uuid
from datetime import UTC, datetime

import pytest

from inbox.providers.generic import InvalidEvent, NewMessage, event_parse
from tests.conftest import new_conversation, new_message


def parse(event: dict):
    return event_parse(json.dumps(event).encode())


def test_a_valid_message_parses_to_typed_values():
    conversation_id = uuid.uuid4()
    event = parse(new_message(conversation_id, ts=0, direction="SENT", content="oi"))
    assert isinstance(event, NewMessage)
    assert event.data.conversation_id == conversation_id
    assert event.data.direction == "SENT"
    assert event.timestamp == datetime(2025, 2, 21, 10, 20, 41, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-02-21T10:20:41Z", datetime(2025, 2, 21, 10, 20, 41, tzinfo=UTC)),
        ("2025-02-21T07:20:41-03:00", datetime(2025, 2, 21, 10, 20, 41, tzinfo=UTC)),
        ("2025-02-21T10:20:41.349308", datetime(2025, 2, 21, 10, 20, 41, 349308, tzinfo=UTC)),
        ("2025-02-21 10:20:41", datetime(2025, 2, 21, 10, 20, 41, tzinfo=UTC)),
    ],
)
def test_iso_8601_timestamps_in_their_common_forms(text, expected):
    event = new_conversation()
    event["timestamp"] = text
    assert parse(event).timestamp == expected


def test_every_problem_is_named_at_once():
    event = new_message("nope", content=" ")
    event["data"]["direction"] = "OUT"
    with pytest.raises(InvalidEvent) as caught:
        parse(event)
    fields = {e.field: e.message for e in caught.value.errors}
    assert set(fields) == {"data.conversation_id", "data.direction", "data.content"}
    assert fields["data.content"] == "must not be blank"
    assert "SENT" in fields["data.direction"]


def test_timestamps_at_the_edge_of_the_calendar_are_refused_not_crashed():
    event = new_conversation()
    event["timestamp"] = "9999-12-31T23:59:59-05:00"
    with pytest.raises(InvalidEvent) as caught:
        parse(event)
    assert caught.value.errors[0].field == "timestamp"


def test_an_event_type_is_one_registered_class_and_the_parser_follows():
    """The schema is open: a new type registers itself, and the parser, the tag list its
    refusals name and the command come with it; no union or isinstance chain to edit."""
    from typing import Literal

    from inbox import commands
    from inbox.providers import generic

    reopen = {**new_conversation(), "type": "REOPEN_CONVERSATION"}
    with pytest.raises(InvalidEvent, match="unknown event type 'REOPEN_CONVERSATION'"):
        parse(reopen)

    @generic.event_type
    class ReopenConversation(generic.Event):
        type: Literal["REOPEN_CONVERSATION"]
        data: generic.ConversationData

        def command(self) -> commands.OpenConversation:
            return commands.OpenConversation(conversation_id=self.data.id, timestamp=self.timestamp)

    try:
        event = parse(reopen)
        assert isinstance(event, ReopenConversation)
        assert event.command().conversation_id == uuid.UUID(reopen["data"]["id"])
        with pytest.raises(InvalidEvent, match="REOPEN_CONVERSATION"):
            parse({**reopen, "type": "NOPE"})
    finally:
        del generic._EVENT_TYPES["REOPEN_CONVERSATION"]
        generic._event_adapter.cache_clear()
    with pytest.raises(InvalidEvent):
        parse(reopen)
