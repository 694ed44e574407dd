"""inbox/channel_layer.py and the sockets on it: a real server on the real Redis.

- Idle sockets stay open: a blocking pop never times out the Redis connection under it.
- Readiness is answered while agents' sockets wait for pushes (the probe does not queue
  behind the layer's receive).
- A mass disconnect leaves no dead members in the groups, and a live socket's memberships
  are renewed before they expire.
"""

import http.client
import json
import uuid

import pytest
import redis
from django.test import Client
from websockets.sync.client import ClientConnection, connect

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
