"""Replies on the agents' sockets (README "Replies", "Live updates"): the new bubble and
each change of its ticks reach the sockets viewing the thread, and every list shows the
row's "You: ..." preview at once."""
# The socket fixtures are test_consumers.py's, imported: pytest finds them by name, which
# ruff reads as an unused import redefined by each test's argument.
# ruff: noqa: F401, F811

import re
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings
from django.urls import reverse

from tests.conftest import new_conversation
from tests.live.test_consumers import (
    communicator,
    layer,
    post_event,
    received_all,
    run,
    session_cookie,
)

pytestmark = pytest.mark.django_db(transaction=True)


def status_event(message_id: str, status: str) -> dict:
    return {
        "type": "MESSAGE_STATUS",
        "timestamp": "2026-12-03T10:00:00+00:00",
        "data": {"id": message_id, "status": status},
    }


def delivery_of(frames: str, message_id: str) -> list[str]:
    """The delivery states the pushed bubbles of one message carry, in arrival order."""
    return re.findall(rf'id="message-{message_id}"[^>]*data-delivery="(\w+)"', frames)


@override_settings(PROVIDER_URL="http://127.0.0.1:9/messages", PROVIDER_SECRET="s")
def test_a_reply_and_its_ticks_reach_the_thread_and_the_row_says_you(
    layer,
    session_cookie,
    post_event,
    agent_client,
):
    ident = uuid.uuid4()
    post_event(new_conversation(ident))

    def reply() -> str:
        from inbox import live
        from inbox.models import Message

        response = agent_client.post(
            reverse("inbox:message-reply", args=[ident]), {"content": "Já verifico <b>isso</b>"}
        )
        assert response.status_code == 302
        assert live.wait_until_sent(timeout=10)
        return str(Message.objects.get(conversation_id=ident, sent_by__isnull=False).id)

    async def scenario():
        viewing = communicator(f"conversation={ident}", cookie=session_cookie)
        listing = communicator(cookie=session_cookie)
        for socket in (viewing, listing):
            assert (await socket.connect())[0]

        message_id = await sync_to_async(reply)()
        seen = await received_all(viewing)
        assert delivery_of(seen, message_id) == ["PENDING"]
        assert "Já verifico &lt;b&gt;isso&lt;/b&gt;" in seen
        assert "data-sent-by>ana<" in seen
        row = await received_all(listing)
        assert f'id="conversation-{ident}"' in row
        assert re.search(r"You:</span>\s*Já verifico &lt;b&gt;isso&lt;/b&gt;", row)
        assert f"message-{message_id}" not in row  # bubbles only for the thread's viewers

        for status in ("DELIVERED", "READ"):
            answer = await sync_to_async(post_event)(status_event(message_id, status))
            assert answer.status_code == 200
            assert delivery_of(await received_all(viewing), message_id) == [status]
        for socket in (viewing, listing):
            await socket.disconnect()

    run(scenario)
