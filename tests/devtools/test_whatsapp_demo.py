"""`make demo DEMO_CHANNEL=whatsapp` end to end (README, "Connect WhatsApp"): the simulator's
customers through the real webhook, an agent's reply through the worker to the stand-in
Graph API, whose statuses and the customer's answer come back through the webhook."""

import random
import time

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from devtools.whatsapp import DemoGraph
from inbox import services
from inbox.models import Conversation, Delivery, Message, WebhookDelivery
from tests import whatsapp_payloads as wa
from tests.conftest import free_port
from tests.intake.test_whatsapp_webhook import post
from tests.services.test_outbox import deliver


@pytest.fixture
def channel(settings):
    settings.WHATSAPP_APP_SECRET = wa.APP_SECRET
    settings.WHATSAPP_ACCESS_TOKEN = "demo-token"
    settings.WHATSAPP_PHONE_NUMBER_ID = "106540352242922"
    settings.WHATSAPP_GRAPH_URL = f"http://127.0.0.1:{free_port()}"


@pytest.mark.django_db(transaction=True)
def test_simulated_customers_arrive_with_every_message(live_server, channel, settings, capsys):
    settings.WHATSAPP_GRAPH_URL = "https://graph.example.invalid"  # not local: not served
    call_command(
        "simulate", url=live_server.url, conversations=4, rate=0, seed=3, channel="whatsapp"
    )
    assert "played 4 WhatsApp customers" in capsys.readouterr().out
    assert Conversation.objects.filter(channel="whatsapp").count() == 4
    assert not WebhookDelivery.objects.exclude(status_code=200).exists()
    # Every message of every envelope was stored, none twice.
    items = sum(d.item_count for d in WebhookDelivery.objects.all())
    assert Message.objects.count() == items
    for conversation in Conversation.objects.all():
        assert conversation.wa_id and conversation.message_count == conversation.messages.count()


@pytest.mark.django_db(transaction=True)
def test_simulate_whatsapp_needs_the_app_secret(live_server, settings):
    settings.WHATSAPP_APP_SECRET = ""
    with pytest.raises(CommandError, match="WHATSAPP_APP_SECRET"):
        call_command("simulate", url=live_server.url, conversations=1, rate=0, channel="whatsapp")


@pytest.mark.django_db(transaction=True)
def test_a_reply_goes_through_the_stand_in_graph_and_its_ticks_come_back(
    live_server, channel, settings, agent
):
    graph = DemoGraph(
        url=settings.WHATSAPP_GRAPH_URL,
        token="demo-token",
        deliver=wa.poster(live_server.url),
        rng=random.Random(1),
        delays=(0.05, 0.1, 0.2, 0.3),
    )
    graph.start()
    try:
        assert (
            post(
                Client(),
                wa.text(
                    "wamid.CUSTOMER1",
                    "Olá, vocês entregam amanhã?",
                    at=wa.ts(timezone.now()),
                ),
            ).status_code
            == 200
        )
        conversation = Conversation.objects.get()
        reply = deliver(
            services.message_reply(
                conversation_id=conversation.id, content="Sim, entregamos!", agent=agent
            )
        )
        assert reply.delivery == Delivery.SENT
        assert graph.sent[0]["to"] == "16505551234"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            reply.refresh_from_db()
            if (
                reply.delivery == Delivery.READ
                and conversation.messages.filter(direction="RECEIVED").count() == 2
            ):
                break
            time.sleep(0.05)
        assert reply.delivery == Delivery.READ
        assert conversation.messages.filter(direction="RECEIVED").count() == 2
    finally:
        graph.stop()
