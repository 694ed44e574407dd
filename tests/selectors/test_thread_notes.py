"""Internal notes in a thread's windows (README, "Triage"): each note shows once, in time
order among the messages, whichever way the agent pages (up from the latest, or both ways
from a search's match)."""

from datetime import timedelta

import pytest

from inbox import selectors
from inbox.models import Message, Note
from tests import factories
from tests.conftest import T0

pytestmark = pytest.mark.django_db

PAGE = 10


@pytest.fixture
def thread(agent):
    """35 messages a minute apart (four windows of 10) and notes everywhere a note can be:
    before the first message, at a message's very time, between two, inside each window,
    at each window's edge, and after the last."""
    conversation = factories.conversation(
        messages=factories.alternating([f"m{n}" for n in range(35)])
    )
    times = [m.timestamp for m in conversation.messages.order_by("timestamp", "id")]
    at = [T0 + timedelta(seconds=30), times[0], times[4], times[9] + timedelta(seconds=20)]
    at += [times[10], times[14] - timedelta(seconds=1), times[24], times[25], times[34]]
    at.append(times[34] + timedelta(hours=1))
    for n, when in enumerate(at):
        Note.objects.create(
            conversation=conversation, author=agent, content=f"n{n}", created_at=when
        )
    return conversation


def order(entries) -> list[tuple]:
    return [(entry.timestamp, entry.is_note) for entry in entries]


def labels(entries) -> list[str]:
    return [entry.content for entry in entries]


def whole(conversation) -> list[str]:
    """The thread as one page would show it: every message and note in time order."""
    return labels(selectors.thread_page(conversation_id=conversation.id, page_size=1000).entries)


def test_paging_up_from_the_latest_shows_every_note_once_in_place(thread):
    page = selectors.thread_page(conversation_id=thread.id, page_size=PAGE)
    shown = page.entries
    while page.earlier_cursor:
        page = selectors.thread_page(
            conversation_id=thread.id, before=page.earlier_cursor, page_size=PAGE
        )
        shown = page.entries + shown
    assert order(shown) == sorted(order(shown))
    assert labels(shown) == whole(thread)
    assert sorted(e for e in labels(shown) if e.startswith("n")) == sorted(
        Note.objects.values_list("content", flat=True)
    )


@pytest.mark.parametrize("match", [0, 12, 20, 34])
def test_paging_both_ways_from_a_match_shows_every_note_once_in_place(thread, match):
    message = Message.objects.get(conversation=thread, content=f"m{match}")
    window = selectors.thread_around(
        conversation_id=thread.id, message_id=message.id, page_size=PAGE
    )
    shown = window.entries
    page = window
    while page.earlier_cursor:
        page = selectors.thread_page(
            conversation_id=thread.id, before=page.earlier_cursor, page_size=PAGE
        )
        shown = page.entries + shown
    page = window
    while page.later_cursor:
        page = selectors.thread_page(
            conversation_id=thread.id, after=page.later_cursor, page_size=PAGE
        )
        shown = shown + page.entries
    assert labels(shown) == whole(thread)


def test_a_note_at_a_messages_time_follows_it_and_a_thread_of_notes_only_shows_them(agent):
    conversation = factories.conversation(messages=[("RECEIVED", "Oi")])
    message = conversation.messages.get()
    Note.objects.create(
        conversation=conversation, author=agent, content="vejo já", created_at=message.timestamp
    )
    assert labels(selectors.thread_page(conversation_id=conversation.id).entries) == [
        "Oi",
        "vejo já",
    ]
    empty = factories.conversation()
    Note.objects.create(conversation=empty, author=agent, content="cliente VIP")
    page = selectors.thread_page(conversation_id=empty.id)
    assert (page.messages, labels(page.entries)) == ([], ["cliente VIP"])
