"""Group commit (inbox/writer.py): deliveries that arrive together are stored together, and
each still gets its own answer, the one it would get alone (README, "The webhook").

On SQLite the deliveries below are made to queue behind a writer that is kept busy, so they
are applied as one group; on PostgreSQL each has its own transaction, and the same answers
and the same stored state are asked of both.
"""

import http.client
import json
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.db import IntegrityError, connection
from django.test import Client
from django.utils import timezone

from inbox import writer
from inbox.models import Conversation, HeldEvent, Message, WebhookDelivery
from inbox.services import conversation_open
from tests.conftest import WAIT_LIMIT, close_conversation, new_conversation, new_message


@contextmanager
def writer_busy() -> Iterator[Callable[[int], None]]:
    """Keep the group writer inside a group until released, so what is submitted meanwhile
    waits and goes in the next group, all together. Yields `until_waiting(n)`."""
    release = threading.Event()
    if connection.vendor != "sqlite":
        # No writer thread on PostgreSQL: the deliveries run side by side.
        yield lambda n: None
        return
    started = threading.Event()

    def hold() -> None:
        started.set()
        release.wait(30)

    holder = threading.Thread(target=lambda: writer.apply(hold))
    holder.start()
    started.wait(10)

    def until_waiting(count: int) -> None:
        # The writer's own queue: the one place that knows the deliveries arrived.
        deadline = time.monotonic() + 30
        while len(writer._writer._waiting) < count:
            assert time.monotonic() < deadline, "the deliveries never reached the writer"
            time.sleep(0.01)

    try:
        yield until_waiting
    finally:
        release.set()
        holder.join(30)


def deliver_together(bodies: list[bytes]) -> list[int]:
    """POST each body from its own thread while the writer is busy; the statuses, in order."""
    statuses: list[int | None] = [None] * len(bodies)

    def deliver(index: int, body: bytes) -> None:
        try:
            response = Client().post("/webhook/", body, content_type="application/json")
            statuses[index] = response.status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=item) for item in enumerate(bodies)]
    with writer_busy() as until_waiting:
        for thread in threads:
            thread.start()
        until_waiting(len(bodies))
    for thread in threads:
        thread.join(60)
    return statuses


def post(event: dict) -> int:
    return Client().post("/webhook/", event, content_type="application/json").status_code


@pytest.mark.django_db(transaction=True)
def test_a_mixed_group_gives_each_event_its_own_answer_and_stores_what_one_by_one_would():
    known, closed, unknown = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    stored, conflicting = uuid.uuid4(), uuid.uuid4()
    assert post(new_conversation(known)) == 201
    assert post(new_message(known, message_id=stored, content="primeira")) == 201
    assert post(new_message(known, message_id=conflicting, content="original")) == 201
    assert post(new_conversation(closed)) == 201
    assert post(close_conversation(closed, ts=100)) == 200

    fresh = [uuid.uuid4() for _ in range(30)]
    held = [uuid.uuid4() for _ in range(5)]
    opened = uuid.uuid4()
    batch: list[tuple[dict | bytes, int]] = [
        *[(new_message(known, 2 + n, message_id=m), 201) for n, m in enumerate(fresh)],
        # A re-delivery, identical: 200; the same id with other content: 409.
        *[(new_message(known, message_id=stored, content="primeira"), 200)] * 5,
        *[(new_message(known, message_id=conflicting, content="outra"), 409)] * 5,
        # For a conversation not yet known: held, 202.
        *[(new_message(unknown, message_id=m), 202) for m in held],
        # After its conversation closed: refused, 409.
        *[(new_message(closed, ts=200), 409) for _ in range(3)],
        (new_conversation(opened), 201),
        (b'{"type": "NEW_MESSAGE"', 400),
    ]
    assert len(batch) == 50
    bodies = [e if isinstance(e, bytes) else json.dumps(e).encode() for e, _ in batch]

    statuses = deliver_together(bodies)

    assert statuses == [status for _, status in batch]
    thread = Conversation.objects.get(pk=known)
    assert thread.message_count == 32
    assert set(Message.objects.filter(conversation=thread).values_list("pk", flat=True)) == {
        stored,
        conflicting,
        *fresh,
    }
    assert Message.objects.get(pk=conflicting).content == "original"
    assert Conversation.objects.get(pk=closed).message_count == 0
    assert Conversation.objects.filter(pk=opened).exists()
    assert not Conversation.objects.filter(pk=unknown).exists()
    assert set(
        HeldEvent.objects.filter(conversation_id=unknown).values_list("event_id", flat=True)
    ) == set(held)
    # Every delivery is in the log, with the answer it got.
    logged = WebhookDelivery.objects.order_by("pk").values_list("status_code", flat=True)
    assert sorted(logged[5:]) == sorted(status for _, status in batch)
    # The held messages are applied when their conversation comes, as always.
    assert post(new_conversation(unknown)) == 201
    assert Conversation.objects.get(pk=unknown).message_count == 5


@pytest.mark.django_db(transaction=True)
def test_a_delivery_that_fails_inside_a_group_leaves_its_neighbours_stored_and_answered():
    ids = [uuid.uuid4() for _ in range(10)]
    taken = uuid.uuid4()
    conversation_open(conversation_id=taken, timestamp=timezone.now())
    results: dict[int, object] = {}

    def opening(ident: uuid.UUID) -> Callable[[], str]:
        def work() -> str:
            conversation_open(conversation_id=ident, timestamp=timezone.now())
            return f"opened {ident}"

        return work

    def failing() -> None:
        # Half written, then refused by the database: its savepoint takes all of it back.
        now = timezone.now()
        Conversation.objects.create(id=uuid.uuid4(), created_at=now, last_activity_at=now)
        Conversation.objects.create(id=taken, created_at=now, last_activity_at=now)

    works = [opening(ident) for ident in ids[:5]] + [failing] + [opening(i) for i in ids[5:]]

    def submit(index: int, work: Callable) -> None:
        try:
            results[index] = writer.apply(work)
        except Exception as error:
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=item) for item in enumerate(works)]
    with writer_busy() as until_waiting:
        for thread in threads:
            thread.start()
        until_waiting(len(works))
    for thread in threads:
        thread.join(60)

    assert isinstance(results[5], IntegrityError)
    assert [results[n] for n in range(11) if n != 5] == [f"opened {i}" for i in ids]
    assert set(Conversation.objects.values_list("pk", flat=True)) == {taken, *ids}


def _post_to(port: int, body: bytes) -> int | None:
    """One delivery to a real server; its status, or None when it went unanswered (refused,
    reset or cut off by the server's end)."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_LIMIT * 2)
        conn.request("POST", "/webhook/", body, {"Content-Type": "application/json"})
        return conn.getresponse().status
    except OSError:
        return None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_server_stopped_mid_burst_answers_only_what_it_stored_and_retries_are_safe(serve, stop):
    """A stop while groups are being written (README, "Delivery guarantees"): an answered
    delivery is stored; one stored but never answered (the process died after the commit)
    is a duplicate to the provider's retry. After the retries, each event is stored once."""
    server = serve()
    ident = uuid.uuid4()
    assert _post_to(server.port, json.dumps(new_conversation(ident)).encode()) == 201
    ids = [uuid.uuid4() for _ in range(60)]
    bodies = [
        json.dumps(new_message(ident, ts=1 + n, message_id=m)).encode() for n, m in enumerate(ids)
    ]
    answers: list[int | None] = [None] * len(bodies)
    first = threading.Event()

    def deliver(index: int) -> None:
        answers[index] = _post_to(server.port, bodies[index])
        first.set()

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(len(bodies))]
    for thread in threads:
        thread.start()
    assert first.wait(WAIT_LIMIT), server.output()
    server.process.send_signal(stop)
    for thread in threads:
        thread.join(WAIT_LIMIT * 3)
    server.process.wait(WAIT_LIMIT)

    stored = set(Message.objects.filter(conversation_id=ident).values_list("id", flat=True))
    answered = {m for m, status in zip(ids, answers, strict=True) if status is not None}
    assert all(status in (None, 201) for status in answers), answers
    assert answered <= stored  # nothing answered 201 is missing
    # The provider retries what it got no answer for, on the restarted server.
    again = serve()
    for m, body, status in zip(ids, bodies, answers, strict=True):
        if status is None:
            retried = _post_to(again.port, body)
            # 201: it was not stored; 200: it was, unanswered, and the retry is a duplicate.
            assert retried == (200 if m in stored else 201), (m, retried)
    assert Message.objects.filter(conversation_id=ident).count() == len(ids)
    assert Conversation.objects.get(pk=ident).message_count == len(ids)
