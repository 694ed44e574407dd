"""Meta's Graph API on 127.0.0.1 for the WhatsApp tests and the demo: a real HTTP server.

`POST /<version>/<phone number id>/messages` answers each request with the next scripted
`GraphReply` (the last one repeats; by default 200 with a fresh wamid, the shape of Meta's
"Send messages" answer) and keeps every request (`sent`). `GET /<version>/<media id>` says
where a file of `media` is (Meta's "Retrieve media URL" answer), and `GET /files/<media id>`
serves its bytes; `media_failures` makes the next N file or lookup requests answer 500.
"""

import contextlib
import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class GraphReply:
    status: int = 200
    # None: Meta's success answer with the next wamid.
    body: dict | None = None


@dataclass(frozen=True)
class Sent:
    path: str
    headers: dict[str, str]
    body: dict


@dataclass
class StubGraph:
    replies: list[GraphReply] = field(default_factory=lambda: [GraphReply()])
    media: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    media_failures: int = 0
    # Declared file_size for the lookup; None: the true size.
    declared_sizes: dict[str, int] = field(default_factory=dict)
    # Files served with no Content-Length (the body ends when the connection closes).
    undeclared: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.sent: list[Sent] = []
        self.media_requests: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.counter = itertools.count(1)
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self, status: int, payload: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _json(self, status: int, data: dict) -> None:
                self._answer(status, json.dumps(data).encode(), "application/json")

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with stub.lock:
                    stub.sent.append(Sent(self.path, headers, json.loads(raw)))
                    reply = stub.replies.pop(0) if len(stub.replies) > 1 else stub.replies[0]
                    n = next(stub.counter)
                if reply.body is not None:
                    return self._json(reply.status, reply.body)
                to = json.loads(raw).get("to", "")
                self._json(
                    reply.status,
                    {
                        "messaging_product": "whatsapp",
                        "contacts": [{"input": to, "wa_id": to}],
                        "messages": [{"id": f"wamid.STUB{n:06d}"}],
                    },
                )

            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                with stub.lock:
                    stub.media_requests.append((self.path, headers))
                    failing = stub.media_failures > 0
                    if failing:
                        stub.media_failures -= 1
                if headers.get("authorization", "") != f"Bearer {stub.token}":
                    return self._json(401, {"error": {"code": 190, "message": "bad token"}})
                if failing:
                    return self._json(500, {"error": {"code": 131000, "message": "try later"}})
                parts = self.path.strip("/").split("/")
                if parts[0] == "files" and len(parts) == 2 and parts[1] in stub.media:
                    mime, data = stub.media[parts[1]]
                    if parts[1] in stub.undeclared:
                        self.send_response(200)
                        self.send_header("Content-Type", mime)
                        self.send_header("Connection", "close")
                        self.end_headers()
                        self.close_connection = True
                        # The client may stop reading at its limit.
                        with contextlib.suppress(OSError):
                            self.wfile.write(data)
                        return None
                    return self._answer(200, data, mime)
                if len(parts) == 2 and parts[1] in stub.media:
                    mime, data = stub.media[parts[1]]
                    return self._json(
                        200,
                        {
                            "messaging_product": "whatsapp",
                            "url": f"{stub.url}/files/{parts[1]}",
                            "mime_type": mime,
                            "sha256": "0" * 64,
                            "file_size": stub.declared_sizes.get(parts[1], len(data)),
                            "id": parts[1],
                        },
                    )
                self._json(404, {"error": {"code": 100, "message": "Unsupported get request"}})

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.token = "stub-access-token"
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "StubGraph":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
