"""inbox/channel_layer.py and the sockets on it: a real server on the real Redis.

- Idle sockets stay open: a blocking pop never times out the Redis connection under it.
- Readiness is answered while agents' sockets wait for pushes (the probe does not queue
  behind the layer's receive).
- A mass disconnect leaves no dead members in the groups, and a live socket's memberships
  are renewed before they expire.
"""

import asyncio
import http.client
import json
import time
import uuid
from contextlib import ExitStack

import pytest
import redis
import redis.asyncio
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from websockets.asyncio.client import connect as async_connect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from inbox import live
from inbox.channel_layer import InboxChannelLayer
from tests.conftest import WAIT_LIMIT, Server
from tests.live.test_consumers import communicator

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


MANY = 400


def test_a_mass_disconnect_leaves_no_dead_members_in_the_groups(
    redis_server, redis_url, prefix, session_cookie
):
    """Closing 1,000 sockets at once once failed most of their `group_discard` calls (the
    pool had 100 connections and refused the rest), leaving dead members for 24 h that
    every later push was still sent to."""
    session_key = session_cookie
    groups = [live.AGENTS_GROUP, live.session_group(session_key)]

    async def scenario() -> None:
        gate = asyncio.Semaphore(50)

        async def open_one():
            async with gate:
                return await async_connect(
                    f"ws://127.0.0.1:{redis_server.port}/ws/inbox/",
                    additional_headers={
                        "Cookie": f"sessionid={session_cookie}",
                        "Origin": redis_server.url,
                    },
                    open_timeout=WAIT_LIMIT,
                )

        sockets = await asyncio.gather(*(open_one() for _ in range(MANY)))
        await asyncio.gather(*(sock.close() for sock in sockets))

    async_to_sync(scenario)()
    deadline = time.monotonic() + WAIT_LIMIT
    while time.monotonic() < deadline:
        sizes = {group: group_size(redis_url, prefix, group) for group in groups}
        if not any(sizes.values()):
            break
        time.sleep(0.2)
    assert sizes == dict.fromkeys(groups, 0), redis_server.output()[-2000:]


def test_a_live_sockets_memberships_are_renewed_before_they_expire(
    settings, redis_url, prefix, session_cookie
):
    """Groups expire (so a member whose discard was lost goes away by itself), but a socket
    that stays open keeps receiving: it renews its memberships well within the expiry."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "inbox.channel_layer.InboxChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": prefix, "group_expiry": 3},
        }
    }
    cookie = session_cookie

    async def scenario() -> None:
        socket = communicator(cookie=cookie)
        connected, _ = await socket.connect()
        assert connected
        await asyncio.sleep(5)  # past the expiry: only a renewed membership is still there
        layer = get_channel_layer()
        await layer.group_send(live.AGENTS_GROUP, {"type": "fragment", "html": {"en": "hi"}})
        assert await socket.receive_from(timeout=5) == "hi"
        await socket.disconnect()

    async_to_sync(scenario)()


def test_a_read_timeout_within_the_blocking_pop_is_refused_at_start():
    with pytest.raises(ImproperlyConfigured, match="socket_timeout"):
        InboxChannelLayer(hosts=[{"address": "redis://127.0.0.1:6379/0", "socket_timeout": 2}])


class FlakyDiscardLayer(InboxChannelLayer):
    """The layer on the real Redis, whose first `failures` discards fail as a refused
    connection does (a Redis restarting, a pool with no free connection)."""

    failures = 2

    async def group_discard(self, group: str, channel: str) -> None:
        if FlakyDiscardLayer.failures > 0:
            FlakyDiscardLayer.failures -= 1
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379.")
        await super().group_discard(group, channel)


@pytest.mark.parametrize("failures", [2, 100])
def test_a_failed_discard_is_retried_and_never_raised(
    settings, redis_url, prefix, session_cookie, failures, caplog
):
    """Two failures: the retries remove the membership. Every attempt failing: disconnect
    still ends cleanly (the expiry removes the membership later) and says so in the log."""
    FlakyDiscardLayer.failures = failures
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "tests.live.test_channel_layer.FlakyDiscardLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": prefix},
        }
    }

    async def scenario() -> None:
        socket = communicator(f"conversation={uuid.uuid4()}", cookie=session_cookie)
        connected, _ = await socket.connect()
        assert connected
        await socket.disconnect(timeout=10)  # the retries take a few seconds

    async_to_sync(scenario)()
    left = group_size(redis_url, prefix, live.AGENTS_GROUP)
    if failures == 2:
        assert left == 0
        assert group_size(redis_url, prefix, live.session_group(session_cookie)) == 0
    else:
        assert left == 1
        assert any("could not leave" in r.getMessage() for r in caplog.records)
