"""The simulator plays conversations the webhook accepts, in Portuguese and English."""

import json
import random

import pytest
from django.core.management import CommandError, call_command

from devtools.simulator import conversation_events
from inbox.models import Conversation, Message, WebhookDelivery
from inbox.providers.generic import NewConversation, NewMessage, event_parse

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
