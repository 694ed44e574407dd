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


def start_worker(stub: StubProvider, log: Path, **env: str) -> subprocess.Popen:
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
    return subprocess.Popen(
        [sys.executable, "manage.py", "worker", "--interval", "0.05", "--recover-every", "0.5"],
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


def test_two_workers_deliver_200_replies_each_once(tmp_path, workers, conversation, agent):
    if connection.vendor != "postgresql":
        pytest.skip("several workers share a queue on PostgreSQL (SKIP LOCKED); SQLite runs one")
    replies = [
        services.message_reply(conversation_id=conversation.id, content=f"n.º {n}", agent=agent)
        for n in range(200)
    ]
    with StubProvider(Reply(200)) as stub:
        logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
        for log in logs:
            workers.append(start_worker(stub, log))

        def all_sent() -> bool:
            return not Message.objects.filter(delivery=Delivery.PENDING).exists()

        wait_until(all_sent, 90, "replies still PENDING", logs)
        received = Counter(stub.ids())
    assert set(received) == {str(r.id) for r in replies}
    assert [ident for ident, n in received.items() if n > 1] == []
    assert Message.objects.filter(delivery=Delivery.SENT).count() == 200
