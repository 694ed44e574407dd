"""Delivery guarantees: out-of-order events are held and applied, faults lose nothing."""

import json
import logging
import random
import sqlite3
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from inbox import writer
from inbox.models import Conversation, HeldEvent, Message, WebhookDelivery
from tests.conftest import (
    at,
    close_conversation,
    deliver_concurrently,
    free_port,
    new_conversation,
    new_message,
)

pytestmark = pytest.mark.django_db


def thread_of(agent_client, conversation_id) -> dict:
    response = agent_client.get(f"/api/conversations/{conversation_id}/")
    assert response.status_code == 200
    return response.json()


def test_messages_before_their_conversation_are_applied_when_it_arrives(post_event, agent_client):
    ident = uuid.uuid4()
    later, earlier = uuid.uuid4(), uuid.uuid4()
    assert post_event(new_message(ident, ts=20, message_id=later)).status_code == 202
    assert post_event(new_message(ident, ts=10, message_id=earlier)).status_code == 202
    assert not Conversation.objects.filter(pk=ident).exists()

    response = post_event(new_conversation(ident, ts=0))

    assert response.status_code == 201
    assert "2 held event(s) applied" in response.json()["detail"]
    body = thread_of(agent_client, ident)
    assert [m["id"] for m in body["messages"]] == [str(earlier), str(later)]
    conversation = Conversation.objects.get(pk=ident)
    assert conversation.message_count == 2
    assert conversation.last_message_id == later
    assert set(HeldEvent.objects.values_list("outcome", flat=True)) == {"created"}


def test_a_close_before_the_conversation_closes_it_on_arrival_after_its_messages(
    post_event, agent_client
):
    ident = uuid.uuid4()
    assert post_event(close_conversation(ident, ts=60)).status_code == 202
    assert post_event(new_message(ident, ts=60, content="at the close")).status_code == 202
    # After a close that is known (held), as for a closed conversation: refused at once,
    # rather than answered 202 and thrown away when the conversation arrives.
    after = post_event(new_message(ident, ts=61, content="after the close"))
    assert after.status_code == 409
    assert "closed at" in after.json()["detail"]
    assert post_event(new_conversation(ident, ts=0)).status_code == 201

    body = thread_of(agent_client, ident)
    assert body["status"] == "CLOSED"
    assert body["closed_at"] == at(60)
    assert [m["content"] for m in body["messages"]] == ["at the close"]
    assert set(HeldEvent.objects.values_list("outcome", flat=True)) == {"created", "closed"}


def test_a_held_message_is_kept_even_after_a_close_held_later(post_event, agent_client):
    """Held before the close arrived, the message was accepted (202) while the conversation
    was, as far as anyone knew, open: it is stored, as a message that arrives before the
    close of an existing conversation is (an accepted event is never thrown away)."""
    ident = uuid.uuid4()
    assert post_event(new_message(ident, ts=61, content="after the close")).status_code == 202
    assert post_event(close_conversation(ident, ts=60)).status_code == 202
    assert post_event(new_conversation(ident, ts=0)).status_code == 201

    body = thread_of(agent_client, ident)
    assert (body["status"], body["closed_at"]) == ("CLOSED", at(60))
    assert [m["content"] for m in body["messages"]] == ["after the close"]
    assert set(HeldEvent.objects.values_list("outcome", flat=True)) == {"created", "closed"}


def test_a_held_message_delivered_again_after_its_close_is_still_held_once(post_event):
    ident = uuid.uuid4()
    message = new_message(ident, ts=61)
    assert post_event(message).status_code == 202
    assert post_event(close_conversation(ident, ts=60)).status_code == 202
    assert post_event(message).status_code == 202
    assert HeldEvent.objects.count() == 2


def test_a_held_event_delivered_again_is_held_once(post_event):
    event = new_message(uuid.uuid4())
    assert post_event(event).status_code == 202
    assert post_event(event).status_code == 202
    assert HeldEvent.objects.count() == 1
    changed = json.loads(json.dumps(event))
    changed["data"]["content"] = "edited"
    response = post_event(changed)
    assert response.status_code == 409
    assert "different" in response.json()["detail"]
    assert HeldEvent.objects.count() == 1


def test_a_held_event_delivered_again_after_it_was_applied_is_a_duplicate(post_event):
    ident = uuid.uuid4()
    event = new_message(ident)
    post_event(event)
    post_event(new_conversation(ident))
    response = post_event(event)
    assert response.status_code == 200
    assert response.json()["result"] == "duplicate"
    assert Message.objects.count() == 1


def test_an_overdue_held_event_is_reported_once_and_kept(post_event, settings, caplog):
    settings.WEBHOOK_REORDER_WINDOW = 600
    stale_conversation = uuid.uuid4()
    post_event(new_message(stale_conversation))
    HeldEvent.objects.update(received_at=timezone.now() - timedelta(minutes=11))

    with caplog.at_level(logging.WARNING, logger="inbox.services"):
        post_event(new_message(uuid.uuid4()))
        post_event(new_message(uuid.uuid4()))

    warnings = [r.getMessage() for r in caplog.records if "has not arrived" in r.getMessage()]
    assert len(warnings) == 1
    assert str(stale_conversation) in warnings[0]
    assert HeldEvent.objects.filter(conversation_id=stale_conversation).exists()
    # Late is not lost: the conversation still gets its message when it finally comes.
    post_event(new_conversation(stale_conversation))
    assert Message.objects.filter(conversation_id=stale_conversation).count() == 1


def test_operators_see_held_events_in_the_admin(post_event, admin_client):
    ident = uuid.uuid4()
    post_event(new_message(ident))
    response = admin_client.get("/admin/inbox/heldevent/?state=waiting")
    assert response.status_code == 200
    assert str(ident) in response.content.decode()


# --- Concurrency -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_fifty_threads_of_duplicates_and_distinct_messages_keep_exact_counts():
    ident = uuid.uuid4()
    Client().post("/webhook/", new_conversation(ident), content_type="application/json")
    distinct = [new_message(ident, ts=n) for n in range(1, 26)]
    bodies = [json.dumps(e).encode() for e in distinct]
    bodies += [json.dumps(random.choice(distinct)).encode() for _ in range(25)]

    statuses = deliver_concurrently(bodies)

    assert statuses == Counter({201: 25, 200: 25})
    conversation = Conversation.objects.get(pk=ident)
    assert conversation.messages.count() == 25
    assert conversation.message_count == 25
    assert conversation.last_message_at.isoformat() == at(25)
    assert conversation.last_activity_at.isoformat() == at(25)


@pytest.mark.django_db(transaction=True)
def test_messages_racing_their_conversation_are_all_stored():
    ident = uuid.uuid4()
    messages = [new_message(ident, ts=n) for n in range(1, 40)]
    bodies = [json.dumps(e).encode() for e in messages]
    bodies.insert(20, json.dumps(new_conversation(ident, ts=0)).encode())

    statuses = deliver_concurrently(bodies)

    assert statuses[500] + statuses[503] == 0
    assert statuses[201] + statuses[202] == len(bodies)
    conversation = Conversation.objects.get(pk=ident)
    assert conversation.message_count == 39
    assert conversation.messages.count() == 39
    assert not HeldEvent.objects.filter(applied_at__isnull=True).exists()


# --- Faults ----------------------------------------------------------------------------


def _drop_connections() -> None:
    """Close the connection and any pool, so the next query connects with the settings; the
    webhook's writer thread too (inbox/writer.py keeps its connection)."""
    connection.close()
    writer.reconnect()
    if getattr(connection, "pool", None) is not None:
        connection.close_pool()


@contextmanager
def database_outage():
    """Point the default connection at a database that cannot be reached, then restore it."""
    saved = {key: connection.settings_dict[key] for key in ("NAME", "HOST", "PORT")}
    _drop_connections()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent-directory/inbox.sqlite3"
    else:
        connection.settings_dict["HOST"] = "127.0.0.1"
        connection.settings_dict["PORT"] = free_port()
    try:
        yield
    finally:
        _drop_connections()
        connection.settings_dict.update(saved)


@pytest.mark.django_db(transaction=True)
def test_an_outage_answers_503_writes_nothing_and_the_retry_is_stored():
    ident = uuid.uuid4()
    event = new_conversation(ident)
    with database_outage():
        response = Client().post("/webhook/", event, content_type="application/json")
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response.json()["error"] == "store_unavailable"
    assert Conversation.objects.count() == 0
    assert WebhookDelivery.objects.count() == 0

    response = Client().post("/webhook/", event, content_type="application/json")
    assert response.status_code == 201
    assert Conversation.objects.filter(pk=ident).count() == 1


@contextmanager
def sqlite_busy_timeout(seconds: float) -> Iterator[None]:
    """SQLite's busy timeout, which also bounds the webhook's writer lock, set to `seconds`
    for the block, on connections opened inside it."""
    options = connection.settings_dict["OPTIONS"]
    saved = options["timeout"]
    options["timeout"] = seconds
    connection.close()
    try:
        yield
    finally:
        connection.close()
        options["timeout"] = saved


@pytest.mark.django_db(transaction=True)
def test_sqlite_locked_past_the_busy_timeout_answers_503_and_stores_nothing():
    if connection.vendor != "sqlite":
        pytest.skip("the busy timeout is SQLite's; PostgreSQL is covered by the outage tests")
    with sqlite_busy_timeout(0.2):
        blocker = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            response = Client().post(
                "/webhook/", new_conversation(), content_type="application/json"
            )
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
    assert response.status_code == 503
    assert "Retry-After" in response
    assert Conversation.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_sqlite_deliveries_in_one_process_queue_for_each_other():
    """They wait on this process's writer lock (woken at once), up to the busy timeout."""
    if connection.vendor != "sqlite":
        pytest.skip("the writer lock is SQLite's")
    from inbox import db

    answers = []
    db._sqlite_writer.acquire()  # another delivery, writing
    try:
        waiting = threading.Thread(
            target=lambda: answers.append(
                Client().post("/webhook/", new_conversation(), content_type="application/json")
            )
        )
        waiting.start()
        waiting.join(0.3)
        assert waiting.is_alive() and Conversation.objects.count() == 0
    finally:
        db._sqlite_writer.release()
    waiting.join(10)
    assert answers[0].status_code == 201
    assert Conversation.objects.count() == 1

    with sqlite_busy_timeout(0.2):
        db._sqlite_writer.acquire()
        try:
            response = Client().post(
                "/webhook/", new_conversation(), content_type="application/json"
            )
        finally:
            db._sqlite_writer.release()
    assert response.status_code == 503
    assert "Retry-After" in response
    assert Conversation.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", ["close", "reopen"])
def test_sqlite_agents_close_and_reopen_queue_behind_the_webhooks_writers(agent, action):
    """An agent's click takes the same writer lock as a delivery: it waits its turn instead
    of polling SQLite for it (and failing once another writer holds it past the timeout)."""
    if connection.vendor != "sqlite":
        pytest.skip("the writer lock is SQLite's")
    from inbox import db

    ident = uuid.uuid4()
    assert (
        Client()
        .post("/webhook/", new_conversation(ident), content_type="application/json")
        .status_code
        == 201
    )
    if action == "reopen":
        Conversation.objects.filter(pk=ident).update(status=Conversation.Status.CLOSED)
    expected = Conversation.Status.CLOSED if action == "close" else Conversation.Status.OPEN

    client = Client()
    client.force_login(agent)
    answers = []
    db._sqlite_writer.acquire()  # a delivery, writing
    try:
        clicking = threading.Thread(
            target=lambda: answers.append(
                client.post(f"/conversations/{ident}/{action}/", HTTP_HX_REQUEST="true")
            )
        )
        clicking.start()
        clicking.join(0.3)
        assert clicking.is_alive()
        assert Conversation.objects.get(pk=ident).status != expected
    finally:
        db._sqlite_writer.release()
    clicking.join(10)
    assert answers[0].status_code == 200
    assert Conversation.objects.get(pk=ident).status == expected
