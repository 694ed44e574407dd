"""inbox/live/: what a committed write pushes, and that a failed push never fails a write."""

import uuid
from collections.abc import Callable
from html.parser import HTMLParser

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction

from inbox import live
from inbox.live import fragments
from inbox.models import Conversation, Message
from tests.conftest import close_conversation, free_port, new_conversation, new_message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def unreachable_redis(settings):
    closed_port = free_port()
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "inbox.channel_layer.InboxChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{closed_port}/0"]},
        }
    }


@pytest.fixture
def memory_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def agents_group(memory_layer) -> Callable:
    """A channel in the agents' group; returns a function draining what was pushed to it."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(live.AGENTS_GROUP, channel)

    def drain() -> list[dict]:
        """The rows of the batches pushed so far, in order (each batch also ends with the
        tabs' counts, tested on their own)."""
        # The in-memory layer's queue, read without waiting (its API only has a blocking get).
        queue = layer.channels.get(channel)
        items = []
        while queue is not None and not queue.empty():
            batch = queue.get_nowait()[1]
            assert batch["type"] == "live.batch"
            items += [item for item in batch["items"] if item["type"] == "row.changed"]
        return items

    return drain


def test_the_webhook_stores_and_answers_when_redis_is_down(unreachable_redis, post_event, caplog):
    ident, message_id = uuid.uuid4(), uuid.uuid4()
    assert post_event(new_conversation(ident)).status_code == 201
    assert post_event(new_message(ident, message_id=message_id)).status_code == 201
    assert post_event(close_conversation(ident)).status_code == 200
    assert Conversation.objects.get(pk=ident).status == "CLOSED"
    assert Message.objects.filter(pk=message_id).exists()
    # The pushes go out from the sender's thread, after the answers.
    assert live.wait_until_sent(timeout=10)
    failures = [
        r for r in caplog.records if r.name == "inbox.live.publish" and r.levelname == "ERROR"
    ]
    assert failures, "a failed push must be logged"
    assert "could not push" in failures[0].getMessage()
    assert failures[0].exc_info, "the first failure is logged with its traceback"


def test_a_write_that_rolls_back_pushes_nothing(agents_group, post_event):
    ident = uuid.uuid4()
    post_event(new_conversation(ident))
    post_event(close_conversation(ident, ts=10))
    assert [m["status"] for m in agents_group()] == ["OPEN", "CLOSED"]
    # Refused (409): the insert is rolled back, so no bubble and no row may be pushed.
    assert post_event(new_message(ident, ts=20)).status_code == 409
    assert agents_group() == []


def join(group: str, sockets: int) -> None:
    """`sockets` channels in `group`, as that many open pages would be."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    for _ in range(sockets):
        async_to_sync(layer.group_add)(group, async_to_sync(layer.new_channel)())


@pytest.fixture
def count_renders(monkeypatch) -> list[str]:
    """The partials the live layer renders, by name, as they are rendered."""
    rendered = []
    original = fragments.render_to_string

    def counting(name: str, context: dict) -> str:
        rendered.append(name)
        return original(name, context)

    monkeypatch.setattr(fragments, "render_to_string", counting)
    return rendered


@pytest.fixture
def stored_message(memory_layer, post_event) -> tuple[uuid.UUID, uuid.UUID]:
    """A conversation and one message in it, stored through the webhook: their ids."""
    ident = uuid.uuid4()
    post_event(new_conversation(ident))
    message = new_message(ident)
    post_event(message)
    return ident, uuid.UUID(message["data"]["id"])


def test_each_event_is_rendered_once_whatever_the_audience(
    stored_message, count_renders, django_assert_max_num_queries
):
    ident, message_id = stored_message
    join(live.AGENTS_GROUP, 5)
    join(live.conversation_group(ident), 3)
    count_renders.clear()
    # The conversations, the messages, the bubble's place and the tabs' counts.
    with django_assert_max_num_queries(4):
        live.message_added(message_id, ident)
    # Once per language the inbox speaks, however many sockets will get it (the counts are
    # numbers, the same in every language).
    languages = len(settings.LANGUAGES)
    assert sorted(count_renders) == sorted(
        ["inbox/_pushed.html#row", "inbox/_pushed.html#bubble", "inbox/_pushed.html#header"]
        * languages
        + ["inbox/_pushed.html#removed", "inbox/_pushed.html#counts"]
    )
    count_renders.clear()
    with django_assert_max_num_queries(2):
        live.conversation_changed(ident)
    assert sorted(count_renders) == sorted(
        ["inbox/_pushed.html#header", "inbox/_pushed.html#row"] * languages
        + ["inbox/_pushed.html#removed", "inbox/_pushed.html#counts"]
    )


def test_nothing_is_rendered_for_a_group_without_sockets(
    stored_message, count_renders, django_assert_max_num_queries
):
    ident, message_id = stored_message
    count_renders.clear()
    # No agent online: no query, no render.
    with django_assert_max_num_queries(0):
        live.message_added(message_id, ident)
    assert count_renders == []
    # Agents online, nobody on this thread: the row, not the bubble.
    join(live.AGENTS_GROUP, 2)
    live.message_added(message_id, ident)
    assert set(count_renders) == {
        "inbox/_pushed.html#row",
        "inbox/_pushed.html#removed",
        "inbox/_pushed.html#counts",
    }


def test_a_received_message_is_marked_for_the_title_counter(agents_group, post_event):
    ident = uuid.uuid4()
    post_event(new_conversation(ident))
    received, sent = uuid.uuid4(), uuid.uuid4()
    agents_group()
    post_event(new_message(ident, ts=1, message_id=received, direction="RECEIVED"))
    post_event(new_message(ident, ts=2, message_id=sent, direction="SENT"))
    rows = agents_group()
    assert len(rows) == 2
    assert f"<!--live:received {received}-->" in rows[0]["show"]["en"]
    assert f"<!--live:received {received}-->" in rows[0]["hide"]
    assert "live:received" not in rows[1]["show"]["en"]


def test_content_is_escaped_in_what_is_pushed(agents_group, post_event):
    ident = uuid.uuid4()
    post_event(new_conversation(ident))
    agents_group()
    post_event(new_message(ident, content='<script>alert("x")</script>'))
    (row,) = agents_group()
    assert "<script>" not in row["show"]["en"]
    assert "&lt;script&gt;" in row["show"]["en"]


# A message of ~270 KB of `<`: well inside the webhook's 1 MiB, four times that once
# escaped (`&lt;`), past the 1 MiB that daphne, and clients like it, take in one frame.
HUGE = "<" * 270_000


def test_a_bubble_too_big_for_a_frame_is_pushed_as_a_refetch(post_event):
    ident, huge, small = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    post_event(new_conversation(ident))
    post_event(new_message(ident, message_id=huge, content=HUGE))
    post_event(new_message(ident, ts=2, message_id=small))
    pushed = live.bubble_event(Message.objects.get(pk=huge), version=1)["html"]
    assert set(pushed) == {code for code, _ in settings.LANGUAGES}
    for frame in pushed.values():
        assert len(frame.encode()) <= live.MAX_FRAME_BYTES < 1024 * 1024
        assert live.REFETCH_MARKER in frame
    # An ordinary message is still pushed as its bubble.
    ordinary = live.bubble_event(Message.objects.get(pk=small), version=1)["html"]
    assert all(f'id="message-{small}"' in frame for frame in ordinary.values())
    assert all(live.REFETCH_MARKER not in frame for frame in ordinary.values())
    # The row shows a short preview whatever the message's size.
    row = live.row_event(Conversation.objects.get(pk=ident), version=1, to_top=True)
    assert all(len(frame.encode()) < 10_000 for frame in row["show"].values())


def batches_for(group: str) -> Callable[[], list[dict]]:
    """A channel in `group` on the in-memory layer; returns a function draining its batches."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)

    def drain() -> list[dict]:
        queue = layer.channels.get(channel)
        batches = []
        while queue is not None and not queue.empty():
            batches.append(queue.get_nowait()[1])
        return batches

    return drain


def test_a_transactions_changes_go_out_as_one_batch_after_it_commits(memory_layer, post_event):
    # What draining held events does: several messages and the conversation in one
    # transaction. The page gets one frame per group, not one per change.
    ident = uuid.uuid4()
    post_event(new_conversation(ident))
    received = [uuid.uuid4() for _ in range(3)]
    for ts, message_id in enumerate(received, start=1):
        post_event(new_message(ident, ts=ts, message_id=message_id, direction="RECEIVED"))
    agents, thread = batches_for(live.AGENTS_GROUP), batches_for(live.conversation_group(ident))
    with transaction.atomic():
        for message_id in received:
            live.message_added(message_id, ident)
        live.conversation_changed(ident)
        assert agents() == [] and thread() == [], "nothing may be pushed before the commit"
    (agents_batch,) = agents()
    (row, counts) = agents_batch["items"]
    assert counts["type"] == "counts.changed"
    assert all(f"<!--live:received {m}-->" in row["show"]["en"] for m in received)
    (thread_batch,) = thread()
    bubbles = [item["html"]["en"] for item in thread_batch["items"]]
    assert len(bubbles) == len(received) + 1  # each bubble, then the header
    for message_id, bubble in zip(received, bubbles, strict=False):
        assert f'id="message-{message_id}"' in bubble
    assert 'id="conversation-header"' in bubbles[-1]


def test_a_conversation_arriving_after_its_held_messages_is_pushed_as_one_batch(
    memory_layer, post_event
):
    # The provider delivered three messages before their conversation: they were held. The
    # NEW_CONVERSATION applies all of them in its transaction; the agents get one frame.
    ident = uuid.uuid4()
    held = [uuid.uuid4() for _ in range(3)]
    for ts, message_id in enumerate(held, start=1):
        answer = post_event(new_message(ident, ts=ts, message_id=message_id))
        assert answer.status_code == 202
    agents = batches_for(live.AGENTS_GROUP)
    assert post_event(new_conversation(ident)).status_code == 201
    (batch,) = agents()
    (row, counts) = batch["items"]
    assert f'id="conversation-{ident}"' in row["show"]["en"]
    assert counts["type"] == "counts.changed"


def test_a_rolled_back_transaction_pushes_nothing_and_the_next_one_pushes(memory_layer, post_event):
    ident = uuid.uuid4()
    post_event(new_conversation(ident))
    agents = batches_for(live.AGENTS_GROUP)
    with pytest.raises(RuntimeError), transaction.atomic():
        live.conversation_changed(ident)
        raise RuntimeError("rolled back")
    assert agents() == []
    with transaction.atomic():
        live.conversation_changed(ident)
    assert len(agents()) == 1


def live_socket_attributes(html: str) -> dict[str, str | None]:
    """The attributes of the page's #live-socket element."""
    found: dict[str, str | None] = {}

    class Finder(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if ("id", "live-socket") in attrs:
                found.update(attrs)

    Finder().feed(html)
    return found


def test_the_page_sends_a_logged_out_socket_to_the_configured_login_form(agent_client, settings):
    # live.js goes there on close code 4401; it knows the URL only from the page.
    settings.LOGIN_URL = "/staff/sign-in/"
    attributes = live_socket_attributes(agent_client.get("/").content.decode())
    assert attributes["data-login-url"] == "/staff/sign-in/"
    settings.LOGIN_URL = "login"  # a URL pattern's name, as in project/settings.py
    attributes = live_socket_attributes(agent_client.get("/").content.decode())
    assert attributes["data-login-url"] == "/accounts/login/"
    assert attributes["data-live-url"].startswith("/ws/inbox/")
