"""No agent is left silently behind: a burst on two real server processes and Redis, five sockets.

Each socket is read as the page reads it (static/inbox/live.js): pushed rows are applied, and
the resync marker makes it refetch the list (one refetch at a time, one more if asked during
it), here following the list's "More conversations" pages as an agent scrolling would. When
every event is answered, each socket must have every conversation, by push or by refetch:
channels-redis drops a socket's messages over its capacity, and before the sockets learned
of it 16-46% of the rows never reached the pages.
"""

import asyncio
import contextlib
import http.client
import json
import signal
import uuid
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser

import pytest
from django.test import Client
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as async_connect

from inbox.consumers import RESYNC
from tests.conftest import WAIT_LIMIT, Server, new_conversation, sign

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SECRET = "a-webhook-secret-for-the-burst"
# One NEW_CONVERSATION each: a row is pushed once, so a row whose push was dropped can only
# come back by refetch (with a second event per row, its next push would hide the loss).
CONVERSATIONS = 2_000
SOCKETS = 5
SENDERS = 8
PAUSE = 1.5  # seconds the sockets' process is stopped, during the burst


class ListRows(HTMLParser):
    """The conversation rows in a page or a pushed frame, and the list's next page link."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.more: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        ident = attributes.get("id") or ""
        if tag == "li" and ident.startswith("conversation-"):
            self.ids.add(ident.removeprefix("conversation-"))
        elif tag == "li" and ident == "list-more":
            # What htmx fetches when the agent scrolls to it: the next rows only.
            self.more = attributes.get("hx-get")


def rows_in(html: str) -> ListRows:
    parser = ListRows()
    parser.feed(html)
    parser.close()
    return parser


def fetch_list(server: Server, cookie: str) -> set[str]:
    """Every row the list shows: the page, as the page refetches it, then the rows it loads
    as the agent scrolls to the end."""
    ids: set[str] = set()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_LIMIT)
    try:
        path: str | None = "/"
        headers = {"Cookie": f"sessionid={cookie}"}
        while path:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read().decode()
            assert response.status == 200, body[:500]
            page = rows_in(body)
            ids |= page.ids
            path = page.more
            headers = {**headers, "HX-Request": "true"}
    finally:
        conn.close()
    return ids


class Agent:
    """One socket, and what its page would show."""

    def __init__(self, socket: ClientConnection, server: Server, cookie: str) -> None:
        self.socket, self.server, self.cookie = socket, server, cookie
        self.pushed: set[str] = set()
        self.refetched: set[str] = set()
        self.resyncs = 0
        self._refetch: asyncio.Task | None = None
        self._again = False

    @property
    def rows(self) -> set[str]:
        return self.pushed | self.refetched

    async def read(self) -> None:
        async for frame in self.socket:
            if RESYNC in frame:
                self.resyncs += 1
                self._ask_refetch()
            self.pushed |= rows_in(frame).ids

    def _ask_refetch(self) -> None:
        if self._refetch is not None and not self._refetch.done():
            self._again = True
            return
        self._refetch = asyncio.create_task(self._refetching())

    async def _refetching(self) -> None:
        while True:
            self._again = False
            self.refetched |= await asyncio.to_thread(fetch_list, self.server, self.cookie)
            if not self._again:
                return

    async def caught_up(self, expected: set[str]) -> None:
        while not expected <= self.rows or (self._refetch and not self._refetch.done()):
            await asyncio.sleep(0.1)


def post_all(server: Server, events: list[list[dict]]) -> list[int]:
    """Each conversation's events in order on one keep-alive connection per sender."""

    def send(pairs: list[list[dict]]) -> list[int]:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_LIMIT)
        statuses = []
        try:
            for pair in pairs:
                for event in pair:
                    body = json.dumps(event).encode()
                    headers = {
                        "Content-Type": "application/json",
                        "X-Hub-Signature-256": sign(body, SECRET),
                    }
                    conn.request("POST", "/webhook/", body, headers)
                    response = conn.getresponse()
                    response.read()
                    statuses.append(response.status)
        finally:
            conn.close()
        return statuses

    shares = [events[i::SENDERS] for i in range(SENDERS)]
    with ThreadPoolExecutor(SENDERS) as pool:
        return [status for statuses in pool.map(send, shares) for status in statuses]


def test_every_socket_ends_with_every_row_after_a_burst(serve, redis_url, agent):
    client = Client()
    client.force_login(agent)
    cookie = client.cookies["sessionid"].value
    settings = {
        "REDIS_URL": redis_url,
        "CHANNEL_LAYER_PREFIX": f"test-{uuid.uuid4().hex[:8]}",
        "WEBHOOK_SECRET": SECRET,
        # Few waiting messages per socket, so the stopped consumers below overflow within
        # a few of the sender's ticks, however fast the machine is.
        "CHANNEL_LAYER_CAPACITY": "5",
    }
    # Two processes on one Redis, as scaled out: the webhooks go to one, the sockets are
    # held by the other. The sockets' process is stopped (SIGSTOP) for PAUSE seconds in
    # the burst: its consumers read nothing meanwhile, their channels fill and channels-redis
    # drops what comes over the capacity, as it does for a socket that cannot keep up.
    server = serve(**settings)
    sockets_server = serve(**settings)
    idents = [uuid.uuid4() for _ in range(CONVERSATIONS)]
    events = [[new_conversation(i, ts=0)] for i in idents]
    expected = {str(i) for i in idents}

    async def scenario() -> list[Agent]:
        agents = []
        for _ in range(SOCKETS):
            socket = await async_connect(
                f"ws://127.0.0.1:{sockets_server.port}/ws/inbox/",
                additional_headers={
                    "Cookie": f"sessionid={cookie}",
                    "Origin": sockets_server.url,
                },
                open_timeout=WAIT_LIMIT,
                max_size=None,
            )
            agents.append(Agent(socket, sockets_server, cookie))
        # A socket is in its groups once open (the consumer joins before it accepts).
        readers = [asyncio.create_task(agent.read()) for agent in agents]
        posting = asyncio.create_task(asyncio.to_thread(post_all, server, events))
        await asyncio.sleep(1)
        # Shorter than the margin of the layer's Redis read timeout over its blocking pop
        # (inbox/channel_layer.py): a longer pause would time the consumers' reads out.
        sockets_server.process.send_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(PAUSE)
        finally:
            sockets_server.process.send_signal(signal.SIGCONT)
        statuses = await posting
        assert statuses == [201] * len(statuses), server.output()[-3000:]
        assert len(statuses) == CONVERSATIONS
        # A bound only against hanging: the last sync tail comes 5 s after the burst.
        # (What each socket lacks is reported below.)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(agent.caught_up(expected) for agent in agents)),
                WAIT_LIMIT,
            )
        for reader in readers:
            reader.cancel()
        for agent in agents:
            await agent.socket.close()
        return agents

    agents = asyncio.run(scenario())
    for number, agent in enumerate(agents):
        missing = expected - agent.rows
        assert not missing, (
            f"socket {number} never showed {len(missing)} of {CONVERSATIONS} conversations "
            f"({len(agent.pushed)} pushed, {agent.resyncs} resyncs)"
        )
    # Else the test would not be testing what it says: each socket lost pushes, and rows
    # reached the pages only because they refetched.
    assert all(agent.resyncs for agent in agents), [agent.resyncs for agent in agents]
    assert any(expected - agent.pushed for agent in agents), "no push was lost"
