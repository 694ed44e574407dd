"""Property: no body, however broken, yields a 5xx or changes the store unless valid."""

import json
import uuid

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbox.models import Conversation, Message, WebhookDelivery
from inbox.providers.generic import InvalidEvent, event_parse
from tests.conftest import close_conversation, new_conversation, new_message

CONVERSATION = uuid.UUID("6a41b347-8d80-4ce9-84ba-7af66f369f6a")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)

# Values a field might be mutated into: plausible ones as well as nonsense.
field_values = (
    json_values
    | st.uuids().map(str)
    | st.sampled_from(["SENT", "RECEIVED", "sent", "", " ", "\x00", "NEW_MESSAGE"])
    | st.datetimes().map(lambda d: d.isoformat())
    | st.just(str(CONVERSATION))
)


@st.composite
def mutated_events(draw) -> bytes:
    event = draw(
        st.sampled_from(
            [
                new_conversation(CONVERSATION, ts=0),
                new_message(CONVERSATION, ts=5),
                close_conversation(CONVERSATION, ts=50),
            ]
        )
    )
    event = json.loads(json.dumps(event))
    target = event if draw(st.booleans()) else event["data"]
    key = draw(st.sampled_from([*target.keys(), "extra"]))
    action = draw(st.sampled_from(["replace", "delete"]))
    if action == "delete":
        target.pop(key, None)
    else:
        target[key] = draw(field_values)
    return json.dumps(event).encode()


def snapshot() -> tuple:
    return (
        sorted(Conversation.objects.values_list("id", "status", "closed_at", "message_count")),
        sorted(Message.objects.values_list("id", "content", "timestamp")),
    )


def is_valid(body: bytes) -> bool:
    try:
        event_parse(body)
    except InvalidEvent:
        return False
    return True


bodies = (
    st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()) | mutated_events()
)


@pytest.mark.django_db
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
def test_no_body_yields_a_5xx_or_changes_state_unless_valid(body):
    client = Client()
    client.post(
        "/webhook/",
        json.dumps(new_conversation(CONVERSATION, ts=0)),
        content_type="application/json",
    )
    before = snapshot()
    deliveries = WebhookDelivery.objects.count()

    response = client.post("/webhook/", body, content_type="application/json")

    assert response.status_code < 500
    assert response.json()["detail"]
    if not is_valid(body):
        assert response.status_code == 400
        assert snapshot() == before
    # Every delivery, accepted or not, is in the log.
    assert WebhookDelivery.objects.count() == deliveries + 1
