"""`seed` writes what the services would have: counters and last-message fields exact."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count

from devtools.seeding import seed
from inbox.models import Conversation, Message
from tests.conftest import new_message


def LATER_THAN_SEEDED() -> str:
    """A time after everything seeded (the seed's messages end near now, minutes apart) that
    the webhook still accepts (at most 24 h ahead of the server's clock, README webhook)."""
    return (datetime.now(UTC) + timedelta(hours=23)).isoformat()


pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded():
    return seed(conversations=40, messages=700, largest_thread=150, open_ratio=0.5, random_seed=7)


def test_seed_creates_exactly_what_was_asked(seeded):
    assert seeded.conversations == Conversation.objects.count() == 40
    assert seeded.messages == Message.objects.count() == 700
    largest = Conversation.objects.get(pk=seeded.largest_thread)
    assert largest.message_count == 150
    assert Conversation.objects.order_by("-message_count").first() == largest


def test_denormalised_fields_match_the_messages(seeded):
    counted = dict(Conversation.objects.annotate(n=Count("messages")).values_list("id", "n"))
    for conversation in Conversation.objects.all():
        assert conversation.message_count == counted[conversation.id]
        thread = list(Message.objects.filter(conversation=conversation).order_by("timestamp", "id"))
        if thread:
            assert conversation.last_message_id == thread[-1].id
            assert conversation.last_message_at == thread[-1].timestamp
            assert thread[0].timestamp > conversation.created_at
        else:
            assert conversation.last_message_id is None
            assert conversation.last_message_at is None
        times = [conversation.created_at, conversation.last_message_at, conversation.closed_at]
        assert conversation.last_activity_at == max(t for t in times if t is not None)
        if conversation.status == Conversation.Status.CLOSED:
            assert conversation.closed_at is not None
            assert not thread or conversation.closed_at > thread[-1].timestamp
        else:
            assert conversation.closed_at is None


def test_seeded_threads_read_back_through_the_api(seeded, agent_client):
    response = agent_client.get(f"/api/conversations/{seeded.largest_thread}/")
    assert response.status_code == 200
    body = response.json()
    assert len(body["messages"]) == body["message_count"] == 150
    stamps = [m["timestamp"] for m in body["messages"]]
    assert stamps == sorted(stamps)
    assert {m["direction"] for m in body["messages"]} == {"SENT", "RECEIVED"}
    assert all(m["content"].strip() for m in body["messages"])


def test_seeded_store_keeps_taking_webhooks(seeded, post_event):
    conversation = Conversation.objects.filter(status="OPEN").order_by("-message_count").first()
    before = conversation.message_count
    event = new_message(conversation.id, message_id=uuid.uuid4())
    event["timestamp"] = LATER_THAN_SEEDED()
    response = post_event(event)
    assert response.status_code == 201, response.json()
    conversation.refresh_from_db()
    assert conversation.message_count == before + 1
    assert str(conversation.last_message_id) == event["data"]["id"]


def test_seed_twice_adds_without_clashing():
    seed(conversations=5, messages=20, random_seed=1)
    seed(conversations=5, messages=20, random_seed=2)
    assert Conversation.objects.count() == 10
    assert Message.objects.count() == 40


def test_the_command_reports_and_refuses_bad_counts(capsys):
    call_command("seed", conversations=3, messages=9, verbosity=0)
    assert "seeded 3 conversations and 9 messages" in capsys.readouterr().out
    with pytest.raises(CommandError, match="negative"):
        call_command("seed", conversations=-1, messages=0)
    with pytest.raises(CommandError, match="at least one conversation"):
        call_command("seed", conversations=0, messages=5)
    assert Conversation.objects.count() == 3


def test_seeded_list_pages_are_exact(seeded, agent_client):
    seen, url = [], "/api/conversations/"
    while url:
        page = agent_client.get(url).json()
        seen += [row["id"] for row in page["results"]]
        url = page["next"]
    assert len(seen) == len(set(seen)) == 40
    assert json.dumps(seen)  # every id a plain string


def test_row_triggers_see_every_seeded_message_and_keep_working(post_event):
    """A trigger-maintained index (the search's, on SQLite) is filled for seeded rows too."""
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite triggers; PostgreSQL's search index is a plain index")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE probe_copy (message_rowid integer, content text)")
        cursor.execute("CREATE TABLE probe_sent (message_rowid integer)")
        # The copying shape, which the seeder replays set-wise...
        cursor.execute(
            "CREATE TRIGGER probe_copy_insert AFTER INSERT ON inbox_message BEGIN "
            "INSERT INTO probe_copy(message_rowid, content) VALUES (new.rowid, new.content); END"
        )
        # ...and one with a condition, which it must leave firing row by row.
        cursor.execute(
            "CREATE TRIGGER probe_sent_insert AFTER INSERT ON inbox_message "
            "WHEN new.direction = 'SENT' BEGIN "
            "INSERT INTO probe_sent(message_rowid) VALUES (new.rowid); END"
        )
    seed(conversations=1, messages=3, random_seed=4)  # rows before: not replayed twice
    seed(conversations=30, messages=400, random_seed=5)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM inbox_message m JOIN probe_copy p "
            "ON p.message_rowid = m.rowid AND p.content = m.content"
        )
        assert cursor.fetchone()[0] == 403
        cursor.execute("SELECT count(*) FROM probe_copy")
        assert cursor.fetchone()[0] == 403
        cursor.execute("SELECT count(*) FROM probe_sent")
        assert cursor.fetchone()[0] == Message.objects.filter(direction="SENT").count()
        # (Other triggers, such as the search index's, exist beside the probes.)
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'probe%' "
            "ORDER BY name"
        )
        assert [row[0] for row in cursor.fetchall()] == ["probe_copy_insert", "probe_sent_insert"]
    # Restored: a webhook's message goes through the trigger again.
    conversation = Conversation.objects.filter(status="OPEN").first()
    event = new_message(conversation.id, message_id=uuid.uuid4(), content="depois do seed")
    event["timestamp"] = LATER_THAN_SEEDED()
    assert post_event(event).status_code == 201
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM probe_copy WHERE content = 'depois do seed'")
        assert cursor.fetchone()[0] == 1
