"""inbox/channel_layer.py and the sockets on it: a real server on the real Redis.

- Idle sockets stay open: a blocking pop never times out the Redis connection under it.
- Readiness is answered while agents' sockets wait for pushes (the probe does not queue
  behind the layer's receive).
- A mass disconnect leaves no dead members in the groups, and a live socket's memberships
  are renewed before they expire.
"""

import http.client
import json
import time
import uuid
from contextlib import ExitStack

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from inbox.channel_layer import InboxChannelLayer
from tests.conftest import WAIT_LIMIT, Server

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def session_cookie(agent) -> str:
    client = Client()
    client.force_login(agent)
    return client.cookies["sessionid"].value


@pytest.fixture
def prefix() -> str:
    """A channel-layer prefix of the test's own on the shared Redis."""
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def redis_server(serve, redis_url, prefix) -> Server:
    return serve(REDIS_URL=redis_url, CHANNEL_LAYER_PREFIX=prefix)


def agent_socket(server: Server, cookie: str) -> ClientConnection:
    return connect(
        f"ws://127.0.0.1:{server.port}/ws/inbox/",
        additional_headers={"Cookie": f"sessionid={cookie}", "Origin": server.url},
        open_timeout=WAIT_LIMIT,
    )


def readyz(server: Server) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_LIMIT)
    try:
        conn.request("GET", "/readyz")
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def group_size(redis_url: str, prefix: str, group: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return client.zcard(f"{prefix}:group:{group}")
    finally:
        client.close()


def test_readyz_is_ok_while_an_agent_socket_waits_for_pushes(redis_server, session_cookie):
    """The probe once received on the layer, behind the lock an idle socket's receive holds
    for its whole blocking pop: every instance with an agent on it looked down."""
    with agent_socket(redis_server, session_cookie):
        for _ in range(3):
            status, body = readyz(redis_server)
            assert status == 200, body


def test_idle_sockets_stay_open_for_30_seconds(redis_server, session_cookie):
    """redis-py's read timeout once equalled channels-redis's blocking pop, so the read gave
    up first and every idle socket was closed with 1011 within about 5 s."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(agent_socket(redis_server, session_cookie)) for _ in "abc"]
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline:
                for sock in sockets:
                    with pytest.raises(TimeoutError):
                        sock.recv(timeout=max(0.01, min(1.0, deadline - time.monotonic())))
        except ConnectionClosed as closed:
            pytest.fail(f"an idle socket was closed: {closed.rcvd}\n{redis_server.output()}")
        assert readyz(redis_server)[0] == 200
    assert "Timeout reading" not in redis_server.output()


def test_a_read_timeout_within_the_blocking_pop_is_refused_at_start():
    with pytest.raises(ImproperlyConfigured, match="socket_timeout"):
        InboxChannelLayer(hosts=[{"address": "redis://127.0.0.1:6379/0", "socket_timeout": 2}])
