"""The ticks under the embedded defaults (README "Live ticks"): with the in-process channel
layer the worker is another process than the server whose sockets the agents hold, so it
tells the server of each delivery change over loopback HTTP (`WORKER_NOTIFY_URL`), and the
bubble changes live in every open inbox. A server that is down when told loses nothing: the
state is stored and a reload shows it. Real processes: `serve`, `worker`, the stub provider.
"""

import http.client
import json
import re
import time
import uuid

import pytest
from django.test import Client
from django.urls import reverse
from websockets.sync.client import ClientConnection

from inbox import services
from inbox.live import notify
from inbox.models import Conversation, Delivery, Message
from tests.conftest import T0, WAIT_LIMIT, free_port, new_conversation
from tests.management.test_worker import start_worker, wait_until
from tests.server.test_serve import agent_socket
from tests.stub_provider import Reply, StubProvider

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def session_cookie(agent) -> str:
    client = Client()
    client.force_login(agent)
    return client.cookies["sessionid"].value


@pytest.fixture
def conversation(settings) -> Conversation:
    settings.PROVIDER_URL = "http://127.0.0.1:9/"  # replies on; the worker gets the stub's
    return Conversation.objects.create(id=uuid.uuid4(), created_at=T0, last_activity_at=T0)


@pytest.fixture
def workers():
    started = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def delivery_pushed(socket: ClientConnection, message_id: uuid.UUID, state: str) -> str:
    """The frame in which the socket was told that the bubble is now `state`."""
    deadline = time.monotonic() + WAIT_LIMIT
    pattern = re.compile(rf'id="message-{message_id}"[^>]*data-delivery="{state}"')
    while (left := deadline - time.monotonic()) > 0:
        frame = socket.recv(timeout=left)
        if pattern.search(frame):
            return frame
    pytest.fail(f"no push of message {message_id} as {state}")


def thread_page(port: int, conversation_id: uuid.UUID, cookie: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_LIMIT)
    conn.request(
        "GET", f"/conversations/{conversation_id}/", headers={"Cookie": f"sessionid={cookie}"}
    )
    response = conn.getresponse()
    assert response.status == 200
    return response.read().decode()


def test_the_workers_delivery_states_reach_every_open_inbox_live(
    serve, tmp_path, workers, conversation, agent, session_cookie
):
    server = serve()
    query = f"conversation={conversation.id}"
    with (
        StubProvider(Reply(200), Reply(400, body="número bloqueado")) as stub,
        agent_socket(server, session_cookie, query) as first,
        agent_socket(server, session_cookie, query) as second,
    ):
        log = tmp_path / "worker.log"
        workers.append(start_worker(stub, log, WORKER_NOTIFY_URL=server.url))
        sent = services.message_reply(
            conversation_id=conversation.id, content="Já verifico!", agent=agent
        )
        for socket in (first, second):
            delivery_pushed(socket, sent.id, "SENT")
        failed = services.message_reply(
            conversation_id=conversation.id, content="Pode confirmar?", agent=agent
        )
        for socket in (first, second):
            assert "número bloqueado" in delivery_pushed(socket, failed.id, "FAILED")
    assert "could not tell" not in log.read_text()


def test_a_server_down_when_told_loses_nothing_and_a_reload_shows_the_state(
    serve, tmp_path, workers, conversation, agent, session_cookie
):
    port = free_port()  # nothing listens there yet
    with StubProvider(Reply(200)) as stub:
        log = tmp_path / "worker.log"
        workers.append(start_worker(stub, log, WORKER_NOTIFY_URL=f"http://127.0.0.1:{port}"))
        replies = [
            services.message_reply(conversation_id=conversation.id, content=text, agent=agent)
            for text in ("Um momento.", "Pronto!")
        ]

        def all_sent() -> bool:
            return not Message.objects.filter(delivery=Delivery.PENDING).exists()

        wait_until(all_sent, WAIT_LIMIT, "replies still PENDING", [log])
        # The notifier's thread tells the server after the state is stored: wait for it.
        wait_until(
            lambda: "could not tell the server" in log.read_text(),
            WAIT_LIMIT,
            "no warning that the server could not be told",
            [log],
        )

        server = serve(port=port)
        page = thread_page(port, conversation.id, session_cookie)
        for reply in replies:
            assert re.search(rf'id="message-{reply.id}"[^>]*data-delivery="SENT"', page)
        # The server is back: the next change is live again, from the same worker.
        with agent_socket(server, session_cookie, f"conversation={conversation.id}") as socket:
            later = services.message_reply(
                conversation_id=conversation.id, content="Mais alguma coisa?", agent=agent
            )
            delivery_pushed(socket, later.id, "SENT")


def signed_post(client: Client, body: bytes, signature: str | None = None):
    headers = {}
    if signature is not None:
        headers[notify.SIGNATURE_HEADER] = signature
    return client.post(
        reverse("inbox:worker-notice"), body, content_type="application/json", headers=headers
    )


def notice(conversation_id: uuid.UUID, message_id: uuid.UUID, sent_at: float | None = None):
    return json.dumps(
        {
            "sent_at": time.time() if sent_at is None else sent_at,
            "changes": [
                {
                    "kind": "message",
                    "conversation_id": str(conversation_id),
                    "message_id": str(message_id),
                }
            ],
        }
    ).encode()


@pytest.mark.parametrize(
    "body, signature, status, error",
    [
        pytest.param("good", None, 403, "signature", id="unsigned"),
        pytest.param("good", "sha256=" + "0" * 64, 403, "signature", id="forged"),
        pytest.param("stale", "sign", 403, "older than", id="replayed later"),
        pytest.param(b"[1, 2]", "sign", 400, "not a notice", id="not a notice"),
        pytest.param(b"\xff{", "sign", 400, "not a notice", id="not JSON"),
        pytest.param(
            b'{"sent_at": 1e12, "changes": [{"kind": "session", "conversation_id": "x"}]}',
            "sign",
            400,
            "unknown kind",
            id="another kind",
        ),
        pytest.param(
            b'{"sent_at": 0, "changes": [{"kind": "message", "conversation_id": "x"}]}',
            "sign",
            400,
            "not a notice",
            id="bad ids",
        ),
    ],
)
def test_the_notice_endpoint_refuses_anything_not_from_the_worker(body, signature, status, error):
    ident = uuid.uuid4()
    if body == "good":
        body = notice(ident, uuid.uuid4())
    elif body == "stale":
        body = notice(ident, uuid.uuid4(), sent_at=time.time() - notify.MAX_AGE - 5)
    if signature == "sign":
        signature = notify.signature(body)
    response = signed_post(Client(), body, signature)
    assert response.status_code == status
    assert error in response.json()["error"]


def test_the_notice_endpoint_answers_only_post():
    response = Client().get(reverse("inbox:worker-notice"))
    assert response.status_code == 405


def test_a_signed_notice_is_published_like_a_webhook(post_event):
    """The server's side in process: a signed notice for a stored reply is taken (202),
    and one for a message that is gone publishes nothing and fails nothing."""
    ident = uuid.uuid4()
    post_event(new_conversation(ident))
    body = notice(ident, uuid.uuid4())
    response = signed_post(Client(), body, notify.signature(body))
    assert response.status_code == 202
    assert response.json() == {"published": 1}
