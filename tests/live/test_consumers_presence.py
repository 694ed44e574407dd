"""Presence through the socket (README, "Triage", Presence): who else has a thread open, and
who is typing in it, on the in-memory layer and on Redis. Ephemeral: never numbered, never a
resync, no query, and best-effort when the layer fails."""

import asyncio
import json
import logging
import time
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db.backends.utils import CursorWrapper

from inbox import consumers, live
from inbox.live import presence
from tests import factories, markup
from tests.conftest import new_conversation, new_message
from tests.live.test_consumers import communicator, layer, post_event, received_all, run  # noqa: F401
from tests.live.test_consumers_triage import cookie_of

pytestmark = pytest.mark.django_db(transaction=True)

# Seconds a scenario waits for a line it expects (Redis in CI may be slow).
WAIT = 5.0


class Frames:
    """One socket's frames as its page gets them: the presence line it shows now."""

    def __init__(self, socket: WebsocketCommunicator) -> None:
        self.socket = socket
        self.seen: list[str] = []
        self.line = None

    async def until(self, wanted, timeout: float = WAIT):
        """Reads frames until the presence line satisfies `wanted` (a predicate on the
        <p id="presence"> element); that element."""
        deadline = time.monotonic() + timeout
        while self.line is None or not wanted(self.line):
            left = deadline - time.monotonic()
            assert left > 0, f"the line never came; last: {self.line}"
            try:
                frame = await self.socket.receive_from(timeout=left)
            except TimeoutError:
                continue
            self.seen.append(frame)
            found = markup.by_id(frame, "presence")
            if found is not None:
                self.line = found
        return self.line

    async def quiet(self, timeout: float = 1.0) -> list[str]:
        """The frames until the socket goes quiet for `timeout` seconds."""
        frames = []
        while not await self.socket.receive_nothing(timeout=timeout):
            frame = await self.socket.receive_from()
            frames.append(frame)
            found = markup.by_id(frame, "presence")
            if found is not None:
                self.line = found
        self.seen += frames
        return frames


def viewers(username_list: str):
    return lambda line: line["data-viewers"] == username_list


def typing(username_list: str):
    return lambda line: line["data-typing"] == username_list


@pytest.fixture
def thread(post_event) -> uuid.UUID:  # noqa: F811
    ident = uuid.uuid4()
    post_event(new_conversation(ident))
    return ident


@pytest.fixture
def cookies(db) -> dict[str, str]:
    ana = factories.agent("ana")
    ana.first_name = "Ana"
    ana.save()
    bea = factories.agent("bea")
    bea.first_name, bea.last_name = "Beatriz", "Lima"
    bea.save()
    caio = factories.agent("caio")
    return {user.username: cookie_of(user) for user in (ana, bea, caio)}


async def opened(query: str, cookie: str) -> Frames:
    socket = communicator(query, cookie=cookie)
    assert (await socket.connect())[0]
    return Frames(socket)


def test_two_agents_in_a_thread_see_each_other_and_never_themselves(layer, thread, cookies):  # noqa: F811
    async def scenario():
        bea = await opened(f"conversation={thread}", cookies["bea"])
        # Alone in it: nothing to say, and nothing sent (the page starts with an empty line).
        assert await bea.socket.receive_nothing(timeout=0.5)
        ana = await opened(f"conversation={thread}", cookies["ana"])
        line = await bea.until(viewers("ana"))
        assert "Ana is also viewing" in line.get_text()
        # Ana learns who was already there from Bea's answer, by her full name.
        line = await ana.until(viewers("bea"))
        assert "Beatriz Lima is also viewing" in line.get_text()
        assert line["data-conversation-id"] == str(thread)

        # A second tab of Ana's counts once; a third agent sees both, by name.
        ana_again = await opened(f"conversation={thread}", cookies["ana"])
        caio = await opened(f"conversation={thread}", cookies["caio"])
        line = await caio.until(viewers("ana,bea"))
        assert "Ana, Beatriz Lima are also viewing" in line.get_text()
        await bea.until(viewers("ana,caio"))
        await ana_again.until(viewers("bea,caio"))

        # One of Ana's tabs closes: she is still there; the other closes: she is gone.
        await ana_again.socket.disconnect()
        await bea.quiet()
        assert bea.line["data-viewers"] == "ana,caio"
        await ana.socket.disconnect()
        await bea.until(viewers("caio"))
        # Caio goes to the list: he left the thread.
        await caio.socket.send_to(text_data=json.dumps({"type": "view", "conversation": ""}))
        line = await bea.until(viewers(""))
        assert line.get_text() == ""
        # Presence is not numbered: none of it made a page refetch.
        assert not any(consumers.RESYNC in frame for frame in bea.seen + caio.seen)
        for socket in (bea, caio):
            await socket.socket.disconnect()

    run(scenario)


def test_a_socket_following_the_agent_to_another_thread_moves_its_presence(
    layer,  # noqa: F811
    thread,
    post_event,  # noqa: F811
    cookies,
):
    other = uuid.uuid4()
    post_event(new_conversation(other))

    async def scenario():
        bea = await opened(f"conversation={thread}", cookies["bea"])
        bea_there = await opened(f"conversation={other}", cookies["bea"])
        ana = await opened(f"conversation={thread}", cookies["ana"])
        await bea.until(viewers("ana"))
        await ana.socket.send_to(text_data=json.dumps({"type": "view", "conversation": str(other)}))
        await bea.until(viewers(""))
        line = await bea_there.until(viewers("ana"))
        assert line["data-conversation-id"] == str(other)
        # Ana's line is the new thread's, with Bea's other tab there.
        line = await ana.until(lambda line: line["data-conversation-id"] == str(other))
        await ana.until(viewers("bea"))
        for socket in (bea, bea_there, ana):
            await socket.socket.disconnect()

    run(scenario)


def test_typing_shows_to_the_others_and_clears(layer, thread, cookies, monkeypatch):  # noqa: F811
    monkeypatch.setattr(presence, "TYPING_FOR", 1.5)

    async def scenario():
        bea = await opened(f"conversation={thread}", cookies["bea"])
        ana = await opened(f"conversation={thread}", cookies["ana"])
        await bea.until(viewers("ana"))
        await ana.socket.send_to(text_data=json.dumps({"type": "typing", "typing": True}))
        line = await bea.until(typing("ana"))
        assert line.get_text() == "Ana is typing a reply…"
        assert line["data-viewers"] == "ana"
        # Ana never sees herself typing.
        await ana.quiet(timeout=0.5)
        assert ana.line["data-typing"] == ""

        # Without a new `typing`, it clears by itself.
        started = time.monotonic()
        line = await bea.until(typing(""))
        assert time.monotonic() - started > 0.5
        assert line.get_text() == "Ana is also viewing"

        # Sent (the page says it stopped): cleared at once.
        await asyncio.sleep(presence.TYPING_MIN_INTERVAL)
        await ana.socket.send_to(text_data=json.dumps({"type": "typing", "typing": True}))
        await bea.until(typing("ana"))
        await ana.socket.send_to(text_data=json.dumps({"type": "typing", "typing": False}))
        started = time.monotonic()
        await bea.until(typing(""))
        assert time.monotonic() - started < 1.0

        # The typist's socket closes: gone, typing and all.
        await asyncio.sleep(presence.TYPING_MIN_INTERVAL)
        await ana.socket.send_to(text_data=json.dumps({"type": "typing"}))
        await bea.until(typing("ana"))
        await ana.socket.disconnect()
        line = await bea.until(viewers(""))
        assert line["data-typing"] == ""
        await bea.socket.disconnect()

    run(scenario)


NOISE = [
    "not json",
    '{"type": "typing"',
    "[]",
    '"typing"',
    '{"type": "typing", "typing": "yes"}',
    '{"type": "typing", "typing": 1}',
    '{"type": "typing", "typing": null}',
    '{"type": "typing", "typing": {"a": 1}}',
    json.dumps({"type": "typing", "typing": True, "pad": "x" * 10_000}),
    "x" * 200_000,
]


def test_malformed_and_oversized_typing_is_ignored_and_the_socket_stays_open(
    layer,  # noqa: F811
    thread,
    post_event,  # noqa: F811
    cookies,
):
    async def scenario():
        bea = await opened(f"conversation={thread}", cookies["bea"])
        ana = await opened(f"conversation={thread}", cookies["ana"])
        await bea.until(viewers("ana"))
        for noise in NOISE:
            await ana.socket.send_to(text_data=noise)
        await ana.socket.send_to(bytes_data=b'{"type": "typing"}')
        await bea.quiet()
        assert bea.line["data-typing"] == ""
        # Both still open and live: a push reaches them, and typing works.
        assert (await sync_to_async(post_event)(new_message(thread))).status_code == 201
        for socket in (ana, bea):
            assert "data-direction" in "".join(await socket.quiet())
        await ana.socket.send_to(text_data='{"type": "typing"}')
        await bea.until(typing("ana"))
        for socket in (ana, bea):
            await socket.socket.disconnect()

    run(scenario)


async def heard_until_quiet(channel_layer, channel: str) -> list[dict]:
    """Every message the channel gets until half a second passes without one."""
    heard = []
    while True:
        try:
            async with asyncio.timeout(0.5):
                heard.append(await channel_layer.receive(channel))
        except TimeoutError:
            return heard


def test_a_flood_of_typing_is_throttled_per_socket(layer, thread, cookies):  # noqa: F811
    group = live.conversation_group(thread)

    async def scenario():
        channel_layer = get_channel_layer()
        # A listener in the thread's group, as another process's socket would be.
        listener = await channel_layer.new_channel()
        await channel_layer.group_add(group, listener)
        ana = await opened(f"conversation={thread}", cookies["ana"])
        started = time.monotonic()
        for _ in range(50):
            await ana.socket.send_to(text_data='{"type": "typing"}')
        await ana.quiet(timeout=0.5)
        assert time.monotonic() - started < presence.TYPING_MIN_INTERVAL
        heard = await heard_until_quiet(channel_layer, listener)
        kinds = [message["type"] for message in heard]
        assert kinds == [presence.HERE, presence.TYPING]
        assert heard[0]["ask"] is True
        # Starting and stopping in a flood: a few pass at once, then no more.
        for n in range(50):
            await ana.socket.send_to(text_data=json.dumps({"type": "typing", "typing": n % 2 == 1}))
        await ana.quiet(timeout=0.5)
        assert time.monotonic() - started < presence.TYPING_MIN_INTERVAL * 2
        heard = await heard_until_quiet(channel_layer, listener)
        assert 1 <= len(heard) <= presence.TYPING_BURST
        assert {message["type"] for message in heard} == {presence.TYPING}
        await ana.socket.disconnect()
        await channel_layer.group_discard(group, listener)

    run(scenario)


def test_a_viewer_not_heard_from_is_forgotten(layer, thread, cookies, monkeypatch):  # noqa: F811
    """A socket of a process that crashed never says `gone`: it expires."""
    monkeypatch.setattr(presence, "FORGET_AFTER", 1.5)

    async def scenario():
        bea = await opened(f"conversation={thread}", cookies["bea"])
        channel_layer = get_channel_layer()
        await channel_layer.group_send(
            live.conversation_group(thread),
            {
                "type": presence.HERE,
                "group": live.conversation_group(thread),
                "channel": "inbox.crashed!abc",
                "agent": 999,
                "username": "zed",
                "name": "Zed",
                "ask": False,
                "typing": False,
            },
        )
        await bea.until(viewers("zed"))
        started = time.monotonic()
        await bea.until(viewers(""))
        assert time.monotonic() - started > 0.5
        # Malformed presence from another process is dropped, the socket carries on.
        await channel_layer.group_send(
            live.conversation_group(thread), {"type": presence.HERE, "group": 1}
        )
        assert await bea.socket.receive_nothing(timeout=0.5)
        await bea.socket.disconnect()

    run(scenario)


def test_names_are_escaped(layer, thread, db):  # noqa: F811
    mallory = factories.agent("mallory")
    mallory.first_name = "<img src=x onerror=alert(1)>"
    mallory.save()
    bea = factories.agent("bea")

    async def scenario():
        watching = await opened(f"conversation={thread}", await sync_to_async(cookie_of)(bea))
        mallorys = await opened(f"conversation={thread}", await sync_to_async(cookie_of)(mallory))
        await mallorys.socket.send_to(text_data='{"type": "typing"}')
        line = await watching.until(typing("mallory"))
        assert line.find("img") is None
        assert line.get_text() == "<img src=x onerror=alert(1)> is typing a reply…"
        assert "&lt;img src=x onerror=alert(1)&gt;" in watching.seen[-1]
        for socket in (watching, mallorys):
            await socket.socket.disconnect()

    run(scenario)


def test_presence_costs_no_query(layer, thread, cookies, monkeypatch):  # noqa: F811
    # Every statement of every connection, whatever thread the consumers' database calls
    # run in (a test's CaptureQueriesContext sees its own thread's connection only).
    queries: list[str] = []
    execute = CursorWrapper._execute_with_wrappers

    def counted(self, sql, *args, **kwargs):
        queries.append(sql)
        return execute(self, sql, *args, **kwargs)

    monkeypatch.setattr(CursorWrapper, "_execute_with_wrappers", counted)

    async def scenario():
        bea = await opened(f"conversation={thread}", cookies["bea"])
        ana = await opened(f"conversation={thread}", cookies["ana"])
        await bea.until(viewers("ana"))
        queries.clear()
        await ana.socket.send_to(text_data='{"type": "typing"}')
        await bea.until(typing("ana"))
        await ana.socket.send_to(text_data='{"type": "typing", "typing": false}')
        await bea.until(typing(""))
        assert queries == []
        # A socket that opens on the thread costs what one on the list costs.
        on_list = await opened("", cookies["caio"])
        for_list, queries[:] = len(queries), []
        caio = await opened(f"conversation={thread}", cookies["caio"])
        await bea.until(viewers("ana,caio"))
        await ana.until(viewers("bea,caio"))
        assert len(queries) == for_list, queries
        for socket in (ana, bea, caio, on_list):
            await socket.socket.disconnect()

    run(scenario)


def test_the_pt_br_line_counts_its_agents():
    thread = uuid.uuid4()
    line = live.presence_html(
        conversation_id=str(thread),
        viewing=[presence.Agent("ana", "Ana"), presence.Agent("bea", "Bea")],
        typing=[presence.Agent("bea", "Bea")],
        language="pt-br",
    )
    assert (
        markup.by_id(line, "presence").get_text()
        == "Ana também está vendo · Bea está digitando uma resposta…"
    )
    line = live.presence_html(
        conversation_id=str(thread),
        viewing=[presence.Agent("ana", "Ana"), presence.Agent("bea", "Bea")],
        typing=[],
        language="pt-br",
    )
    assert markup.by_id(line, "presence").get_text() == "Ana, Bea também estão vendo"


class PresenceRefusingLayer(InMemoryChannelLayer):
    """An in-memory layer whose presence sends fail, as a Redis that went down fails them
    (the pushes, sent from the server's sender, are that layer's own concern)."""

    async def send(self, channel, message):
        if message.get("type") in presence.TYPES:
            raise ConnectionError("the channel layer is down")
        await super().send(channel, message)

    async def group_send(self, group, message):
        if message.get("type") in presence.TYPES:
            raise ConnectionError("the channel layer is down")
        await super().group_send(group, message)


def test_a_failing_layer_costs_presence_only(settings, thread, post_event, cookies, caplog):  # noqa: F811
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "tests.live.test_consumers_presence.PresenceRefusingLayer"}
    }

    async def scenario():
        with caplog.at_level(logging.WARNING, logger="inbox.consumers"):
            bea = await opened(f"conversation={thread}", cookies["bea"])
            for _ in range(3):
                await bea.socket.send_to(text_data='{"type": "typing"}')
                await bea.socket.send_to(text_data='{"type": "typing", "typing": false}')
            assert (await sync_to_async(post_event)(new_message(thread))).status_code == 201
            assert "data-direction" in "".join(await bea.quiet())
            await bea.socket.disconnect()
        warned = [r for r in caplog.records if "presence not sent" in r.getMessage()]
        assert len(warned) == 1

    run(scenario)
