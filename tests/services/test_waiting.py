"""Waiting (README, "Triage"): since the customer's first message after our last one."""

import random
import uuid
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from inbox import selectors, services
from inbox.listing import ListState
from inbox.models import Conversation, Message
from tests import markup
from tests.conftest import T0

pytestmark = pytest.mark.django_db


def opened(minutes: float = 0) -> uuid.UUID:
    cid = uuid.uuid4()
    services.conversation_open(conversation_id=cid, timestamp=T0 + timedelta(minutes=minutes))
    return cid


def say(cid: uuid.UUID, direction: str, minutes: float, message_id=None) -> None:
    outcome = services.message_add(
        message_id=message_id or uuid.uuid4(),
        conversation_id=cid,
        direction=direction,
        content="oi",
        timestamp=T0 + timedelta(minutes=minutes),
    )
    assert outcome.result == services.Result.CREATED


def since(cid: uuid.UUID):
    return Conversation.objects.get(pk=cid).waiting_since


def at(minutes: float):
    return T0 + timedelta(minutes=minutes)


def test_a_customer_message_starts_it_and_our_answer_ends_it():
    cid = opened()
    assert since(cid) is None
    say(cid, "RECEIVED", 1)
    say(cid, "RECEIVED", 2)  # a nudge does not reset the clock
    assert since(cid) == at(1)
    say(cid, "SENT", 3)
    assert since(cid) is None
    say(cid, "RECEIVED", 4)
    assert since(cid) == at(4)


def test_late_deliveries_of_old_messages_do_not_change_it_wrongly():
    cid = opened()
    say(cid, "SENT", 5)
    say(cid, "RECEIVED", 1)  # older than our answer: still answered
    assert since(cid) is None
    say(cid, "RECEIVED", 10)
    say(cid, "RECEIVED", 7)  # after our answer, before the start: the wait began earlier
    assert since(cid) == at(7)
    say(cid, "RECEIVED", 3)  # before our answer at 5: no change
    assert since(cid) == at(7)
    say(cid, "SENT", 8)  # answered 7 late: waiting since 10 now
    assert since(cid) == at(10)
    say(cid, "SENT", 2)  # an old answer of ours
    assert since(cid) == at(10)


def brute_force(cid: uuid.UUID):
    thread = list(Message.objects.filter(conversation_id=cid).order_by("timestamp", "id"))
    if not thread or thread[-1].direction != "RECEIVED":
        return None
    start = thread[-1].timestamp
    for message in reversed(thread):
        if message.direction == "SENT":
            break
        start = message.timestamp
    return start


@pytest.mark.parametrize("random_seed", range(6))
def test_waiting_and_the_waiting_sort_match_a_brute_force_on_generated_data(random_seed):
    rng = random.Random(random_seed)
    cids = [opened() for _ in range(25)]
    events = []
    for cid in cids:
        for minute in rng.sample(range(1, 200), rng.randint(0, 8)):
            events.append((cid, rng.choice(["SENT", "RECEIVED"]), minute))
    rng.shuffle(events)  # any delivery order
    for cid, direction, minute in events:
        say(cid, direction, minute)
    for cid in cids[:3]:
        services.conversation_close(conversation_id=cid, timestamp=at(500))
    for cid in cids:
        assert since(cid) == brute_force(cid)

    expected = sorted((brute_force(cid), cid) for cid in cids[3:] if brute_force(cid) is not None)
    listed, cursor = [], None
    while True:  # keyset pages of 4
        page = selectors.conversation_list(sort="waiting", cursor=cursor, page_size=4)
        listed += [(c.waiting_since, c.id) for c in page.conversations]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert listed == expected


def test_the_sort_is_part_of_the_list_state():
    state = ListState.parse({"sort": "waiting", "status": "closed"})
    assert state.sort == "waiting"
    assert state.conversation_status == "OPEN"  # only open conversations wait
    assert not state.lists("OPEN", waiting=False)
    assert state.lists("OPEN", waiting=True)
    assert ListState.parse({"sort": "bogus"}).sort == "activity"
    assert "sort=waiting" in state.query
    assert ListState.parse({}).query == ""


@override_settings(WAITING_WARN_MINUTES=15)
def test_rows_show_how_long_the_customer_waits(agent_client):
    now = timezone.now()
    long_ago, recent, answered = opened(), opened(), opened()
    for cid, minutes in ((long_ago, 40), (recent, 3)):
        services.message_add(
            message_id=uuid.uuid4(),
            conversation_id=cid,
            direction="RECEIVED",
            content="alô?",
            timestamp=now - timedelta(minutes=minutes),
        )
    say(answered, "SENT", 1)
    page = agent_client.get("/").content
    assert markup.attr(page, f"conversation-{long_ago}", "data-waiting-since").startswith(
        (now - timedelta(minutes=40)).strftime("%Y-%m-%dT%H:%M")
    )
    assert "waiting 40 min" in markup.text(page, f"conversation-{long_ago}")
    assert "waiting 3 min" in markup.text(page, f"conversation-{recent}")
    assert markup.attr(page, f"conversation-{answered}", "data-waiting-since") == ""
    assert "2 waiting" in markup.text(page, "waiting-count")

    page = agent_client.get("/?sort=waiting").content
    assert not markup.has_id(page, f"conversation-{answered}")
    assert page.decode().index(str(long_ago)) < page.decode().index(str(recent))
