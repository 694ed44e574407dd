"""Replies: stored with their job, delivered to a real provider stub (README, "Replies")."""

import hashlib
import hmac
import json
import time
import uuid

import pytest
from django_tasks_db.models import DBTaskResult

from inbox import db, services
from inbox.management.commands.worker import draining_worker
from inbox.models import Conversation, Delivery, Direction, Message, OutboundAttempt
from inbox.services import ReplyRefused
from tests.conftest import T0
from tests.stub_provider import Reply, StubProvider

SECRET = "provider-test-secret"


@pytest.fixture
def provider(settings):
    """Replies on, pointed at a stub provider; short timeouts so failures are quick."""
    settings.PROVIDER_SECRET = SECRET
    settings.PROVIDER_TIMEOUT = 0.5
    settings.PROVIDER_RETRY_FOR = 3.0

    def start(*replies: Reply) -> StubProvider:
        stub = StubProvider(*replies).__enter__()
        started.append(stub)
        settings.PROVIDER_URL = stub.url
        return stub

    started: list[StubProvider] = []
    yield start
    for stub in started:
        stub.__exit__()


@pytest.fixture
def conversation():
    return Conversation.objects.create(
        id=uuid.uuid4(), created_at=T0, last_activity_at=T0, status=Conversation.Status.OPEN
    )


def deliver(message: Message, *, timeout: float = 10.0) -> Message:
    """Run the queue's jobs (a real django-tasks-db worker, in this process) until the reply
    is settled; the reply as stored then."""
    worker = draining_worker(worker_id="test")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.run()
        message.refresh_from_db()
        if message.delivery != Delivery.PENDING:
            return message
        time.sleep(0.05)
    pytest.fail(f"reply still PENDING after {timeout} s")


# Services ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_reply_is_stored_pending_with_its_job(settings, conversation, agent):
    settings.PROVIDER_URL = "http://127.0.0.1:9/"
    reply = services.message_reply(conversation_id=conversation.id, content="Olá!", agent=agent)
    stored = Message.objects.get(pk=reply.id)
    assert (stored.direction, stored.delivery, stored.sent_by, stored.content) == (
        Direction.SENT,
        Delivery.PENDING,
        agent,
        "Olá!",
    )
    assert uuid.UUID(str(reply.id)).version == 4
    job = DBTaskResult.objects.get()
    assert job.args_kwargs["kwargs"]["message_id"] == str(reply.id)
    conversation.refresh_from_db()
    assert (conversation.message_count, conversation.last_message_id) == (1, reply.id)


@pytest.mark.django_db
def test_a_reply_takes_a_conversation_nobody_has_and_ends_the_wait(
    settings, conversation, agent, django_user_model
):
    # README "Triage": a colleague then sees it is handled, and it leaves the waiting sort.
    settings.PROVIDER_URL = "http://127.0.0.1:9/"
    services.message_add(
        message_id=uuid.uuid4(),
        conversation_id=conversation.id,
        direction=Direction.RECEIVED,
        content="Oi, alguém aí?",
        timestamp=T0,
    )
    conversation.refresh_from_db()
    assert conversation.waiting_since == T0
    services.message_reply(conversation_id=conversation.id, content="Olá!", agent=agent)
    conversation.refresh_from_db()
    assert (conversation.assignee, conversation.waiting_since) == (agent, None)

    # A colleague's reply to it leaves it the first agent's.
    bea = django_user_model.objects.create_user(username="bea")
    services.message_reply(conversation_id=conversation.id, content="Sou a Bea.", agent=bea)
    conversation.refresh_from_db()
    assert conversation.assignee == agent
    assert conversation.assignments.count() == 1


@pytest.mark.django_db
def test_a_reply_and_its_job_roll_back_together(settings, conversation, agent):
    settings.PROVIDER_URL = "http://127.0.0.1:9/"

    class Boom(Exception):
        pass

    # A savepoint: the test's own transaction is the one around it.
    with pytest.raises(Boom), db.write(savepoint=True):
        services.message_reply(conversation_id=conversation.id, content="Olá!", agent=agent)
        raise Boom
    assert not Message.objects.exists()
    assert not DBTaskResult.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "status", "reason"),
    [
        ("   \n ", 400, "blank"),
        ("x" * 4097, 400, "4096"),
    ],
)
def test_bad_content_is_refused_with_its_reason(
    settings, conversation, agent, content, status, reason
):
    settings.PROVIDER_URL = "http://127.0.0.1:9/"
    with pytest.raises(ReplyRefused) as refused:
        services.message_reply(conversation_id=conversation.id, content=content, agent=agent)
    assert refused.value.status == status
    assert reason in refused.value.reason
    assert not Message.objects.exists() and not DBTaskResult.objects.exists()


@pytest.mark.django_db
def test_exactly_4096_characters_is_a_reply(settings, conversation, agent):
    settings.PROVIDER_URL = "http://127.0.0.1:9/"
    services.message_reply(conversation_id=conversation.id, content="é" * 4096, agent=agent)
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_a_closed_conversation_and_no_provider_are_refused(settings, conversation, agent):
    settings.PROVIDER_URL = ""
    with pytest.raises(ReplyRefused) as refused:
        services.message_reply(conversation_id=conversation.id, content="Olá", agent=agent)
    assert (refused.value.status, "no provider" in refused.value.reason) == (409, True)

    settings.PROVIDER_URL = "http://127.0.0.1:9/"
    services.conversation_close_by_agent(conversation_id=conversation.id, agent=agent)
    with pytest.raises(ReplyRefused) as refused:
        services.message_reply(conversation_id=conversation.id, content="Olá", agent=agent)
    assert (refused.value.status, "closed" in refused.value.reason) == (409, True)
    with pytest.raises(ReplyRefused) as refused:
        services.message_reply(conversation_id=uuid.uuid4(), content="Olá", agent=agent)
    assert refused.value.status == 404
    assert not Message.objects.exists() and not DBTaskResult.objects.exists()


# The delivery task against a stub provider ----------------------------------------------

pytestmark_delivery = pytest.mark.django_db(transaction=True)


def _reply(conversation, agent, content="Bom dia! Como posso ajudar?") -> Message:
    return services.message_reply(conversation_id=conversation.id, content=content, agent=agent)


@pytestmark_delivery
@pytest.mark.parametrize("status", [200, 201, 202, 409])
def test_2xx_and_409_are_sent(provider, conversation, agent, status):
    stub = provider(Reply(status))
    reply = deliver(_reply(conversation, agent))
    assert (reply.delivery, reply.error) == (Delivery.SENT, None)
    assert stub.ids() == [str(reply.id)]


@pytestmark_delivery
def test_the_request_is_signed_and_keyed_by_the_message_id(provider, conversation, agent):
    stub = provider(Reply(500), Reply(200))
    reply = deliver(_reply(conversation, agent))
    assert reply.delivery == Delivery.SENT
    assert len(stub.received) == 2
    for request in stub.received:
        assert request.headers["content-type"] == "application/json"
        assert request.headers["idempotency-key"] == str(reply.id)
        expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        assert request.headers["x-hub-signature-256"] == f"sha256={expected}"
        event = json.loads(request.body)
        assert event["type"] == "SEND_MESSAGE"
        assert event["timestamp"].endswith("Z")
        assert event["data"] == {
            "id": str(reply.id),
            "conversation_id": str(conversation.id),
            "content": "Bom dia! Como posso ajudar?",
        }
    attempts = list(OutboundAttempt.objects.filter(message=reply).order_by("id"))
    assert [(a.status_code, a.outcome) for a in attempts] == [(500, "retry"), (200, "sent")]
    assert all(a.duration_ms >= 0 for a in attempts)


@pytestmark_delivery
def test_429_retry_after_is_honoured(provider, conversation, agent, settings):
    settings.PROVIDER_RETRY_FOR = 10.0
    stub = provider(Reply(429, headers={"Retry-After": "2"}), Reply(200))
    reply = deliver(_reply(conversation, agent))
    assert reply.delivery == Delivery.SENT
    first, second = stub.received
    assert second.at - first.at >= 2.0


@pytestmark_delivery
def test_other_4xx_fails_at_once_with_the_providers_answer(provider, conversation, agent):
    stub = provider(Reply(400, body='{"error": "invalid recipient"}' + "x" * 1000))
    reply = deliver(_reply(conversation, agent))
    assert reply.delivery == Delivery.FAILED
    assert reply.error.startswith('400: {"error": "invalid recipient"}')
    assert len(reply.error) == 500
    assert len(stub.received) == 1


@pytestmark_delivery
def test_connection_refused_is_retried_until_retry_for_then_failed(
    provider, conversation, agent, settings
):
    from tests.conftest import free_port

    settings.PROVIDER_URL = f"http://127.0.0.1:{free_port()}/send"
    settings.PROVIDER_SECRET = SECRET
    settings.PROVIDER_RETRY_FOR = 1.5
    started = time.monotonic()
    reply = deliver(_reply(conversation, agent))
    assert reply.delivery == Delivery.FAILED
    assert "connection error" in reply.error
    assert time.monotonic() - started >= 1.5
    assert OutboundAttempt.objects.filter(message=reply, outcome="retry").count() >= 2


@pytestmark_delivery
def test_a_timeout_is_retried_until_retry_for_then_failed(provider, conversation, agent, settings):
    settings.PROVIDER_TIMEOUT = 0.2
    settings.PROVIDER_RETRY_FOR = 1.0
    stub = provider(Reply(200, delay=1.0))
    reply = deliver(_reply(conversation, agent))
    assert reply.delivery == Delivery.FAILED
    assert "timeout" in reply.error
    assert len(stub.received) >= 2
    assert set(stub.ids()) == {str(reply.id)}


@pytestmark_delivery
def test_a_failed_reply_is_retried_with_the_same_id(provider, conversation, agent):
    stub = provider(Reply(400, body="no"), Reply(200))
    reply = deliver(_reply(conversation, agent))
    assert reply.delivery == Delivery.FAILED
    retried = services.message_retry(message_id=reply.id, agent=agent)
    assert (retried.id, retried.delivery, retried.error) == (reply.id, Delivery.PENDING, None)
    assert deliver(retried).delivery == Delivery.SENT
    assert stub.ids() == [str(reply.id)] * 2
    with pytest.raises(ReplyRefused) as refused:
        services.message_retry(message_id=reply.id, agent=agent)
    assert refused.value.status == 409
