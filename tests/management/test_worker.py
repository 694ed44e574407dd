"""The worker process (`manage.py worker`): a reply the app accepted is delivered at least
once whatever happens to the worker, and two workers never share a job (README, "Replies")."""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from inbox import services
from inbox.models import Conversation, Delivery, Message
from tests.conftest import T0, database_url
from tests.stub_provider import Reply, StubProvider

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "worker-test-secret"


def start_worker(
    stub: StubProvider, log: Path, *, concurrency: int = 1, **env: str
) -> subprocess.Popen:
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DEBUG": "true",
        "SQLITE_BUSY_TIMEOUT": "60",
        "PYTHONUNBUFFERED": "1",
        "PROVIDER_URL": stub.url,
        "PROVIDER_SECRET": SECRET,
        **env,
    }
    environment.pop("REDIS_URL", None)
    return subprocess.Popen(  # noqa: S603 (our own command line)
        [
            sys.executable,
            "manage.py",
            "worker",
            *("--interval", "0.05", "--recover-every", "0.5"),
            *("--concurrency", str(concurrency)),
        ],
        cwd=django_settings.BASE_DIR,
        env=environment,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def wait_until(condition, timeout: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    output = "\n".join(log.read_text(errors="replace")[-3000:] for log in logs)
    pytest.fail(f"{what} within {timeout} s:\n{output}")


@pytest.fixture
def workers():
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def conversation(settings):
    settings.PROVIDER_URL = "http://127.0.0.1:9/"  # replies on; the workers get the stub's
    return Conversation.objects.create(id=uuid.uuid4(), created_at=T0, last_activity_at=T0)


def test_a_reply_survives_its_worker_being_killed_mid_delivery(
    tmp_path, workers, conversation, agent
):
    # The first attempt is held open by the provider until long after the worker is dead.
    with StubProvider(Reply(200, delay=30), Reply(200)) as stub:
        reply = services.message_reply(
            conversation_id=conversation.id, content="Já verifico!", agent=agent
        )
        logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
        workers.append(start_worker(stub, logs[0], PROVIDER_TIMEOUT="1"))
        assert stub.arrived.wait(30), logs[0].read_text()
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait()
        workers.append(start_worker(stub, logs[1], PROVIDER_TIMEOUT="1"))

        def sent() -> bool:
            return Message.objects.get(pk=reply.id).delivery == Delivery.SENT

        wait_until(sent, 30, "the reply was not SENT", logs)
        # At least once: the provider saw the id twice, and dedupes on it.
        assert stub.ids() == [str(reply.id)] * 2
        assert {r.headers["idempotency-key"] for r in stub.received} == {str(reply.id)}


@pytest.mark.parametrize("workers_count, concurrency", [(2, 1), (2, 4)])
def test_workers_deliver_200_replies_each_once(
    tmp_path, workers, conversation, agent, workers_count, concurrency
):
    if connection.vendor != "postgresql":
        pytest.skip("several workers share a queue on PostgreSQL (SKIP LOCKED); SQLite runs one")
    replies = [
        services.message_reply(conversation_id=conversation.id, content=f"n.º {n}", agent=agent)
        for n in range(200)
    ]
    with StubProvider(Reply(200)) as stub:
        logs = [tmp_path / f"worker-{n}.log" for n in range(workers_count)]
        for log in logs:
            workers.append(start_worker(stub, log, concurrency=concurrency))

        def all_sent() -> bool:
            return not Message.objects.filter(delivery=Delivery.PENDING).exists()

        wait_until(all_sent, 90, "replies still PENDING", logs)
        received = Counter(stub.ids())
    assert set(received) == {str(r.id) for r in replies}
    assert [ident for ident, n in received.items() if n > 1] == []
    assert Message.objects.filter(delivery=Delivery.SENT).count() == 200


def test_one_worker_with_threads_delivers_200_replies_each_once(
    tmp_path, workers, conversation, agent
):
    # The one worker SQLite runs, with 8 attempts at once: the threads' claims (exclusive
    # transactions on SQLite, SKIP LOCKED on PostgreSQL) never hand one job to two.
    replies = [
        services.message_reply(conversation_id=conversation.id, content=f"n.º {n}", agent=agent)
        for n in range(200)
    ]
    with StubProvider(Reply(200, delay=0.02)) as stub:
        log = tmp_path / "worker.log"
        workers.append(start_worker(stub, log, concurrency=8))

        def all_sent() -> bool:
            return not Message.objects.filter(delivery=Delivery.PENDING).exists()

        wait_until(all_sent, 90, "replies still PENDING", [log])
        received = Counter(stub.ids())
    assert set(received) == {str(r.id) for r in replies}
    assert [ident for ident, n in received.items() if n > 1] == []


def test_a_worker_runs_its_concurrency_of_attempts_at_once(tmp_path, workers, conversation, agent):
    # Each attempt is held 3 s by the provider: with 4 at once, all 4 replies reach it
    # before the first is answered (one at a time, the 4th would come 9 s later).
    for n in range(4):
        services.message_reply(conversation_id=conversation.id, content=f"n.º {n}", agent=agent)
    with StubProvider(Reply(200, delay=3)) as stub:
        log = tmp_path / "worker.log"
        workers.append(start_worker(stub, log, concurrency=4))
        wait_until(lambda: len(stub.ids()) == 4, 30, "not all 4 attempts started", [log])
        arrivals = [r.at for r in stub.received]
        assert max(arrivals) - min(arrivals) < 3, "an attempt waited for another's answer"


def test_sigterm_finishes_the_attempts_in_flight_then_exits(tmp_path, workers, conversation, agent):
    replies = [
        services.message_reply(conversation_id=conversation.id, content=f"n.º {n}", agent=agent)
        for n in range(3)
    ]
    with StubProvider(Reply(200, delay=2)) as stub:
        log = tmp_path / "worker.log"
        workers.append(start_worker(stub, log, concurrency=4))
        wait_until(lambda: len(stub.ids()) == 3, 30, "the attempts did not start", [log])
        workers[0].send_signal(signal.SIGTERM)
        assert workers[0].wait(30) == 0, log.read_text()
    # Answered while the worker was stopping, and recorded: nothing left for the next one.
    assert {m.delivery for m in Message.objects.filter(pk__in=[r.id for r in replies])} == {
        Delivery.SENT
    }
    assert stub.ids().count(str(replies[0].id)) == 1


def test_the_worker_refuses_a_concurrency_it_cannot_run(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "worker", "--concurrency", "0"],
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "--concurrency must be 1 to 64, not 0" in result.stderr


def test_notes_never_reach_the_provider(tmp_path, workers, conversation, agent):
    """An internal note (README, "Triage") queues nothing: with a worker running, the
    provider gets the reply written after two notes, and only it."""
    with StubProvider(Reply(200)) as stub:
        log = tmp_path / "worker.log"
        workers.append(start_worker(stub, log))
        for text in ("Cliente VIP", "Já pedi o estorno"):
            services.note_add(conversation_id=conversation.id, content=text, agent=agent)
        reply = services.message_reply(
            conversation_id=conversation.id, content="Estorno feito!", agent=agent
        )

        def sent() -> bool:
            return Message.objects.get(pk=reply.id).delivery == Delivery.SENT

        wait_until(sent, 30, "the reply was not SENT", [log])
        assert stub.ids() == [str(reply.id)]
        assert [r for r in stub.received if b"Cliente VIP" in r.body] == []
        assert Message.objects.filter(conversation=conversation).count() == 1


def test_a_running_worker_takes_the_retry_it_scheduled(tmp_path, workers, conversation, agent):
    """A retry is a job due later (backoff). The worker that scheduled it must see it come
    due: a queue read whose "now" was fixed when the worker started never would, and the
    reply stayed PENDING until the worker was restarted."""
    with StubProvider(Reply(503), Reply(200)) as stub:
        log = tmp_path / "worker.log"
        workers.append(start_worker(stub, log))
        time.sleep(0.5)  # the worker is up and polling before the reply and its retry exist
        reply = services.message_reply(
            conversation_id=conversation.id, content="Já verifico!", agent=agent
        )

        def sent() -> bool:
            return Message.objects.get(pk=reply.id).delivery == Delivery.SENT

        wait_until(sent, 30, "the retry was never taken", [log])
        assert stub.ids() == [str(reply.id)] * 2
