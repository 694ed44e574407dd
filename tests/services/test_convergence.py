"""Property: whatever the order and however often events are delivered, the inbox ends in
the state of the same history delivered once, in order."""

import json
import os

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbox import selectors
from inbox.models import Conversation, HeldEvent, Message, WebhookDelivery
from tests.conftest import close_conversation, new_conversation, new_message

# CI runs a few hundred histories on each database (each costs a dozen webhook round trips:
# 2,000 took 10-25 min a pass on two cores, most of CI); a local run keeps to a hundred.
EXAMPLES = 400 if os.environ.get("CI") else 100


@st.composite
def histories(draw) -> list[dict]:
    """A valid history: an open, messages both ways, maybe a close after the last message.

    A close timestamped before a message is not a history a provider can produce: if that
    message arrived first it was accepted while the conversation was open, and an accepted
    message is never thrown away, so no order-independent answer exists for it.
    """
    conversation_id = draw(st.uuids())
    times = draw(st.lists(st.integers(0, 40), max_size=8))
    events = [new_conversation(conversation_id, ts=0)]
    for ts in times:
        events.append(
            new_message(
                conversation_id,
                ts=ts,
                message_id=draw(st.uuids()),
                direction=draw(st.sampled_from(["SENT", "RECEIVED"])),
                content=draw(st.sampled_from(["Oi!", "Olá, tudo bem?", "Hello", "ação"])),
            )
        )
    if draw(st.booleans()):
        closed_at = draw(st.integers(max(times, default=0), 45))
        events.append(close_conversation(conversation_id, ts=closed_at))
    return events


def in_order(events: list[dict]) -> list[dict]:
    rank = {"NEW_CONVERSATION": 0, "NEW_MESSAGE": 1, "CLOSE_CONVERSATION": 2}
    return sorted(events, key=lambda e: (e["timestamp"], rank[e["type"]]))


def deliver_and_read(client: Client, agent_client: Client, events: list[dict]) -> dict:
    for event in events:
        response = client.post("/webhook/", json.dumps(event), content_type="application/json")
        assert response.status_code in {200, 201, 202, 409}, response.content
    conversation_id = events[0]["data"].get("conversation_id", events[0]["data"]["id"])
    state = agent_client.get(f"/api/conversations/{conversation_id}/").json()
    waiting = HeldEvent.objects.filter(applied_at__isnull=True).count()
    # The tabs' counts, kept by trigger, agree with the conversations however they arrived.
    counts = selectors.conversation_counts()
    state["tab_counts"] = {
        "open": counts.open,
        "closed": counts.closed,
        "waiting": counts.waiting,
        "unassigned": counts.unassigned,
    }
    for model in (Message, Conversation, HeldEvent, WebhookDelivery):
        model.objects.all().delete()
    emptied = selectors.TabCounts(open=0, closed=0, waiting=0, mine=0, unassigned=0)
    assert selectors.conversation_counts() == emptied
    return {"conversation": state, "held_waiting": waiting}


@pytest.mark.django_db
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), history=histories())
def test_shuffled_duplicated_delivery_converges_to_in_order_state(data, history, agent_client):
    duplicates = data.draw(st.lists(st.sampled_from(history), max_size=5))
    shuffled = data.draw(st.permutations(history + duplicates))
    client = Client()

    expected = deliver_and_read(client, agent_client, in_order(history))
    actual = deliver_and_read(client, agent_client, shuffled)

    assert actual == expected
    assert actual["held_waiting"] == 0
