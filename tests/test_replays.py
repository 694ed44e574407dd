"""A provider's replays and reused ids: they can neither undo an agent's work nor make the
store drop an event it accepted."""

import uuid
from datetime import timedelta

import pytest

from inbox import services
from inbox.models import Conversation
from tests.conftest import close_conversation, new_conversation, new_message

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
