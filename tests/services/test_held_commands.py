"""Held rows store domain commands; rows held as wire events before are converted, and
the delivery log keeps its rows under its new name."""

import importlib
import json
import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from inbox.commands import command_dump, command_load
from inbox.models import HeldEvent, WebhookDelivery
from inbox.providers.generic import event_parse
from tests.conftest import T0, close_conversation, new_message

migration = importlib.import_module("inbox.migrations.0005_held_event_commands")


def _wire_form(event: dict) -> dict:
    """What a held row's payload was before: the validated event, dumped as JSON."""
    return event_parse(json.dumps(event).encode()).model_dump(mode="json")


def test_rows_held_as_wire_events_become_the_commands_a_delivery_holds_now():
    for event in [new_message(uuid.uuid4(), content="Olá"), close_conversation(uuid.uuid4())]:
        command = event_parse(json.dumps(event).encode()).command()
        converted = migration.wire_to_command(_wire_form(event))
        # So a redelivery of a converted row is still recognised (202), and nothing else.
        assert command_load(converted) == command
        assert command_load(command_dump(command)) == command
        assert migration.command_to_wire(converted) == _wire_form(event)


@pytest.mark.django_db(transaction=True)
def test_migrating_keeps_the_delivery_log_and_converts_what_is_held():
    """Rows logged as `Delivery` and held as wire events, before 0005/0006, are kept:
    the log under its new name with its item counts, the held rows as commands."""
    executor = MigrationExecutor(connection)
    before = [("inbox", "0004_conversation_counts")]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    old.get_model("inbox", "Delivery").objects.create(
        body="{}", event_type="", status_code=400, outcome="invalid"
    )
    old.get_model("inbox", "Delivery").objects.create(
        body="{}", event_type="NEW_MESSAGE", event_id=uuid.uuid4(), status_code=201, outcome="x"
    )
    event = new_message(uuid.uuid4(), content="Olá")
    old.get_model("inbox", "HeldEvent").objects.create(
        conversation_id=event["data"]["conversation_id"],
        event_type="NEW_MESSAGE",
        event_id=event["data"]["id"],
        timestamp=T0,
        payload=_wire_form(event),
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    log = WebhookDelivery.objects.order_by("id").values_list("event_type", "item_count")
    assert list(log) == [("", 0), ("NEW_MESSAGE", 1)]
    held = HeldEvent.objects.get()
    assert command_load(held.payload) == event_parse(json.dumps(event).encode()).command()
