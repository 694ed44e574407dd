"""The store's writes: ordering, counters and last activity."""

import uuid

import pytest

from inbox import selectors, services
from inbox.models import Conversation, Message
from tests import factories
from tests.conftest import T0, at, close_conversation, new_conversation, new_message

pytestmark = pytest.mark.django_db


def test_messages_delivered_out_of_order_read_back_in_time_order(post_event):
    ident = uuid.uuid4()
    post_event(new_conversation(ident))
    ids = {ts: uuid.uuid4() for ts in (30, 10, 20, 5)}
    for ts, message_id in ids.items():
        assert post_event(new_message(ident, ts=ts, message_id=message_id)).status_code == 201
    thread = list(selectors.thread_messages(conversation_id=ident).values_list("id", flat=True))
    assert thread == [ids[5], ids[10], ids[20], ids[30]]


def test_last_message_and_activity_follow_the_newest_timestamp_not_arrival(post_event):
    ident = uuid.uuid4()
    post_event(new_conversation(ident, ts=0))
    newest = uuid.uuid4()
    post_event(new_message(ident, ts=50, message_id=newest, content="latest"))
    post_event(new_message(ident, ts=20, content="older, delivered late"))
    conversation = Conversation.objects.get(pk=ident)
    assert conversation.message_count == 2
    assert conversation.last_message_id == newest
    assert conversation.last_activity_at.isoformat() == at(50)


def test_close_counts_as_activity(post_event):
    ident = uuid.uuid4()
    post_event(new_conversation(ident, ts=0))
    post_event(new_message(ident, ts=10))
    post_event(close_conversation(ident, ts=90))
    assert Conversation.objects.get(pk=ident).last_activity_at.isoformat() == at(90)


def test_refused_late_message_leaves_counters_alone(post_event):
    ident = uuid.uuid4()
    post_event(new_conversation(ident))
    post_event(close_conversation(ident, ts=60))
    outcome = services.message_add(
        message_id=uuid.uuid4(),
        conversation_id=ident,
        direction="RECEIVED",
        content="too late",
        timestamp=T0.replace(hour=11),
    )
    assert outcome.result == services.Result.CONFLICT
    conversation = Conversation.objects.get(pk=ident)
    assert conversation.message_count == 0
    assert conversation.messages.count() == 0


def test_list_is_newest_activity_first_and_pages_without_gaps_or_repeats():
    for n in range(7):
        factories.conversation(opened_at=T0.replace(minute=n))
    # Two conversations sharing one timestamp: the id keeps the order total across pages.
    factories.conversation(opened_at=T0.replace(minute=3))
    seen, cursor = [], None
    while True:
        page = selectors.conversation_list(cursor=cursor, page_size=3)
        seen += page.conversations
        cursor = page.next_cursor
        if cursor is None:
            break
    keys = [(c.last_activity_at, c.id) for c in seen]
    assert len(seen) == 8
    assert keys == sorted(keys, reverse=True)
    assert len(set(keys)) == 8


def test_a_providers_own_message_id_names_one_message_per_channel(post_event):
    """Ids that are not UUIDs (WhatsApp's wamids) are kept beside ours, unique per channel:
    the same one again under another UUID is refused, and nothing is stored twice."""
    ident = uuid.uuid4()
    post_event(new_conversation(ident))
    fields = {"conversation_id": ident, "direction": "RECEIVED", "content": "oi", "timestamp": T0}
    wamid = "wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBQzQTk"
    first = uuid.uuid4()
    stored = services.message_add(
        message_id=first, channel="whatsapp", provider_message_id=wamid, **fields
    )
    assert stored.result == services.Result.CREATED
    again = services.message_add(
        message_id=first, channel="whatsapp", provider_message_id=wamid, **fields
    )
    assert again.result == services.Result.DUPLICATE
    reused = services.message_add(
        message_id=uuid.uuid4(), channel="whatsapp", provider_message_id=wamid, **fields
    )
    assert reused.result == services.Result.CONFLICT
    assert str(first) in reused.detail
    elsewhere = services.message_add(
        message_id=uuid.uuid4(), channel="other", provider_message_id=wamid, **fields
    )
    assert elsewhere.result == services.Result.CREATED
    assert Message.objects.filter(provider_message_id=wamid).count() == 2
    assert Conversation.objects.get(pk=ident).message_count == 2


def test_the_generic_providers_messages_are_keyed_by_their_uuid_alone(post_event):
    ident, message_id = uuid.uuid4(), uuid.uuid4()
    post_event(new_conversation(ident))
    post_event(new_message(ident, message_id=message_id))
    message = Message.objects.get(pk=message_id)
    assert (message.channel, message.provider_message_id) == ("generic", None)
