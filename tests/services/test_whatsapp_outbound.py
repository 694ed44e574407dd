"""WhatsApp replies against a stub Graph API on 127.0.0.1 (README, "Connect WhatsApp"):
the request Meta gets, the wamid kept, statuses[] and errors[] back through the webhook,
the 24-hour window, templates."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from inbox import services
from inbox.models import Conversation, Delivery, HeldEvent, Message, WhatsAppTemplate
from inbox.services import ReplyRefused
from tests import whatsapp_payloads as wa
from tests.services.test_outbox import deliver
from tests.stub_graph import GraphReply, StubGraph

URL = "/webhook/whatsapp/"


@pytest.fixture
def graph(settings):
    settings.WHATSAPP_APP_SECRET = wa.APP_SECRET
    settings.WHATSAPP_PHONE_NUMBER_ID = "106540352242922"
    settings.WHATSAPP_API_VERSION = "v23.0"
    settings.PROVIDER_TIMEOUT = 0.5
    settings.PROVIDER_RETRY_FOR = 2.0
    started: list[StubGraph] = []

    def start(*replies: GraphReply, **kwargs) -> StubGraph:
        stub = StubGraph(list(replies) or [GraphReply()], **kwargs).__enter__()
        settings.WHATSAPP_GRAPH_URL = stub.url
        settings.WHATSAPP_ACCESS_TOKEN = stub.token
        started.append(stub)
        return stub

    yield start
    for stub in started:
        stub.__exit__()


def webhook(body: dict):
    raw = wa.dumps(body)
    response = Client().post(
        URL, raw, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=wa.sign(raw)
    )
    assert response.status_code == 200, response.content
    return response.json()["items"]


def customer_wrote(ago: timedelta = timedelta(minutes=5), wamid: str = "wamid.IN1") -> Conversation:
    webhook(wa.text(wamid, "Olá", at=wa.ts(timezone.now() - ago)))
    return Conversation.objects.get(wa_id="16505551234", status="OPEN")


@pytest.mark.django_db(transaction=True)
def test_a_reply_goes_to_graph_messages_as_text_with_the_bearer_token(graph, agent):
    stub = graph()
    conversation = customer_wrote()
    reply = services.message_reply(
        conversation_id=conversation.id, content="Sim, em azul também!", agent=agent
    )
    assert deliver(reply).delivery == Delivery.SENT
    (request,) = stub.sent
    assert request.path == "/v23.0/106540352242922/messages"
    assert request.headers["authorization"] == f"Bearer {stub.token}"
    assert request.headers["content-type"] == "application/json"
    assert request.body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505551234",
        "type": "text",
        "text": {"preview_url": False, "body": "Sim, em azul também!"},
    }
    reply.refresh_from_db()
    assert (reply.channel, reply.provider_message_id) == ("whatsapp", "wamid.STUB000001")


@pytest.mark.django_db(transaction=True)
def test_statuses_move_the_reply_forward_only_and_a_read_needs_no_delivered(graph, agent):
    graph()
    conversation = customer_wrote()
    reply = deliver(
        services.message_reply(conversation_id=conversation.id, content="Oi", agent=agent)
    )
    wamid = reply.provider_message_id
    assert [i["result"] for i in webhook(wa.statuses(wa.status(wamid, "read")))] == ["updated"]
    reply.refresh_from_db()
    assert reply.delivery == Delivery.READ
    # Late and repeated statuses change nothing.
    items = webhook(
        wa.statuses(
            wa.status(wamid, "delivered"), wa.status(wamid, "sent"), wa.status(wamid, "read")
        )
    )
    assert [i["result"] for i in items] == ["duplicate"] * 3
    reply.refresh_from_db()
    assert reply.delivery == Delivery.READ


@pytest.mark.django_db(transaction=True)
def test_a_failed_status_carries_the_readable_reason(graph, agent):
    graph()
    conversation = customer_wrote()
    reply = deliver(
        services.message_reply(conversation_id=conversation.id, content="Oi", agent=agent)
    )
    webhook(wa.statuses(wa.status(reply.provider_message_id, "failed", errors=[wa.RE_ENGAGEMENT])))
    reply.refresh_from_db()
    assert reply.delivery == Delivery.FAILED
    assert reply.error.startswith("WhatsApp error 131047: Re-engagement message")
    from inbox.providers.graph import delivery_reason

    assert delivery_reason(reply.error).startswith("More than 24 hours have passed")


@pytest.mark.django_db(transaction=True)
def test_a_status_before_the_worker_stored_the_wamid_is_held_then_applied(graph, agent):
    graph()
    conversation = customer_wrote()
    # WhatsApp's webhook can beat the worker's commit: the wamid the stub will give first.
    assert [
        i["result"] for i in webhook(wa.statuses(wa.status("wamid.STUB000001", "delivered")))
    ] == ["held"]
    assert HeldEvent.objects.filter(applied_at__isnull=True).count() == 1
    reply = deliver(
        services.message_reply(conversation_id=conversation.id, content="Oi", agent=agent)
    )
    assert reply.delivery == Delivery.DELIVERED
    assert not HeldEvent.objects.filter(applied_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_graph_errors_fail_with_the_reason_or_retry_when_throttled(graph, agent):
    refusal = {
        "error": {
            "message": "(#131026) Message Undeliverable.",
            "type": "OAuthException",
            "code": 131026,
            "error_data": {"messaging_product": "whatsapp", "details": "Message Undeliverable."},
            "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam",
        }
    }
    throttled = {
        "error": {
            "message": "(#130429) Rate limit hit",
            "type": "OAuthException",
            "code": 130429,
            "fbtrace_id": "x",
        }
    }
    stub = graph(GraphReply(400, throttled), GraphReply(400, refusal))
    conversation = customer_wrote()
    reply = deliver(
        services.message_reply(conversation_id=conversation.id, content="Oi", agent=agent)
    )
    assert len(stub.sent) == 2  # the throttled one was tried again
    assert reply.delivery == Delivery.FAILED
    assert (
        reply.error
        == "WhatsApp error 131026: (#131026) Message Undeliverable. (Message Undeliverable.)"
    )
    attempts = list(reply.attempts.order_by("id").values_list("outcome", flat=True))
    assert attempts == ["retry", "failed"]


@pytest.mark.django_db(transaction=True)
def test_after_24_hours_free_text_is_refused_with_the_reason(graph, agent):
    stub = graph()
    conversation = customer_wrote(ago=timedelta(hours=24, seconds=1))
    with pytest.raises(ReplyRefused) as refused:
        services.message_reply(conversation_id=conversation.id, content="Oi?", agent=agent)
    assert refused.value.status == 409
    assert "24-hour window has closed" in refused.value.reason
    assert Message.objects.filter(direction="SENT").count() == 0
    assert stub.sent == []


@pytest.mark.django_db(transaction=True)
def test_a_template_goes_out_with_its_name_language_and_parameters(graph, agent):
    stub = graph()
    conversation = customer_wrote(ago=timedelta(days=3))
    template = WhatsAppTemplate.objects.create(
        name="order_update",
        language="pt_BR",
        body="Olá {{1}}, seu pedido {{2}} saiu.",
        parameters="Nome\nPedido",
    )
    reply = services.message_template_send(
        conversation_id=conversation.id,
        template_id=template.pk,
        parameters=["Sheena", "4411"],
        agent=agent,
    )
    assert (reply.kind, reply.content) == ("template", "Olá Sheena, seu pedido 4411 saiu.")
    assert deliver(reply).delivery == Delivery.SENT
    assert stub.sent[0].body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505551234",
        "type": "template",
        "template": {
            "name": "order_update",
            "language": {"code": "pt_BR"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Sheena"},
                        {"type": "text", "text": "4411"},
                    ],
                }
            ],
        },
    }


@pytest.mark.django_db(transaction=True)
def test_a_template_missing_a_parameter_is_refused(graph, agent):
    graph()
    conversation = customer_wrote(ago=timedelta(days=3))
    template = WhatsAppTemplate.objects.create(
        name="order_update", body="{{1}} {{2}}", parameters="Nome\nPedido"
    )
    with pytest.raises(ReplyRefused) as refused:
        services.message_template_send(
            conversation_id=conversation.id,
            template_id=template.pk,
            parameters=["Sheena", " "],
            agent=agent,
        )
    assert refused.value.status == 400
    assert "Nome, Pedido" in refused.value.reason


@pytest.mark.django_db(transaction=True)
def test_replies_are_off_when_whatsapp_is_not_configured(settings, agent):
    settings.WHATSAPP_APP_SECRET = wa.APP_SECRET
    settings.WHATSAPP_ACCESS_TOKEN = ""
    conversation = customer_wrote()
    with pytest.raises(ReplyRefused) as refused:
        services.message_reply(conversation_id=conversation.id, content="Oi", agent=agent)
    assert refused.value.status == 409
    assert "WHATSAPP_ACCESS_TOKEN" in refused.value.reason
