"""What an agent sees and does on a WhatsApp conversation (README, "Connect WhatsApp"):
typed messages, the Download link streaming through the stub Graph API, the 24-hour window
in the composer, a template sent from it."""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client
from django.utils import timezone

from inbox.models import Conversation, Message, WhatsAppTemplate
from tests import factories
from tests import whatsapp_payloads as wa
from tests.markup import parse
from tests.stub_graph import StubGraph

URL = "/webhook/whatsapp/"


@pytest.fixture
def stub(settings):
    settings.WHATSAPP_APP_SECRET = wa.APP_SECRET
    settings.WHATSAPP_PHONE_NUMBER_ID = "106540352242922"
    settings.PROVIDER_TIMEOUT = 2
    with StubGraph() as graph:
        settings.WHATSAPP_GRAPH_URL = graph.url
        settings.WHATSAPP_ACCESS_TOKEN = graph.token
        yield graph


def webhook(body: dict) -> None:
    raw = wa.dumps(body)
    response = Client().post(
        URL, raw, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=wa.sign(raw)
    )
    assert response.status_code == 200, response.content


def download(message: Message, agent) -> tuple[object, bytes]:
    """GET the Download link through Django's ASGI handler (the view is async and streams),
    the response and every byte of its body."""

    async def get():
        client = AsyncClient()
        await client.aforce_login(agent)
        response = await client.get(
            f"/conversations/{message.conversation_id}/messages/{message.id}/media/"
        )
        if response.streaming:
            return response, b"".join([chunk async for chunk in response.streaming_content])
        return response, response.content

    return async_to_sync(get)()


def image_received(at: str | None = None) -> Message:
    webhook(
        wa.envelope(
            wa.value(
                contacts=[wa.contact()],
                messages=[wa.message("wamid.IMG", "image", image=wa.IMAGE, at=at)],
            )
        )
    )
    return Message.objects.get(provider_message_id="wamid.IMG")


@pytest.mark.django_db
def test_an_image_shows_as_a_labelled_placeholder_with_a_download_link(stub, agent_client):
    message = image_received()
    page = parse(agent_client.get(f"/conversations/{message.conversation_id}/").content)
    bubble = page.find(id=f"message-{message.id}")
    kind = bubble.find(attrs={"data-kind": "image"})
    assert "Image" in kind.find(attrs={"data-kind-label": True}).get_text()
    assert "Is this the model?" in kind.get_text()
    link = kind.find("a", attrs={"data-media-download": True})
    assert link["href"] == f"/conversations/{message.conversation_id}/messages/{message.id}/media/"
    assert "Download" in link.get_text()


@pytest.mark.django_db
def test_the_list_row_previews_a_captionless_voice_note_by_its_kind(stub, agent_client):
    webhook(
        wa.envelope(
            wa.value(
                contacts=[wa.contact()], messages=[wa.message("wamid.V", "audio", audio=wa.AUDIO)]
            )
        )
    )
    conversation = Conversation.objects.get()
    page = parse(agent_client.get("/").content)
    row = page.find(id=f"conversation-{conversation.id}")
    assert "Voice message" in row.get_text()


@pytest.mark.django_db(transaction=True)
def test_download_streams_the_file_through_graph_with_the_token(stub):
    stub.media[wa.IMAGE["id"]] = ("image/jpeg", b"\xff\xd8jpeg-bytes" * 1000)
    message = image_received()
    response, body = download(message, factories.agent())
    assert response.status_code == 200
    assert body == b"\xff\xd8jpeg-bytes" * 1000
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"].startswith("attachment;")
    assert [path for path, _ in stub.media_requests] == [
        f"/v23.0/{wa.IMAGE['id']}",
        f"/files/{wa.IMAGE['id']}",
    ]
    assert all(h["authorization"] == f"Bearer {stub.token}" for _, h in stub.media_requests)


@pytest.mark.django_db(transaction=True)
def test_download_is_retried_when_graph_fails_briefly(stub):
    stub.media[wa.IMAGE["id"]] = ("image/jpeg", b"ok")
    stub.media_failures = 2
    message = image_received()
    response, body = download(message, factories.agent())
    assert response.status_code == 200
    assert body == b"ok"
    assert len(stub.media_requests) == 4  # two failures, the lookup, the file


@pytest.mark.django_db(transaction=True)
def test_download_refuses_a_file_over_the_size_limit(stub, settings):
    settings.WHATSAPP_MEDIA_MAX_BYTES = 1000
    stub.media[wa.IMAGE["id"]] = ("image/jpeg", b"x" * 1001)
    message = image_received()
    response, body = download(message, factories.agent())
    assert response.status_code == 413
    assert "1000 bytes" in body.decode()
    # Refused on Graph's declared size: the file itself was never fetched.
    assert [path for path, _ in stub.media_requests] == [f"/v23.0/{wa.IMAGE['id']}"]


@pytest.mark.django_db(transaction=True)
def test_download_stops_at_the_limit_when_the_size_was_not_declared(stub, settings):
    settings.WHATSAPP_MEDIA_MAX_BYTES = 100_000
    stub.media[wa.IMAGE["id"]] = ("image/jpeg", b"x" * 200_000)
    stub.declared_sizes[wa.IMAGE["id"]] = 0
    stub.undeclared.add(wa.IMAGE["id"])
    message = image_received()
    response, body = download(message, factories.agent())
    # Nothing announced the size, so the stream is cut at the limit: never a byte past it.
    assert response.status_code == 200
    assert 0 < len(body) <= 100_000


@pytest.mark.django_db
def test_download_needs_a_login_and_a_media_message(stub, client, agent_client):
    message = image_received()
    url = f"/conversations/{message.conversation_id}/messages/{message.id}/media/"
    assert client.get(url).status_code == 302
    text = factories.message(
        message.conversation_id, content="plain", at=message.timestamp + timedelta(seconds=1)
    )
    assert (
        agent_client.get(
            f"/conversations/{message.conversation_id}/messages/{text.id}/media/"
        ).status_code
        == 404
    )
    assert (
        agent_client.get(
            f"/conversations/{message.conversation_id}/messages/nope/media/"
        ).status_code
        == 404
    )


@pytest.mark.django_db
def test_the_composer_shows_the_time_left_in_the_window(stub, agent_client):
    webhook(wa.text("wamid.T", at=wa.ts(timezone.now() - timedelta(hours=1))))
    conversation = Conversation.objects.get()
    page = parse(agent_client.get(f"/conversations/{conversation.id}/").content)
    window = page.find(id="whatsapp-window")
    assert window["data-window"] == "open"
    assert "22\xa0hours" in window.get_text() or "22 hours" in window.get_text()
    assert not page.find(id="reply-content").has_attr("disabled")


@pytest.mark.django_db
def test_after_the_window_the_composer_offers_templates_and_sends_one(stub, agent_client):
    webhook(wa.text("wamid.T", at=wa.ts(timezone.now() - timedelta(days=2))))
    conversation = Conversation.objects.get()
    template = WhatsAppTemplate.objects.create(
        name="follow_up", language="pt_BR", body="Oi {{1}}!", parameters="Nome"
    )
    page = parse(agent_client.get(f"/conversations/{conversation.id}/").content)
    assert page.find(id="whatsapp-window")["data-window"] == "closed"
    assert page.find(id="reply-content").has_attr("disabled")
    assert "24-hour window has closed" in page.find(id="reply-help").get_text()
    button = page.find("button", attrs={"name": "template", "value": str(template.pk)})
    assert button["formaction"] == f"/conversations/{conversation.id}/templates/"
    # Free text posted anyway is refused with the reason, nothing stored.
    refused = agent_client.post(f"/conversations/{conversation.id}/messages/", {"content": "Oi?"})
    assert refused.status_code == 409
    assert "24-hour window has closed" in parse(refused.content).find(id="reply-error").get_text()
    sent = agent_client.post(
        button["formaction"], {"template": template.pk, f"t{template.pk}_p1": "Sheena"}
    )
    assert sent.status_code == 302
    reply = Message.objects.get(direction="SENT")
    assert (reply.kind, reply.content, reply.delivery) == ("template", "Oi Sheena!", "PENDING")
