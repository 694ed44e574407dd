"""A provider's replays and reused ids: they can neither undo an agent's work nor make the
store drop an event it accepted."""

import json
import uuid
from datetime import timedelta

import pytest
from django.test import Client

from inbox import services
from inbox.models import Conversation, HeldEvent, Message
from inbox.providers.generic import event_parse
from tests.conftest import (
    T0,
    close_conversation,
    deliver_concurrently,
    new_conversation,
    new_message,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def reopened(post_event, agent) -> Conversation:
    """A conversation the provider closed at T0+100 s and an agent then reopened."""
    ident = uuid.uuid4()
    assert post_event(new_conversation(ident, ts=0)).status_code == 201
    assert post_event(close_conversation(ident, ts=100)).status_code == 200
    services.conversation_reopen(conversation_id=ident, agent=agent)
    return Conversation.objects.get(pk=ident)


def test_a_replayed_close_cannot_undo_an_agents_reopen(post_event, reopened):
    response = post_event(close_conversation(reopened.id, ts=100))
    assert response.status_code == 200
    assert response.json()["result"] == "duplicate"
    conversation = Conversation.objects.get(pk=reopened.id)
    assert (conversation.status, conversation.closed_at) == ("OPEN", None)
    # The customer's next message is taken, not refused as after a close.
    assert post_event(new_message(reopened.id, ts=200)).status_code == 201


def test_a_close_at_the_reopen_instant_is_a_duplicate_and_after_it_closes(reopened):
    at_reopen = services.conversation_close(
        conversation_id=reopened.id, timestamp=reopened.reopened_at
    )
    assert at_reopen.result == services.Result.DUPLICATE
    assert Conversation.objects.get(pk=reopened.id).status == "OPEN"
    later = reopened.reopened_at + timedelta(microseconds=1)
    after = services.conversation_close(conversation_id=reopened.id, timestamp=later)
    assert after.result == services.Result.CLOSED
    conversation = Conversation.objects.get(pk=reopened.id)
    assert (conversation.status, conversation.closed_at) == ("CLOSED", later)


def test_only_the_latest_reopen_counts(post_event, reopened, agent):
    # Closed again by the provider after the reopen, reopened again by the agent: a close
    # between the two reopens is as old as the last one, and changes nothing.
    between = reopened.reopened_at + timedelta(microseconds=1)
    services.conversation_close(conversation_id=reopened.id, timestamp=between)
    services.conversation_reopen(conversation_id=reopened.id, agent=agent)
    outcome = services.conversation_close(conversation_id=reopened.id, timestamp=between)
    assert outcome.result == services.Result.DUPLICATE
    assert Conversation.objects.get(pk=reopened.id).status == "OPEN"


def test_an_agents_own_close_after_a_reopen_still_closes(reopened, agent):
    outcome = services.conversation_close_by_agent(conversation_id=reopened.id, agent=agent)
    assert outcome.result == services.Result.CLOSED


# --- A message id is stored or held, never both ------------------------------------------


@pytest.fixture
def stored(post_event) -> dict:
    """A message stored in an existing conversation: its event."""
    ident = uuid.uuid4()
    assert post_event(new_conversation(ident)).status_code == 201
    event = new_message(ident, ts=5)
    assert post_event(event).status_code == 201
    return event


def _for_conversation(event: dict, conversation_id: uuid.UUID) -> dict:
    return {**event, "data": {**event["data"], "conversation_id": str(conversation_id)}}


def test_a_stored_message_id_for_an_unknown_conversation_is_refused_not_held(post_event, stored):
    unknown = uuid.uuid4()
    response = post_event(_for_conversation(stored, unknown))
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert stored["data"]["id"] in response.json()["detail"]
    assert not HeldEvent.objects.exists()
    # Its conversation arriving later has nothing to drop.
    assert post_event(new_conversation(unknown)).status_code == 201
    assert Message.objects.get(pk=stored["data"]["id"]).conversation_id == uuid.UUID(
        stored["data"]["conversation_id"]
    )


def test_a_held_message_id_for_an_existing_conversation_is_refused_not_stored(post_event):
    existing, unknown = uuid.uuid4(), uuid.uuid4()
    assert post_event(new_conversation(existing)).status_code == 201
    held = new_message(unknown, ts=5)
    assert post_event(held).status_code == 202

    response = post_event(_for_conversation(held, existing))

    assert response.status_code == 409
    assert str(unknown) in response.json()["detail"]
    assert not Message.objects.exists()
    # The event answered 202 is the one kept: applied when its conversation arrives.
    assert post_event(new_conversation(unknown)).status_code == 201
    message = Message.objects.get(pk=held["data"]["id"])
    assert message.conversation_id == unknown
    assert HeldEvent.objects.get().outcome == "created"


def _parsed(event: dict):
    return event_parse(json.dumps(event).encode()).command()


def test_the_services_refuse_either_way(stored):
    message_id = uuid.UUID(stored["data"]["id"])
    fields = {"direction": "RECEIVED", "content": "hi", "timestamp": T0}
    refused = services.command_apply(command=_parsed(_for_conversation(stored, uuid.uuid4())))
    assert refused.result == services.Result.CONFLICT
    held_id = uuid.uuid4()
    held = services.command_apply(command=_parsed(new_message(uuid.uuid4(), message_id=held_id)))
    assert held.result == services.Result.HELD
    existing = Message.objects.get(pk=message_id).conversation_id
    outcome = services.message_add(message_id=held_id, conversation_id=existing, **fields)
    assert outcome.result == services.Result.CONFLICT
    assert HeldEvent.objects.filter(applied_at__isnull=True).count() == 1


@pytest.mark.django_db(transaction=True)
def test_one_id_raced_to_an_existing_and_an_unknown_conversation_lands_once():
    """Deliveries of one message id to a known and an unknown conversation at the same
    instant: one is taken (stored or held), the other refused, whatever the interleaving."""
    existing = uuid.uuid4()
    Client().post(
        "/webhook/", json.dumps(new_conversation(existing)), content_type="application/json"
    )
    for _ in range(10):
        message_id, unknown = uuid.uuid4(), uuid.uuid4()
        bodies = [
            json.dumps(new_message(existing, message_id=message_id)).encode(),
            json.dumps(new_message(unknown, message_id=message_id)).encode(),
        ]
        statuses = deliver_concurrently(bodies)
        assert statuses[409] == 1, statuses
        assert statuses[201] + statuses[202] == 1, statuses
        stored_count = Message.objects.filter(pk=message_id).count()
        held_count = HeldEvent.objects.filter(event_id=message_id).count()
        assert stored_count + held_count == 1
