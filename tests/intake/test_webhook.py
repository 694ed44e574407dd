"""Every row of the webhook table (README, "The webhook: `POST /webhook/`")."""

import json
import uuid

import pytest

from inbox.models import Conversation, Message, WebhookDelivery
from tests.conftest import T0, at, close_conversation, new_conversation, new_message

pytestmark = pytest.mark.django_db


def stored_state() -> tuple:
    """Everything an agent could see, to assert that a refused delivery changed nothing."""
    return (
        sorted(Conversation.objects.values_list("id", "status", "closed_at", "message_count")),
        sorted(Message.objects.values_list("id", "content", "timestamp")),
    )


@pytest.fixture
def conversation_id(post_event) -> uuid.UUID:
    ident = uuid.uuid4()
    assert post_event(new_conversation(ident)).status_code == 201
    return ident


def test_new_conversation_is_created_open_at_the_event_time(post_event):
    ident = uuid.uuid4()
    response = post_event(new_conversation(ident, ts=0))
    assert response.status_code == 201
    assert response.json()["result"] == "created"
    conversation = Conversation.objects.get(pk=ident)
    assert conversation.status == "OPEN"
    assert conversation.created_at == T0
    assert conversation.closed_at is None


def test_new_message_is_added_at_the_event_time(post_event, conversation_id):
    message_id = uuid.uuid4()
    event = new_message(conversation_id, ts=5, message_id=message_id, direction="SENT")
    assert post_event(event).status_code == 201
    message = Message.objects.get(pk=message_id)
    assert (message.direction, message.content) == ("SENT", "Olá, preciso de ajuda")
    assert message.timestamp.isoformat() == at(5)
    conversation = Conversation.objects.get(pk=conversation_id)
    assert conversation.message_count == 1
    assert conversation.last_message_id == message_id


def test_close_of_an_open_conversation(post_event, conversation_id):
    response = post_event(close_conversation(conversation_id, ts=60))
    assert response.status_code == 200
    assert response.json()["result"] == "closed"
    conversation = Conversation.objects.get(pk=conversation_id)
    assert conversation.status == "CLOSED"
    assert conversation.closed_at.isoformat() == at(60)


@pytest.mark.parametrize("kind", ["conversation", "message", "close"])
def test_the_same_event_delivered_again_changes_nothing(post_event, conversation_id, kind):
    event = {
        "conversation": new_conversation(conversation_id),
        "message": new_message(conversation_id),
        "close": close_conversation(conversation_id),
    }[kind]
    if kind != "conversation":
        assert post_event(event).status_code in {200, 201}
    before = stored_state()
    response = post_event(event)
    assert response.status_code == 200
    assert response.json()["result"] == "duplicate"
    assert stored_state() == before


@pytest.mark.parametrize(
    "change",
    [
        {"content": "something else"},
        {"direction": "SENT"},
        {"conversation_id": "other"},
        {"timestamp": at(99)},
    ],
)
def test_same_message_id_with_different_fields_is_a_conflict(post_event, conversation_id, change):
    event = new_message(conversation_id, ts=1)
    assert post_event(event).status_code == 201
    other = dict(event, data=dict(event["data"]))
    if "timestamp" in change:
        other["timestamp"] = change["timestamp"]
    elif change.get("conversation_id"):
        other_conversation = uuid.uuid4()
        assert post_event(new_conversation(other_conversation)).status_code == 201
        other["data"]["conversation_id"] = str(other_conversation)
    else:
        other["data"].update(change)
    before = stored_state()
    response = post_event(other)
    assert response.status_code == 409
    assert "different" in response.json()["detail"]
    assert stored_state() == before


def test_new_conversation_again_with_another_time_is_a_conflict(post_event, conversation_id):
    before = stored_state()
    response = post_event(new_conversation(conversation_id, ts=30))
    assert response.status_code == 409
    assert stored_state() == before


def test_close_of_a_closed_conversation_changes_nothing(post_event, conversation_id):
    assert post_event(close_conversation(conversation_id, ts=60)).status_code == 200
    before = stored_state()
    response = post_event(close_conversation(conversation_id, ts=90))
    assert response.status_code == 200
    assert response.json()["result"] == "duplicate"
    assert stored_state() == before
    assert Conversation.objects.get(pk=conversation_id).closed_at.isoformat() == at(60)


def test_message_after_close_is_refused(post_event, conversation_id):
    assert post_event(close_conversation(conversation_id, ts=60)).status_code == 200
    before = stored_state()
    response = post_event(new_message(conversation_id, ts=61))
    assert response.status_code == 409
    assert "closed" in response.json()["detail"]
    assert stored_state() == before


@pytest.mark.parametrize("ts", [59, 60])
def test_late_message_from_before_the_close_is_stored_in_its_place(post_event, conversation_id, ts):
    early = uuid.uuid4()
    assert post_event(new_message(conversation_id, ts=10, message_id=early)).status_code == 201
    assert post_event(close_conversation(conversation_id, ts=60)).status_code == 200
    late = uuid.uuid4()
    assert post_event(new_message(conversation_id, ts=ts, message_id=late)).status_code == 201
    conversation = Conversation.objects.get(pk=conversation_id)
    assert conversation.status == "CLOSED"
    assert conversation.message_count == 2
    thread = list(conversation.messages.order_by("timestamp").values_list("id", flat=True))
    assert thread == [early, late]


@pytest.mark.parametrize("kind", ["message", "close"])
def test_event_for_an_unknown_conversation_is_held_not_stored(post_event, kind):
    unknown = uuid.uuid4()
    event = new_message(unknown) if kind == "message" else close_conversation(unknown)
    response = post_event(event)
    assert response.status_code == 202
    assert response.json()["result"] == "held"
    assert str(unknown) in response.json()["detail"]
    assert stored_state() == ([], [])


def _valid_message() -> dict:
    return new_message(uuid.uuid4())


MALFORMED = {
    "malformed JSON": (b'{"type": "NEW_MESSAGE",', "body"),
    "not an object": (b'["NEW_MESSAGE"]', "body"),
    "a bare string": (b'"hello"', "body"),
    "unknown type": (json.dumps({**_valid_message(), "type": "DELETE_EVERYTHING"}), "type"),
    "missing type": (
        json.dumps({k: v for k, v in _valid_message().items() if k != "type"}),
        "type",
    ),
    "missing data": (json.dumps({"type": "NEW_MESSAGE", "timestamp": at(0)}), "data"),
    "missing timestamp": (
        json.dumps({k: v for k, v in _valid_message().items() if k != "timestamp"}),
        "timestamp",
    ),
    "missing content": (
        json.dumps(
            {
                **_valid_message(),
                "data": {k: v for k, v in _valid_message()["data"].items() if k != "content"},
            }
        ),
        "data.content",
    ),
    "id is a number": (
        json.dumps({**_valid_message(), "data": {**_valid_message()["data"], "id": 42}}),
        "data.id",
    ),
    "content is a number": (
        json.dumps({**_valid_message(), "data": {**_valid_message()["data"], "content": 7}}),
        "data.content",
    ),
    "data is a list": (json.dumps({**_valid_message(), "data": []}), "data"),
    "bad UUID": (
        json.dumps({**_valid_message(), "data": {**_valid_message()["data"], "id": "not-a-uuid"}}),
        "data.id",
    ),
    "bad conversation UUID": (
        json.dumps(
            {**_valid_message(), "data": {**_valid_message()["data"], "conversation_id": "x"}}
        ),
        "data.conversation_id",
    ),
    "bad timestamp": (json.dumps({**_valid_message(), "timestamp": "yesterday"}), "timestamp"),
    "numeric timestamp": (json.dumps({**_valid_message(), "timestamp": 1740133241}), "timestamp"),
    "bad direction": (
        json.dumps({**_valid_message(), "data": {**_valid_message()["data"], "direction": "IN"}}),
        "data.direction",
    ),
    "blank content": (
        json.dumps({**_valid_message(), "data": {**_valid_message()["data"], "content": "  \n"}}),
        "data.content",
    ),
    "NUL in content": (
        json.dumps({**_valid_message(), "data": {**_valid_message()["data"], "content": "a\x00"}}),
        "data.content",
    ),
    "invalid UTF-8": (b"\xff\xfe{}", "body"),
    "empty body": (b"", "body"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_events_are_refused_naming_the_field(post_event, conversation_id, name):
    body, field = MALFORMED[name]
    body = body if isinstance(body, bytes) else body.encode()
    before = stored_state()
    response = post_event(body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["error"] == "invalid_event"
    assert field in [e["field"] for e in payload["errors"]]
    assert all(e["message"] for e in payload["errors"])
    assert stored_state() == before


def test_timestamp_without_zone_is_read_in_the_webhook_timezone(post_event, settings):
    settings.WEBHOOK_TIMEZONE = "America/Sao_Paulo"
    ident = uuid.uuid4()
    event = new_conversation(ident)
    event["timestamp"] = "2025-02-21T10:00:00"
    assert post_event(event).status_code == 201
    assert Conversation.objects.get(pk=ident).created_at.isoformat() == "2025-02-21T13:00:00+00:00"


def test_unknown_keys_are_ignored(post_event):
    event = new_conversation()
    event["provider_trace"] = "abc"
    event["data"]["channel"] = "whatsapp"
    assert post_event(event).status_code == 201


def test_body_of_exactly_the_limit_is_accepted_and_one_byte_more_is_not(post_event, settings):
    event = new_conversation()
    body = json.dumps(event).encode()
    settings.WEBHOOK_MAX_BYTES = len(body)
    assert post_event(body).status_code == 201
    bigger = json.dumps(new_conversation()).encode() + b" "
    response = post_event(bigger)
    assert response.status_code == 413
    assert "WEBHOOK_MAX_BYTES" in response.json()["detail"]
    assert Conversation.objects.count() == 1


def test_default_limit_is_one_mebibyte(post_event, conversation_id):
    event = new_message(conversation_id, content="x")
    padding = 1024 * 1024 - len(json.dumps(event).encode()) + 1
    event["data"]["content"] = "x" * (padding + 1)
    response = post_event(json.dumps(event).encode())
    assert response.status_code == 413
    event["data"]["content"] = "x" * padding
    assert post_event(json.dumps(event).encode()).status_code == 201


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data; boundary=b", "application/x-www-form-urlencoded"],
)
def test_a_form_body_is_refused_naming_its_content_type(client, content_type):
    # The event, as a form field: what a provider misconfigured to post forms would send.
    body = "event=" + json.dumps(new_conversation())
    response = client.post("/webhook/", body, content_type=content_type)
    assert response.status_code == 400
    error = response.json()
    assert error["error"] == "unsupported_content_type"
    assert error["content_type"] == content_type.split(";")[0]
    assert error["content_type"] in error["detail"]
    assert Conversation.objects.count() == 0


SECRET = "webhook-test-secret"


@pytest.mark.parametrize(
    ("header", "error"),
    [
        (None, "signature_missing"),
        ("sha256=" + "0" * 64, "signature_invalid"),
        ("abc", "signature_invalid"),
    ],
)
def test_unsigned_or_badly_signed_deliveries_are_refused(client, settings, header, error):
    settings.WEBHOOK_SECRET = SECRET
    body = json.dumps(new_conversation()).encode()
    headers = {"HTTP_X_HUB_SIGNATURE_256": header} if header else {}
    response = client.post("/webhook/", body, content_type="application/json", **headers)
    assert response.status_code == 401
    assert response.json()["error"] == error
    assert "X-Hub-Signature-256" in response.json()["detail"]
    assert Conversation.objects.count() == 0
    assert WebhookDelivery.objects.count() == 0


def test_signature_of_another_body_is_refused(client, settings):
    from tests.conftest import sign

    settings.WEBHOOK_SECRET = SECRET
    body = json.dumps(new_conversation()).encode()
    forged = json.dumps(new_conversation()).encode()
    response = client.post(
        "/webhook/",
        forged,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=sign(body, SECRET),
    )
    assert response.status_code == 401
    assert Conversation.objects.count() == 0


def test_correctly_signed_delivery_is_accepted(post_event, settings):
    settings.WEBHOOK_SECRET = SECRET
    assert post_event(new_conversation(), secret=SECRET).status_code == 201
    assert post_event(new_conversation(), secret="another-secret").status_code == 401


@pytest.mark.parametrize("case", [str.upper, lambda hex_: hex_[:32].upper() + hex_[32:]])
def test_the_signature_hex_is_compared_whatever_its_case(client, settings, case):
    from tests.conftest import sign

    settings.WEBHOOK_SECRET = SECRET
    body = json.dumps(new_conversation()).encode()
    signature = "sha256=" + case(sign(body, SECRET).removeprefix("sha256="))
    response = client.post(
        "/webhook/", body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=signature
    )
    assert response.status_code == 201
    wrong = "sha256=" + case(sign(body, "another-secret").removeprefix("sha256="))
    response = client.post(
        "/webhook/", body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=wrong
    )
    assert response.status_code == 401


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_any_method_but_post_is_refused_with_json(client, method):
    response = getattr(client, method)("/webhook/")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert "POST" in response.json()["detail"]


def test_every_authenticated_delivery_is_logged_as_received(post_event, conversation_id):
    event = new_message(conversation_id)
    post_event(event)
    post_event(event)
    post_event(b"{not json")
    log = list(
        WebhookDelivery.objects.order_by("id").values_list(
            "status_code", "outcome", "event_type", "item_count"
        )
    )
    # One row per request; how many events its body carried (none could be read from junk).
    assert log[-3:] == [
        (201, "created", "NEW_MESSAGE", 1),
        (200, "duplicate", "NEW_MESSAGE", 1),
        (400, "invalid", "", 0),
    ]
    assert WebhookDelivery.objects.order_by("id").last().body == "{not json"


def test_an_invalid_field_starting_with_nul_is_a_400_not_a_500(post_event):
    # pydantic quotes the offending character in its message, which the delivery log stores.
    response = post_event({**new_conversation(), "data": {"id": "\x00"}})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "data.id"
    assert WebhookDelivery.objects.get().detail.startswith("data.id")
    assert "\x00" not in WebhookDelivery.objects.get().detail


def test_the_delivery_log_reads_in_the_admin(post_event, admin_client, conversation_id):
    post_event(new_message(conversation_id))
    response = admin_client.get("/admin/inbox/webhookdelivery/")
    assert response.status_code == 200
    assert "NEW_MESSAGE" in response.content.decode()
