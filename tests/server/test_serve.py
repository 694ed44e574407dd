"""Real server processes (`manage.py serve`, daphne with a graceful SIGTERM), really started.

- Two processes behind one Redis behave as one: a webhook answered by one reaches an agent's
  socket on the other, and agents on either see each other in a thread (presence).
- SIGTERM is a routine restart: the port stops accepting, the agents' sockets are closed with
  1012 (which the pages reconnect on), the webhook in flight is still answered, and the
  process exits cleanly (plain daphne cuts the webhook off and then hangs or crashes).
- Keep-alive clients under load do not hold the drain open: idle connections are closed, the
  requests in flight are answered with `Connection: close`, and nothing read is cut off.
"""

import http.client
import json
import signal
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.db import transaction
from django.test import Client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from inbox.models import Conversation, Message
from tests import factories, markup
from tests.conftest import WAIT_LIMIT, Server, new_conversation, new_message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def session_cookie(agent) -> str:
    client = Client()
    client.force_login(agent)
    return client.cookies["sessionid"].value


def agent_socket(server: Server, cookie: str, query: str = "") -> ClientConnection:
    return connect(
        f"ws://127.0.0.1:{server.port}/ws/inbox/?{query}",
        additional_headers={"Cookie": f"sessionid={cookie}", "Origin": server.url},
        open_timeout=WAIT_LIMIT,
    )


def post(server: Server, event: dict) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_LIMIT * 2)
    conn.request("POST", "/webhook/", json.dumps(event), {"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def test_a_webhook_on_one_process_reaches_a_socket_on_the_other(serve, redis_url, session_cookie):
    shared = {"REDIS_URL": redis_url, "CHANNEL_LAYER_PREFIX": f"test-{uuid.uuid4().hex[:8]}"}
    first, second = serve(**shared), serve(**shared)
    ident, message_id = uuid.uuid4(), uuid.uuid4()
    with (
        agent_socket(second, session_cookie) as listing,
        agent_socket(second, session_cookie, f"conversation={ident}") as viewing,
    ):
        assert post(first, new_conversation(ident))[0] == 201
        assert f'id="conversation-{ident}"' in listing.recv(timeout=WAIT_LIMIT)
        assert post(first, new_message(ident, message_id=message_id))[0] == 201
        # Before the bubble: the new conversation's header, row and the tabs' counts.
        pushed = [viewing.recv(timeout=WAIT_LIMIT) for _ in range(4)]
        assert any(f'id="message-{message_id}"' in frame for frame in pushed)


def presence_until(ws: ClientConnection, attribute: str, value: str) -> None:
    """Reads frames until the socket's presence line has `attribute` = `value`."""
    deadline = time.monotonic() + WAIT_LIMIT
    while True:
        frame = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        line = markup.by_id(frame, "presence")
        if line is not None and line[attribute] == value:
            return


def test_presence_crosses_processes(serve, redis_url, session_cookie, agent):
    """Ana's socket on one process, Bea's on the other, in one thread (README, "Triage",
    Presence): each sees the other, Bea sees Ana typing, and Ana's closing clears her."""
    shared = {"REDIS_URL": redis_url, "CHANNEL_LAYER_PREFIX": f"test-{uuid.uuid4().hex[:8]}"}
    first, second = serve(**shared), serve(**shared)
    bea = Client()
    bea.force_login(factories.agent("bea"))
    ident = uuid.uuid4()
    assert post(first, new_conversation(ident))[0] == 201
    with agent_socket(second, bea.cookies["sessionid"].value, f"conversation={ident}") as beas:
        with agent_socket(first, session_cookie, f"conversation={ident}") as anas:
            presence_until(beas, "data-viewers", "ana")
            presence_until(anas, "data-viewers", "bea")
            anas.send(json.dumps({"type": "typing", "typing": True}))
            presence_until(beas, "data-typing", "ana")
        presence_until(beas, "data-viewers", "")


def _server_has_read_everything(server_port: int, client_port: int) -> bool:
    """Whether the server process has read every byte the client sent on this connection.

    Daphne starts the request's handler in the same reactor step that reads its last byte,
    so from then on the request is in flight: no sleeping and hoping.
    """
    client_done = server_done = False
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, queues = fields[1], fields[2], fields[4]
        tx, rx = (int(q, 16) for q in queues.split(":"))
        local_port, remote_port = int(local.split(":")[1], 16), int(remote.split(":")[1], 16)
        if (local_port, remote_port) == (client_port, server_port):
            client_done = tx == 0
        if (local_port, remote_port) == (server_port, client_port):
            server_done = rx == 0
    return client_done and server_done


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net/tcp")
def test_sigterm_answers_the_webhook_in_flight_and_closes_sockets_with_1012(serve, session_cookie):
    server = serve()
    ident, message_id = uuid.uuid4(), uuid.uuid4()
    assert post(server, new_conversation(ident))[0] == 201
    answers: list[tuple[int, dict]] = []

    # Hold the conversation's write lock, so the webhook in flight cannot finish yet.
    with (
        agent_socket(server, session_cookie, f"conversation={ident}") as agent,
        transaction.atomic(),
    ):
        Conversation.objects.select_for_update().get(pk=ident)
        webhook = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_LIMIT * 3)
        webhook.connect()
        client_port = webhook.sock.getsockname()[1]

        def deliver() -> None:
            event = json.dumps(new_message(ident, message_id=message_id))
            webhook.request("POST", "/webhook/", event, {"Content-Type": "application/json"})
            response = webhook.getresponse()
            answers.append((response.status, json.loads(response.read())))

        delivery = threading.Thread(target=deliver)
        delivery.start()
        deadline = time.monotonic() + WAIT_LIMIT
        while not _server_has_read_everything(server.port, client_port):
            assert time.monotonic() < deadline, "the webhook never reached the server"
            time.sleep(0.01)

        server.process.send_signal(signal.SIGTERM)

        with pytest.raises(ConnectionClosed) as closed:
            agent.recv(timeout=WAIT_LIMIT)
        assert closed.value.rcvd is not None, "closed without a close frame"
        assert closed.value.rcvd.code == 1012
        deadline = time.monotonic() + WAIT_LIMIT
        while True:
            try:
                socket.create_connection(("127.0.0.1", server.port), 1).close()
            except ConnectionRefusedError:
                break
            assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
            time.sleep(0.05)
        assert server.process.poll() is None, "stopped with a webhook in flight"
        assert answers == []
    # The lock is released: the webhook completes, then the server stops on its own.

    delivery.join(WAIT_LIMIT * 2)
    assert answers and answers[0][0] == 201, server.output()
    assert Message.objects.filter(pk=message_id).exists()
    assert server.process.wait(WAIT_LIMIT) == 0, server.output()
    output = server.output()
    assert "Traceback" not in output
    assert "every request answered, every socket closed" in output


def test_sigterm_drains_keep_alive_clients_under_load(serve):
    """Providers and proxies keep connections open: the drain must not wait on them.

    Every request is either answered in full (and, if 201, stored) or refused before the
    server read it (and not stored); the server exits 0 well before SHUTDOWN_TIMEOUT.
    """
    shutdown_timeout = 6.0
    server = serve(SHUTDOWN_TIMEOUT=str(shutdown_timeout))
    answered: dict[uuid.UUID, int] = {}
    refused: list[uuid.UUID] = []
    lock = threading.Lock()

    def provider() -> None:
        # One persistent connection, reopened by http.client after a `Connection: close`.
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_LIMIT)
        while True:
            ident = uuid.uuid4()
            try:
                conn.request(
                    "POST",
                    "/webhook/",
                    json.dumps(new_conversation(ident)),
                    {"Content-Type": "application/json"},
                )
                response = conn.getresponse()
                response.read()
            except ConnectionRefusedError:
                return  # the port is closed: the drain is under way
            except (OSError, http.client.HTTPException):
                conn.close()
                with lock:
                    refused.append(ident)
                continue
            with lock:
                answered[ident] = response.status

    providers = [threading.Thread(target=provider) for _ in range(4)]
    for thread in providers:
        thread.start()
    deadline = time.monotonic() + WAIT_LIMIT
    while len(answered) < 40:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.05)

    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    status = server.process.wait(WAIT_LIMIT)
    took = time.monotonic() - signalled
    for thread in providers:
        thread.join(WAIT_LIMIT)

    assert status == 0, server.output()[-3000:]
    assert took < shutdown_timeout, f"took {took:.1f} s to drain"
    assert set(answered.values()) == {201}
    stored = set(Conversation.objects.values_list("pk", flat=True))
    assert stored == set(answered), "stored and answered differ: a request was cut off"
    assert "every request answered, every socket closed" in server.output()


def test_a_huge_message_keeps_its_viewers_connected(serve, session_cookie):
    """A 270 KB message of `<` escapes to over 1 MiB: pushed as its bubble, it closed every
    viewer whose client takes at most 1 MiB a frame (daphne's own limit, and `websockets`')."""
    server = serve()
    ident, huge, after = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert post(server, new_conversation(ident))[0] == 201
    with agent_socket(server, session_cookie, f"conversation={ident}") as viewing:
        event = new_message(ident, ts=1, message_id=huge, content="<" * 270_000)
        assert post(server, event)[0] == 201
        assert post(server, new_message(ident, ts=2, message_id=after))[0] == 201
        frames = []
        while not any(f'id="message-{after}"' in frame for frame in frames):
            frames.append(viewing.recv(timeout=WAIT_LIMIT))
        assert any("<!--live:refetch-->" in frame for frame in frames)
