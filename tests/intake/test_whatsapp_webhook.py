"""The WhatsApp webhook end to end (README, "Connect WhatsApp"): Meta's documented payloads
posted, signed, to /webhook/whatsapp/, and what an agent then sees stored."""

import pytest
from django.test import Client

from inbox.models import Conversation, Message, WebhookDelivery
from inbox.services.whatsapp import whatsapp_conversation_id, whatsapp_message_id
from tests import whatsapp_payloads as wa

URL = "/webhook/whatsapp/"


@pytest.fixture(autouse=True)
def channel(settings):
    settings.WHATSAPP_APP_SECRET = wa.APP_SECRET
    settings.WHATSAPP_VERIFY_TOKEN = "verify-me"


def post(client: Client, body: dict | bytes, *, secret: str | None = wa.APP_SECRET, signature=None):
    raw = body if isinstance(body, bytes) else wa.dumps(body)
    headers = {}
    if signature is not None:
        headers["HTTP_X_HUB_SIGNATURE_256"] = signature
    elif secret:
        headers["HTTP_X_HUB_SIGNATURE_256"] = wa.sign(raw, secret)
    return client.post(URL, raw, content_type="application/json", **headers)


# The verification handshake ------------------------------------------------------------


@pytest.mark.django_db
def test_the_right_verify_token_gets_the_challenge_back_as_plain_text(client):
    response = client.get(
        URL,
        {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"},
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content == b"1158201444"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "verify-me", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": "verify-me"},
        {"hub.verify_token": "verify-me", "hub.challenge": "1"},
        {},
    ],
    ids=["wrong token", "wrong mode", "no challenge", "no mode", "nothing"],
)
def test_anything_else_is_403_and_echoes_nothing(client, params):
    response = client.get(URL, params)
    assert response.status_code == 403
    assert b"1" not in response.content or b"hub" in response.content


@pytest.mark.django_db
def test_no_verify_token_configured_refuses_every_handshake(client, settings):
    settings.WHATSAPP_VERIFY_TOKEN = ""
    response = client.get(
        URL, {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}
    )
    assert response.status_code == 403


# Signatures ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "signature", ["", "sha256=" + "0" * 64, "sha1=abc"], ids=["missing", "wrong", "other scheme"]
)
def test_a_bad_signature_is_401_and_stores_nothing(client, signature):
    response = post(
        client,
        wa.text("wamid.A1"),
        signature=signature or None,
        secret=None if not signature else wa.APP_SECRET,
    )
    assert response.status_code == 401
    assert not Message.objects.exists() and not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_a_body_signed_with_another_secret_is_401(client):
    response = post(client, wa.text("wamid.A1"), secret="someone-else")
    assert response.status_code == 401
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_the_channel_is_off_without_an_app_secret(client, settings):
    settings.WHATSAPP_APP_SECRET = ""
    response = post(client, wa.text("wamid.A1"), secret="x")
    assert response.status_code == 404
    assert response.json()["error"] == "whatsapp_off"


# Messages ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_text_opens_a_conversation_for_its_customer(client):
    response = post(
        client, wa.text("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=")
    )
    assert response.status_code == 200, response.content
    assert response.json()["items"][0]["result"] == "created"
    conversation = Conversation.objects.get()
    wamid = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    assert conversation.id == whatsapp_conversation_id(wamid)
    assert (conversation.channel, conversation.wa_id, conversation.status) == (
        "whatsapp",
        "16505551234",
        "OPEN",
    )
    stored = Message.objects.get()
    assert stored.id == whatsapp_message_id(wamid)
    assert (stored.direction, stored.kind, stored.content) == (
        "RECEIVED",
        "text",
        "Does it come in another color?",
    )
    assert stored.timestamp == wa.T0
    log = WebhookDelivery.objects.get()
    assert (log.event_type, log.item_count, log.status_code) == ("whatsapp", 1, 200)
    assert "messages[0]: created" in log.detail


@pytest.mark.django_db
def test_a_redelivery_changes_nothing_and_is_logged(client):
    body = wa.text("wamid.A1")
    post(client, body)
    response = post(client, body)
    assert response.status_code == 200
    assert response.json()["items"][0]["result"] == "duplicate"
    assert Conversation.objects.count() == 1 and Message.objects.count() == 1
    assert WebhookDelivery.objects.count() == 2


@pytest.mark.django_db
def test_the_customers_next_message_joins_their_open_conversation(client):
    post(client, wa.text("wamid.A1"))
    post(client, wa.text("wamid.A2", "And in blue?", at=wa.ts(seconds=30)))
    post(client, wa.text("wamid.B1", "Oi", sender="5511987654321", name="João"))
    assert Conversation.objects.count() == 2
    sheena = Conversation.objects.get(wa_id="16505551234")
    assert sheena.message_count == 2
    assert sheena.last_message.content == "And in blue?"


@pytest.mark.django_db
def test_after_a_close_the_customer_gets_a_new_conversation(client, agent):
    from inbox import services

    post(client, wa.text("wamid.A1"))
    first = Conversation.objects.get()
    services.conversation_close_by_agent(conversation_id=first.id, agent=agent)
    post(client, wa.text("wamid.A2", "Still there?", at=wa.ts(seconds=3600)))
    second = Conversation.objects.exclude(pk=first.pk).get()
    assert second.id == whatsapp_conversation_id("wamid.A2")
    assert second.messages.get().content == "Still there?"


@pytest.mark.django_db
def test_every_entry_change_and_message_of_a_batch_is_stored(client):
    body = wa.envelope(
        wa.value(
            contacts=[wa.contact()],
            messages=[
                wa.message("wamid.M1", body="one"),
                wa.message("wamid.M2", body="two", at=wa.ts(seconds=1)),
            ],
        ),
        wa.value(
            contacts=[wa.contact("5511987654321", "João")],
            messages=[wa.message("wamid.M3", sender="5511987654321", body="três")],
        ),
        wa.value(
            contacts=[wa.contact("447700900123", "Ada")],
            messages=[wa.message("wamid.M4", sender="447700900123", body="four")],
        ),
        entries=2,
    )
    assert len(body["entry"]) == 2
    response = post(client, body)
    assert [i["result"] for i in response.json()["items"]] == ["created"] * 4
    assert sorted(Message.objects.values_list("content", flat=True)) == [
        "four",
        "one",
        "three".replace("three", "três"),
        "two",
    ]
    assert Conversation.objects.count() == 3
    log = WebhookDelivery.objects.get()
    assert log.item_count == 4
    assert "entry[1].changes[0].value.messages[0]" in log.detail


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "part", "content"),
    [
        ("image", wa.IMAGE, "Is this the model?"),
        ("audio", wa.AUDIO, ""),
        ("video", wa.VIDEO, "Unboxing"),
        ("document", wa.DOCUMENT, "Invoice"),
        ("sticker", wa.STICKER, ""),
    ],
)
def test_media_is_stored_typed_with_its_caption_and_media_id(client, kind, part, content):
    post(
        client,
        wa.envelope(
            wa.value(
                contacts=[wa.contact()], messages=[wa.message("wamid.X", kind, **{kind: part})]
            )
        ),
    )
    stored = Message.objects.get()
    assert (stored.kind, stored.content) == (kind, content)
    assert stored.attachment["media_id"] == part["id"]
    assert stored.attachment["mime_type"] == part["mime_type"]


@pytest.mark.django_db
def test_location_contacts_reaction_interactive_and_unsupported_are_kept_legibly(client):
    messages = [
        wa.message("wamid.L", "location", location=wa.LOCATION),
        wa.message("wamid.C", "contacts", contacts=wa.CONTACTS, at=wa.ts(seconds=1)),
        wa.message(
            "wamid.R",
            "reaction",
            reaction={"message_id": "wamid.L", "emoji": "👍"},
            at=wa.ts(seconds=2),
        ),
        wa.message(
            "wamid.I",
            "interactive",
            interactive={
                "type": "button_reply",
                "button_reply": {"id": "yes", "title": "Yes, please"},
            },
            at=wa.ts(seconds=3),
        ),
        wa.message("wamid.U", "unsupported", at=wa.ts(seconds=4))
        | {
            "errors": [
                {
                    "code": 131051,
                    "title": "Message type unknown",
                    "message": "Message type unknown",
                    "error_data": {"details": "Message type is currently not supported."},
                }
            ]
        },
        wa.message("wamid.N", "order", order={"catalog_id": "1"}, at=wa.ts(seconds=5)),
    ]
    response = post(client, wa.envelope(wa.value(contacts=[wa.contact()], messages=messages)))
    assert [i["result"] for i in response.json()["items"]] == ["created"] * 6
    stored = {m.provider_message_id: m for m in Message.objects.all()}
    assert stored["wamid.L"].kind == "location"
    assert (
        stored["wamid.L"].content
        == "Meta Headquarters, 1 Hacker Way, Menlo Park, CA 94025 (37.483307, -122.148981)"
    )
    assert stored["wamid.C"].content == "Barbara J. Johnson +1 (940) 555-1234"
    assert (stored["wamid.R"].kind, stored["wamid.R"].content) == ("reaction", "👍")
    assert stored["wamid.R"].attachment["message_id"] == "wamid.L"
    assert (stored["wamid.I"].kind, stored["wamid.I"].content) == ("interactive", "Yes, please")
    assert stored["wamid.U"].kind == "unsupported"
    assert "131051" in stored["wamid.U"].attachment["error"]
    # A type newer than this code is not dropped: kept as unsupported, naming its type.
    assert (stored["wamid.N"].kind, stored["wamid.N"].attachment["type"]) == (
        "unsupported",
        "order",
    )


# Malformed envelopes -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("object"), "object"),
        (lambda b: b.update(object="page"), "object"),
        (lambda b: b.pop("entry"), "entry"),
        (lambda b: b["entry"][0]["changes"][0].pop("value"), "entry[0].changes[0].value"),
        (
            lambda b: b["entry"][0]["changes"][0]["value"]["messages"][0].pop("id"),
            "entry[0].changes[0].value.messages[0].id",
        ),
        (
            lambda b: b["entry"][0]["changes"][0]["value"]["messages"][0].update(id=12),
            "entry[0].changes[0].value.messages[0].id",
        ),
        (
            lambda b: b["entry"][0]["changes"][0]["value"]["messages"][0].update(
                timestamp="yesterday"
            ),
            "entry[0].changes[0].value.messages[0].timestamp",
        ),
        (
            lambda b: b["entry"][0]["changes"][0]["value"]["messages"][0].pop("from"),
            "entry[0].changes[0].value.messages[0].from",
        ),
    ],
    ids=[
        "no object",
        "other object",
        "no entry",
        "no value",
        "no id",
        "numeric id",
        "bad timestamp",
        "no from",
    ],
)
def test_a_malformed_envelope_is_400_naming_the_field(client, mutate, field):
    body = wa.text("wamid.A1")
    mutate(body)
    response = post(client, body)
    assert response.status_code == 400
    assert field in [e["field"] for e in response.json()["errors"]], response.json()
    assert not Message.objects.exists()
    assert WebhookDelivery.objects.get().status_code == 400


@pytest.mark.django_db
def test_malformed_json_is_400(client):
    response = post(client, b'{"object": ')
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "body"


@pytest.mark.django_db
def test_other_fields_are_acknowledged_and_ignored(client):
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [{"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}],
            }
        ],
    }
    response = post(client, body)
    assert response.status_code == 200
    assert response.json()["items"][0]["result"] == "ignored"


@pytest.mark.django_db
def test_a_nul_in_a_customers_text_is_dropped_not_the_message(client):
    response = post(client, wa.text("wamid.Z", "a\u0000b"))
    assert response.status_code == 200, response.content
    assert Message.objects.get().content == "ab"


@pytest.mark.django_db
def test_a_lone_surrogate_is_malformed_json_not_a_crash(client):
    raw = wa.dumps(wa.text("wamid.Z", "a")).replace(b'"body": "a"', b'"body": "\\ud800"')
    assert b"\\ud800" in raw
    response = post(client, raw)
    assert response.status_code == 400
    assert not Message.objects.exists()
