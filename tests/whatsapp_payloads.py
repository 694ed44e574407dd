"""WhatsApp webhook bodies built like Meta's documented examples (README, "Connect
WhatsApp", the "messages webhook reference" pages): the same envelope, field names and
value shapes, with our own ids and times so a test can vary them."""

import hashlib
import hmac
import http.client
import json
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit

from tests.conftest import T0

BUSINESS = {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"}
APP_SECRET = "whatsapp-test-app-secret"


def ts(when: datetime = T0, seconds: int = 0) -> str:
    return str(int(when.timestamp()) + seconds)


def envelope(*values: dict, entries: int = 1) -> dict:
    """Meta's envelope; several values become several changes, spread over `entries`."""
    per = max(1, -(-len(values) // entries))
    chunks = [values[i : i + per] for i in range(0, len(values), per)] or [()]
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": f"10229012934039{n}",
                "changes": [{"value": value, "field": "messages"} for value in chunk],
            }
            for n, chunk in enumerate(chunks)
        ],
    }


def value(*, messages=(), statuses=(), contacts=(), errors=()) -> dict:
    data: dict = {"messaging_product": "whatsapp", "metadata": BUSINESS}
    if contacts:
        data["contacts"] = list(contacts)
    if messages:
        data["messages"] = list(messages)
    if statuses:
        data["statuses"] = list(statuses)
    if errors:
        data["errors"] = list(errors)
    return data


def contact(wa_id: str = "16505551234", name: str = "Sheena Nelson") -> dict:
    return {"profile": {"name": name}, "wa_id": wa_id}


def message(
    wamid: str, kind: str = "text", *, sender: str = "16505551234", at: str | None = None, **part
) -> dict:
    body = {"from": sender, "id": wamid, "timestamp": at or ts(), "type": kind}
    if kind == "text":
        body["text"] = {"body": part.get("body", "Does it come in another color?")}
    elif part:
        body[kind] = part.get(kind, part)
    return body


def text(
    wamid: str,
    body: str = "Does it come in another color?",
    *,
    sender="16505551234",
    name="Sheena Nelson",
    at=None,
) -> dict:
    """One text message from one customer, as Meta's text example."""
    return envelope(
        value(
            contacts=[contact(sender, name)],
            messages=[message(wamid, sender=sender, at=at, body=body)],
        )
    )


IMAGE = {
    "caption": "Is this the model?",
    "mime_type": "image/jpeg",
    "sha256": "2pA3Vw5Lw6m7P3y2Hb1nJf8Xy7bWc0uRUVQm3aF4s9o=",
    "id": "1003383421387256",
}
AUDIO = {
    "mime_type": "audio/ogg; codecs=opus",
    "sha256": "6vLzq2u1vGg=",
    "id": "1003383421387257",
    "voice": True,
}
VIDEO = {
    "caption": "Unboxing",
    "mime_type": "video/mp4",
    "sha256": "c2hh",
    "id": "1003383421387258",
}
DOCUMENT = {
    "caption": "Invoice",
    "filename": "invoice-4411.pdf",
    "mime_type": "application/pdf",
    "sha256": "ZG9j",
    "id": "1003383421387259",
}
STICKER = {"mime_type": "image/webp", "sha256": "c3Rp", "id": "1003383421387260", "animated": False}
LOCATION = {
    "address": "1 Hacker Way, Menlo Park, CA 94025",
    "latitude": 37.483307,
    "longitude": -122.148981,
    "name": "Meta Headquarters",
    "url": "https://meta.com",
}
CONTACTS = [
    {
        "name": {"formatted_name": "Barbara J. Johnson", "first_name": "Barbara"},
        "phones": [{"phone": "+1 (940) 555-1234", "type": "HOME", "wa_id": "19405551234"}],
    }
]


def status(
    wamid: str, state: str, *, at: str | None = None, recipient: str = "16505551234", errors=None
) -> dict:
    """One statuses[] item, as Meta's status example (sent, delivered, read, failed)."""
    item = {"id": wamid, "status": state, "timestamp": at or ts(), "recipient_id": recipient}
    if state in ("sent", "delivered"):
        item["conversation"] = {
            "id": "6ceb9d929c1e9b3e0e7aa0d2f7ca7db5",
            "origin": {"type": "service"},
        }
        item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "service"}
    if errors:
        item["errors"] = errors
    return item


RE_ENGAGEMENT = {
    "code": 131047,
    "title": "Re-engagement message",
    "message": "Re-engagement message",
    "error_data": {
        "details": "Message failed to send because more than 24 hours have passed since the "
        "customer last replied to this number."
    },
    "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
}


def statuses(*items: dict) -> dict:
    return envelope(value(statuses=items))


def dumps(body: dict) -> bytes:
    return json.dumps(body).encode()


def sign(raw: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def poster(base_url: str) -> Callable[[dict], int]:
    """A stand-in Graph API's `deliver`: each envelope signed and posted to the WhatsApp
    webhook of the server at `base_url`, its status returned."""

    def deliver(body: dict) -> int:
        raw = json.dumps(body).encode()
        parts = urlsplit(base_url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        connection.request(
            "POST",
            "/webhook/whatsapp/",
            raw,
            {"Content-Type": "application/json", "X-Hub-Signature-256": sign(raw)},
        )
        status = connection.getresponse().status
        connection.close()
        return status

    return deliver
