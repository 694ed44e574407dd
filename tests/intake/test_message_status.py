"""The webhook's reply rows (README, "Replies"): the provider's echo of our replies and its
MESSAGE_STATUS events, which only ever move a message forward."""

import json
import uuid

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbox import services
from inbox.models import Conversation, Delivery, HeldEvent, Message, WebhookDelivery
from tests.conftest import at, new_conversation, new_message

pytestmark = pytest.mark.django_db


def status_event(message_id, status, ts=50, error=None) -> dict:
    data = {"id": str(message_id), "status": status}
    if error is not None:
        data["error"] = error
    return {"type": "MESSAGE_STATUS", "timestamp": at(ts), "data": data}


@pytest.fixture
def conversation_id(post_event) -> uuid.UUID:
    ident = uuid.uuid4()
    assert post_event(new_conversation(ident)).status_code == 201
    return ident


@pytest.fixture
def reply(settings, conversation_id, agent) -> Message:
    settings.PROVIDER_URL = "http://127.0.0.1:9/"
    return services.message_reply(conversation_id=conversation_id, content="Olá!", agent=agent)


def stored(message_id) -> tuple[str | None, str | None]:
    message = Message.objects.get(pk=message_id)
    return message.delivery, message.error


def test_the_providers_echo_of_a_reply_makes_it_sent_and_nothing_else(post_event, reply):
    echo = new_message(
        reply.conversation_id, ts=99, message_id=reply.id, direction="SENT", content="Olá!"
    )
    response = post_event(echo)
    assert (response.status_code, response.json()["result"]) == (200, "updated")
    message = Message.objects.get(pk=reply.id)
    assert (message.delivery, message.timestamp, message.content) == (
        Delivery.SENT,
        reply.timestamp,
        "Olá!",
    )
    assert Message.objects.count() == 1
    # Again, and after a status: 200, nothing changes (never back to SENT).
    assert post_event(echo).status_code == 200
    assert post_event(status_event(reply.id, "READ")).status_code == 200
    assert post_event(echo).status_code == 200
    assert stored(reply.id) == (Delivery.READ, None)


def test_an_echo_with_other_content_is_a_conflict(post_event, reply):
    echo = new_message(
        reply.conversation_id, message_id=reply.id, direction="SENT", content="Outra coisa"
    )
    assert post_event(echo).status_code == 409
    assert stored(reply.id) == (Delivery.PENDING, None)


@pytest.mark.parametrize(
    ("history", "final"),
    [
        (["SENT"], Delivery.SENT),
        (["DELIVERED"], Delivery.DELIVERED),
        (["DELIVERED", "READ"], Delivery.READ),
        (["READ", "DELIVERED"], Delivery.READ),
        (["SENT", "FAILED"], Delivery.FAILED),
        (["DELIVERED", "FAILED"], Delivery.DELIVERED),
        (["FAILED", "DELIVERED"], Delivery.DELIVERED),
    ],
)
def test_a_status_moves_a_reply_forward_only(post_event, reply, history, final):
    for status in history:
        assert post_event(status_event(reply.id, status, error="no WhatsApp")).status_code == 200
    assert stored(reply.id) == (final, "no WhatsApp" if final == Delivery.FAILED else None)


def test_a_status_that_moves_nothing_is_200_and_changes_nothing(post_event, reply):
    assert post_event(status_event(reply.id, "READ")).json()["result"] == "updated"
    for status in ("READ", "DELIVERED", "SENT", "FAILED"):
        response = post_event(status_event(reply.id, status))
        assert (response.status_code, response.json()["result"]) == (200, "duplicate")
    assert stored(reply.id) == (Delivery.READ, None)


def test_a_providers_own_sent_message_counts_as_sent(post_event, conversation_id):
    own = new_message(conversation_id, direction="SENT", content="Promoção!")
    post_event(own)
    message_id = own["data"]["id"]
    assert post_event(status_event(message_id, "SENT")).json()["result"] == "duplicate"
    assert post_event(status_event(message_id, "DELIVERED")).status_code == 200
    assert stored(message_id) == (Delivery.DELIVERED, None)


def test_a_status_for_a_received_message_is_a_conflict(post_event, conversation_id):
    received = new_message(conversation_id)
    post_event(received)
    response = post_event(status_event(received["data"]["id"], "READ"))
    assert response.status_code == 409
    assert stored(received["data"]["id"]) == (None, None)


def test_a_status_for_an_unknown_message_is_held_until_it_arrives(post_event, conversation_id):
    message_id = uuid.uuid4()
    for _ in range(2):
        assert post_event(status_event(message_id, "DELIVERED")).status_code == 202
    assert post_event(status_event(message_id, "READ", ts=60)).status_code == 202
    assert HeldEvent.objects.filter(message_id=message_id, applied_at__isnull=True).count() == 2
    own = new_message(conversation_id, message_id=message_id, direction="SENT", content="Oi")
    assert post_event(own).status_code == 201
    assert stored(message_id) == (Delivery.READ, None)
    assert not HeldEvent.objects.filter(applied_at__isnull=True).exists()


@pytest.mark.parametrize(
    "data",
    [
        {"status": "LOST"},
        {"status": "READ", "id": "not-a-uuid"},
        {"status": "READ", "error": 5},
        {},
    ],
)
def test_a_malformed_status_is_refused(post_event, data):
    event = {"type": "MESSAGE_STATUS", "timestamp": at(1), "data": {"id": str(uuid.uuid4())}}
    event["data"].update(data)
    assert post_event(event).status_code == 400


def test_a_failed_status_error_is_cut_to_500_characters(post_event, reply):
    post_event(status_event(reply.id, "FAILED", error="x" * 2000))
    assert stored(reply.id) == (Delivery.FAILED, "x" * 500)


RANK = {"SENT": 1, "FAILED": 2, "DELIVERED": 3, "READ": 4}


def expected(history: list[str]) -> str:
    """The highest status told, with FAILED's rule: never after DELIVERED or READ (which
    outrank it anyway). Order-independent by construction."""
    return max(history, key=RANK.__getitem__, default="PENDING")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    history=st.lists(st.sampled_from(list(RANK)), min_size=1, max_size=6),
    data=st.data(),
    held=st.booleans(),
)
def test_shuffled_duplicated_status_histories_end_in_the_highest(history, data, held):
    """Statuses for a message, shuffled and repeated, before (held) or after it arrives."""
    client = Client()

    def post(event: dict) -> int:
        return client.post(
            "/webhook/", json.dumps(event), content_type="application/json"
        ).status_code

    conversation_id, message_id = uuid.uuid4(), uuid.uuid4()
    post(new_conversation(conversation_id))
    message = new_message(conversation_id, message_id=message_id, direction="SENT", content="Oi")
    if not held:
        assert post(message) == 201
    duplicates = data.draw(st.lists(st.sampled_from(history), max_size=4))
    for status in data.draw(st.permutations(history + duplicates)):
        # The same status is the same event (its timestamp too): a repeat, not a new fact.
        assert post(status_event(message_id, status, ts=10 + RANK[status])) in {200, 202}
    if held:
        assert post(message) == 201
    final = expected(history)
    assert Message.objects.get(pk=message_id).delivery_state == final
    for model in (Message, Conversation, HeldEvent, WebhookDelivery):
        model.objects.all().delete()


def test_a_held_status_told_again_later_is_held_once(post_event, conversation_id):
    message_id = uuid.uuid4()
    assert post_event(status_event(message_id, "READ", ts=10)).status_code == 202
    assert post_event(status_event(message_id, "READ", ts=20)).status_code == 202
    assert post_event(status_event(message_id, "READ", ts=20, error="x")).status_code == 409
    assert HeldEvent.objects.filter(message_id=message_id).count() == 1


def test_a_nul_in_a_failed_reason_is_dropped_not_a_crash(post_event, reply):
    assert post_event(status_event(reply.id, "FAILED", error="bad\x00number")).status_code == 200
    assert stored(reply.id) == (Delivery.FAILED, "badnumber")
