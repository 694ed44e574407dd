"""The simulator plays conversations the webhook accepts, in Portuguese and English."""

import json
import random
import threading
import urllib.error
import urllib.request
import uuid

import pytest
from django.core.management import CommandError, call_command

from devtools.simulator import DemoProvider, conversation_events
from inbox.models import Conversation, Message, WebhookDelivery
from inbox.providers.generic import NewConversation, NewMessage, event_parse
from tests.conftest import free_port, sign

SECRET = "simulator-test-secret"


def test_a_scripted_conversation_is_valid_and_in_order():
    from datetime import UTC, datetime

    rng = random.Random(3)
    events = conversation_events(rng, start=datetime(2025, 2, 21, tzinfo=UTC))
    parsed = [event_parse(json.dumps(e).encode()) for e in events]
    assert isinstance(parsed[0], NewConversation)
    assert parsed[-1].type == "CLOSE_CONVERSATION"
    messages = [p for p in parsed if isinstance(p, NewMessage)]
    assert len(messages) >= 4
    # The customer starts, the business has the last word before the close.
    assert messages[0].data.direction == "RECEIVED"
    assert messages[-1].data.direction == "SENT"
    assert {m.data.conversation_id for m in messages} == {parsed[0].data.id}
    stamps = [p.timestamp for p in parsed]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_both_languages_are_played():
    from datetime import UTC, datetime

    rng = random.Random(5)
    texts = " ".join(
        e["data"].get("content", "")
        for _ in range(30)
        for e in conversation_events(rng, start=datetime.now(UTC))
    )
    assert any(word in texts for word in ("Olá", "Obrigad", "pedido", "Oi"))
    assert any(word in texts for word in ("Hi", "Thank", "order", "Hello"))


@pytest.mark.django_db(transaction=True)
def test_simulate_against_a_live_server_stores_everything(live_server, settings, capsys):
    settings.WEBHOOK_SECRET = SECRET
    call_command(
        "simulate",
        url=live_server.url,
        conversations=6,
        rate=0,
        concurrency=3,
        close_ratio=0.5,
        seed=11,
    )
    assert "played 6 conversations" in capsys.readouterr().out
    assert Conversation.objects.count() == 6
    # Every delivery was accepted: the command fails on any refusal, and the log agrees.
    assert not WebhookDelivery.objects.filter(status_code__gte=300).exists()
    assert (
        WebhookDelivery.objects.count()
        == Conversation.objects.count()
        + Message.objects.count()
        + (Conversation.objects.filter(status="CLOSED").count())
    )
    for conversation in Conversation.objects.all():
        assert conversation.message_count == conversation.messages.count() >= 4
        first = conversation.messages.order_by("timestamp").first()
        assert first.direction == "RECEIVED"


@pytest.mark.django_db(transaction=True)
def test_simulate_with_the_wrong_secret_is_refused(live_server, settings):
    settings.WEBHOOK_SECRET = SECRET
    with pytest.raises(CommandError, match="refused"):
        call_command("simulate", url=live_server.url, conversations=1, rate=0, secret="wrong")
    assert not Conversation.objects.exists()


def test_simulate_without_a_server_says_so():
    with pytest.raises(CommandError, match=r"did not answer|no server"):
        call_command("simulate", url="http://127.0.0.1:9", conversations=1, rate=0)


# --- The demo's provider (README "See it live: `make demo`") ---------------------------


def _send_message(url: str, body: bytes, signature: str | None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if signature:
        headers["X-Hub-Signature-256"] = signature
    request = urllib.request.Request(url, body, headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_demo_provider_takes_a_signed_reply_then_reports_it_read_and_answers():
    reported: list[dict] = []
    done = threading.Event()

    def deliver(event: dict) -> int:
        reported.append(event)
        if len(reported) == 3:
            done.set()
        return 200

    url = f"http://127.0.0.1:{free_port()}/messages"
    provider = DemoProvider(
        url=url,
        secret="demo-secret",
        deliver=deliver,
        rng=random.Random(1),
        delivered_after=0.05,
        read_after=0.1,
        answer_after=0.15,
    )
    provider.start()
    try:
        reply_id, conversation_id = str(uuid.uuid4()), str(uuid.uuid4())
        body = json.dumps(
            {
                "type": "SEND_MESSAGE",
                "timestamp": "2026-12-03T10:00:00+00:00",
                "data": {"id": reply_id, "conversation_id": conversation_id, "content": "Olá!"},
            }
        ).encode()
        assert _send_message(url, body, "sha256=" + "0" * 64)[0] == 401
        assert _send_message(url, body, None)[0] == 401
        assert _send_message(url, body, sign(body, "demo-secret"))[0] == 200
        # The same id again: the provider already has it.
        assert _send_message(url, body, sign(body, "demo-secret"))[0] == 409
        assert done.wait(10), reported
    finally:
        provider.stop()
    delivered, read, answer = reported
    assert delivered["type"] == read["type"] == "MESSAGE_STATUS"
    assert (delivered["data"], read["data"]) == (
        {"id": reply_id, "status": "DELIVERED"},
        {"id": reply_id, "status": "READ"},
    )
    assert answer["type"] == "NEW_MESSAGE"
    assert answer["data"]["direction"] == "RECEIVED"
    assert answer["data"]["conversation_id"] == conversation_id
    assert answer["data"]["content"].strip()
