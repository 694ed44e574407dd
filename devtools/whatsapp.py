"""WhatsApp-shaped traffic for the demo (README, "Connect WhatsApp"): customers writing
through Meta's webhook envelope, and a stand-in for Meta's Graph API that takes the agents'
replies, reports WhatsApp's statuses back and has the customer answer.

The envelopes are shaped like Meta's documented examples (text, image, location, reaction,
several messages in one body); everything is drawn from a `random.Random` the caller owns.
"""

import itertools
import json
import random
import struct
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from devtools.simulator import RECEIVED, StandIn, conversation_lines, customer_answer

_NAMES = [
    "Ana Souza",
    "João Pereira",
    "Maria Oliveira",
    "Pedro Santos",
    "Sheena Nelson",
    "Liam Walker",
    "Chloe Martin",
    "Lucas Almeida",
]
BUSINESS = {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"}


def _png() -> bytes:
    """A small valid PNG (a green square), the demo's customer photo."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" + b"\x25\xd3\x66" * 32
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 32, 32, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * 32))
        + chunk(b"IEND", b"")
    )


DEMO_MEDIA_ID = "1003383421387256"
DEMO_IMAGE = _png()


def envelope(*values: dict) -> dict:
    """Meta's webhook envelope around one change per value."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [{"value": value, "field": "messages"} for value in values],
            }
        ],
    }


def customer_value(wa_id: str, name: str, messages: list[dict]) -> dict:
    return {
        "messaging_product": "whatsapp",
        "metadata": BUSINESS,
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
        "messages": messages,
    }


def text_message(wamid: str, wa_id: str, body: str) -> dict:
    return {
        "from": wa_id,
        "id": wamid,
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": body},
    }


def status_value(wamid: str, wa_id: str, status: str) -> dict:
    item = {
        "id": wamid,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": wa_id,
    }
    return {"messaging_product": "whatsapp", "metadata": BUSINESS, "statuses": [item]}


def customer_bodies(rng: random.Random, *, count: int) -> list[list[dict]]:
    """`count` customers' envelopes, each customer's in order: their lines of a simulated
    conversation (what the business said is left to the agents), now and then a photo, a
    place or two messages in one envelope, as WhatsApp batches them."""
    serial = itertools.count(1)
    customers = []
    for n in range(count):
        wa_id = f"55119{rng.randint(10000000, 99999999)}"
        name = _NAMES[n % len(_NAMES)]
        lines = [line.content for line in conversation_lines(rng) if line.direction == RECEIVED]
        messages = [text_message(f"wamid.DEMO{next(serial):08d}", wa_id, line) for line in lines]
        if rng.random() < 0.3:
            messages.insert(
                1,
                {
                    "from": wa_id,
                    "id": f"wamid.DEMO{next(serial):08d}",
                    "timestamp": str(int(time.time())),
                    "type": "image",
                    "image": {
                        "caption": "Foto do produto",
                        "mime_type": "image/png",
                        "sha256": "ZGVtbw==",
                        "id": DEMO_MEDIA_ID,
                    },
                },
            )
        if rng.random() < 0.2:
            messages.append(
                {
                    "from": wa_id,
                    "id": f"wamid.DEMO{next(serial):08d}",
                    "timestamp": str(int(time.time())),
                    "type": "location",
                    "location": {
                        "latitude": -23.561684,
                        "longitude": -46.655981,
                        "name": "Av. Paulista",
                        "address": "Av. Paulista, 1578, São Paulo",
                    },
                },
            )
        bodies = []
        while messages:
            take = 2 if len(messages) > 2 and rng.random() < 0.2 else 1
            batch, messages = messages[:take], messages[take:]
            bodies.append(envelope(customer_value(wa_id, name, batch)))
        customers.append(bodies)
    return customers


class DemoGraph(StandIn):
    """Meta's Graph API as far as the inbox uses it, for the demo and the browser test.

    `POST /<version>/<phone number id>/messages` checks the bearer token, answers with a
    wamid as Meta does, then, as the customer's phone would, reports it `sent`,
    `delivered` and `read` through the WhatsApp webhook and has the customer answer.
    `GET /<version>/<media id>` and `GET /files/<media id>` serve the demo's photo.
    `deliver(body)` posts one envelope to the webhook (signed by the caller).
    """

    def __init__(
        self,
        *,
        url: str,
        token: str,
        deliver: Callable[[dict], int],
        rng: random.Random,
        delays: tuple[float, float, float, float] = (0.5, 1.5, 3.0, 5.0),
        answer: bool = True,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the demo Graph API serves http://host:port, not {url!r}")
        super().__init__(host=parts.hostname, port=parts.port or 80, deliver=deliver)
        self.url = f"http://{self.host}:{self.port}"
        self.token = token
        self.rng = rng
        self.delays = delays
        self.answer = answer
        self.serial = itertools.count(1)
        self.lock = threading.Lock()
        self.sent: list[dict] = []

    def start(self) -> None:
        graph = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, payload: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _authorised(self) -> bool:
                if self.headers.get("Authorization", "") == f"Bearer {graph.token}":
                    return True
                error = {"error": {"code": 190, "message": "Invalid OAuth access token."}}
                self._answer(401, json.dumps(error).encode(), "application/json")
                return False

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self._authorised():
                    return
                status, answer = graph.take(self.path, body)
                self._answer(status, json.dumps(answer).encode(), "application/json")

            def do_GET(self) -> None:
                if not self._authorised():
                    return
                parts = self.path.strip("/").split("/")
                if parts == ["files", DEMO_MEDIA_ID]:
                    return self._answer(200, DEMO_IMAGE, "image/png")
                if len(parts) == 2 and parts[1] == DEMO_MEDIA_ID:
                    meta = {
                        "messaging_product": "whatsapp",
                        "url": f"{graph.url}/files/{DEMO_MEDIA_ID}",
                        "mime_type": "image/png",
                        "sha256": "ZGVtbw==",
                        "file_size": len(DEMO_IMAGE),
                        "id": DEMO_MEDIA_ID,
                    }
                    return self._answer(200, json.dumps(meta).encode(), "application/json")
                error = {"error": {"code": 100, "message": "Unsupported get request."}}
                self._answer(404, json.dumps(error).encode(), "application/json")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._serve(Handler)

    def take(self, path: str, body: bytes) -> tuple[int, dict]:
        """One /messages request: the status and JSON to answer it with."""
        if not path.endswith("/messages"):
            return 404, {"error": {"code": 100, "message": f"no such path {path}"}}
        try:
            message = json.loads(body)
            to = str(message["to"])
            kind = message["type"]
            text = message["text"]["body"] if kind == "text" else message["template"]["name"]
        except (ValueError, KeyError, TypeError):
            return 400, {"error": {"code": 100, "message": "(#100) Invalid parameter"}}
        with self.lock:
            wamid = f"wamid.GRAPH{next(self.serial):08d}"
            self.sent.append(message)
            reply = customer_answer(self.rng, text)
        sent, delivered, read, answered = self.delays
        self._later(sent, lambda: envelope(status_value(wamid, to, "sent")))
        self._later(delivered, lambda: envelope(status_value(wamid, to, "delivered")))
        self._later(read, lambda: envelope(status_value(wamid, to, "read")))
        if self.answer:
            with self.lock:
                answer_id = f"wamid.ANSWER{next(self.serial):08d}"
            self._later(
                answered,
                lambda: envelope(customer_value(to, "", [text_message(answer_id, to, reply)])),
            )
        return 200, {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": wamid}],
        }
