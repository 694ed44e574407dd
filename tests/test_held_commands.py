"""Held rows store domain commands; rows held as wire events before are converted."""

import importlib
import json
import uuid

from inbox.commands import command_dump, command_load
from inbox.events import event_parse
from tests.conftest import close_conversation, new_message

migration = importlib.import_module("inbox.migrations.0005_held_event_commands")


def _wire_form(event: dict) -> dict:
    """What a held row's payload was before: the validated event, dumped as JSON."""
    return event_parse(json.dumps(event).encode()).model_dump(mode="json")


def test_rows_held_as_wire_events_become_the_commands_a_delivery_holds_now():
    for event in [new_message(uuid.uuid4(), content="Olá"), close_conversation(uuid.uuid4())]:
        command = event_parse(json.dumps(event).encode()).command()
        converted = migration.wire_to_command(_wire_form(event))
        # Equal as JSON, so a redelivery of a converted row is still recognised (202).
        assert converted == command_dump(command)
        assert command_load(converted) == command
        assert migration.command_to_wire(converted) == _wire_form(event)
