"""Coalesced pushes: a burst of events reaches a watching page as a few frames holding the
final state, never as one frame per event and never going back to an older state.

On SQLite the burst is one group commit (inbox/writer.py), pushed as one batch; on Redis the
sender also gathers what commits within its tick (inbox/live/publish.py). On PostgreSQL with
the in-process layer each delivery is its own transaction and is pushed inline, one batch
each, so there only Redis (as deployed) is asked to coalesce.
"""

import asyncio
import json
import re
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.testing import HttpCommunicator
from django.db import connection

from inbox import live, writer
from inbox.models import Conversation, Message
from project.asgi import application
from tests.conftest import new_conversation, new_message
from tests.intake.test_group_commit import writer_busy
from tests.live.test_consumers import communicator, run

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS = 100
VERSION = re.compile(r'data-live-version="(\d+)"')
ROW = re.compile(r'<li id="conversation-.*?</li>', re.S)
UNREAD = re.compile(r' data-unread="(?:true|false)"')
PLACEMENT = re.compile(r' (hx-swap-oob|data-live-key|data-live-version)="[^"]*"')
JSON = [(b"content-type", b"application/json"), (b"host", b"127.0.0.1")]


@pytest.fixture(params=["memory", "redis"])
def layer(request, settings) -> str:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "inbox.channel_layer.InboxChannelLayer",
                "CONFIG": {"hosts": [url], "prefix": f"test-{uuid.uuid4().hex[:8]}"},
            }
        }
    elif connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's deliveries are separate transactions, pushed inline each")
    else:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return request.param


async def frames_until_quiet(socket) -> list[str]:
    frames = []
    if await socket.receive_nothing(timeout=5):
        return frames
    while not await socket.receive_nothing(timeout=0.5):
        frames.append(await socket.receive_from())
    return frames


def test_a_burst_to_one_conversation_arrives_as_few_frames_with_the_final_state(
    layer, agent_client, post_event
):
    cookie = agent_client.cookies["sessionid"].value
    ident = uuid.uuid4()
    assert post_event(new_conversation(ident)).status_code == 201
    assert live.wait_until_sent(timeout=10)
    ids = [uuid.uuid4() for _ in range(EVENTS)]
    bodies = [
        json.dumps(
            new_message(ident, ts=1 + n, message_id=m, content=f"<b>parte {n}</b> & fim")
        ).encode()
        for n, m in enumerate(ids)
    ]

    async def scenario():
        listing = communicator("status=all", cookie=cookie)
        thread = communicator(f"status=all&conversation={ident}", cookie=cookie)
        assert (await listing.connect())[0] and (await thread.connect())[0]
        # Posted through the ASGI application, as daphne does: each request in a thread of
        # its own, the pushes back on this loop, where the sockets are.
        posts = [
            HttpCommunicator(application, "POST", "/webhook/", body=body, headers=JSON)
            for body in bodies
        ]
        with writer_busy() as until_waiting:
            answers = [asyncio.ensure_future(p.get_response(timeout=60)) for p in posts]
            await sync_to_async(until_waiting, thread_sensitive=False)(EVENTS)
        statuses = [answer["status"] for answer in await asyncio.gather(*answers)]
        assert statuses == [201] * EVENTS
        # On Redis the pushes leave from the sender's thread, after the answers.
        assert await sync_to_async(live.wait_until_sent, thread_sensitive=False)(10)
        rows = [f for f in await frames_until_quiet(listing) if f'conversation-{ident}"' in f]
        bubbles = await frames_until_quiet(thread)
        await listing.disconnect()
        await thread.disconnect()
        return rows, bubbles

    rows, bubbles = run_returning(scenario)

    # Fewer frames than events: the burst was gathered, not sent event by event (on SQLite
    # one batch per group commit, of at most MAX_GROUP deliveries).
    assert 0 < len(rows) < EVENTS, len(rows)
    if connection.vendor == "sqlite":
        assert len(rows) <= -(-EVENTS // writer.MAX_GROUP), len(rows)
    # Never an older state after a newer one.
    versions = [int(VERSION.search(row).group(1)) for row in rows]
    assert versions == sorted(versions)
    # The last row shows the final state, as one-by-one delivery would have left it (moved
    # to the top or updated in place, as its group held the newest message or not).
    final = Conversation.objects.get(pk=ident)
    assert final.message_count == EVENTS
    expected = live.row_event(final, version=versions[-1], to_top=True)["show"]["en"]
    assert the_row(rows[-1]) == the_row(expected)
    # Every received message is counted once for the title, none missed.
    received = [m for row in rows for m in re.findall(r"<!--live:received ([0-9a-f-]+)-->", row)]
    assert sorted(received) == sorted(str(m) for m in ids)
    # Every bubble arrives, escaped: nothing of the content is markup.
    shown = [m for frame in bubbles for m in re.findall(r'id="message-([0-9a-f-]+)"', frame)]
    assert set(shown) == {str(m) for m in ids}
    text = "".join(bubbles)
    assert "<b>parte" not in text and "&lt;b&gt;parte 0&lt;/b&gt; &amp; fim" in text
    assert Message.objects.filter(conversation_id=ident).count() == EVENTS


def the_row(frame: str) -> str:
    """The list item a row frame shows, without how it is placed or numbered, nor whether it
    is unread: each socket sets that for its own agent (README, "Triage"), and the viewing
    socket of this test reads what it is pushed while the listing one may not have yet."""
    row = UNREAD.sub("", ROW.search(frame).group())
    return " ".join(PLACEMENT.sub("", row).split())


def run_returning(scenario):
    result = []

    async def wrapped():
        result.append(await scenario())

    run(wrapped)
    return result[0]
