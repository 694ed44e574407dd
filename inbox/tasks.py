"""Background work through Django's Tasks API (the django-tasks backport on Django 5.2,
django-tasks-db's queue): the delivery of agents' replies to the provider (README, "Replies").

One job is one attempt. It posts the reply, records the attempt, and in the same transaction
either settles the reply (SENT, FAILED) or queues the next attempt, so a reply is never
left without a job while it is PENDING. A worker killed mid-attempt leaves its job RUNNING;
`manage.py worker` puts such a job back in the queue once it is older than any attempt can
last (`ATTEMPT_STALE_AFTER`), and the provider dedupes the repeat on the Idempotency-Key.
"""

import email.utils
import hashlib
import hmac
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from django.conf import settings
from django.utils import timezone
from django_tasks import task

from inbox import db
from inbox.models import Delivery, Message, OutboundAttempt
from inbox.providers import graph
from inbox.services.delivery import error_cut, message_delivery_set
from inbox.services.whatsapp import whatsapp_reply_sent

# Backoff between attempts: the first retry after about BACKOFF_FIRST s, doubling each time
# up to BACKOFF_MAX, each delay between half and all of that (jitter, so that replies that
# failed together do not retry together).
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 300.0
# Answers worth trying again: the provider is busy, throttling or briefly broken.
RETRYABLE_STATUSES = {408, 425, 429}


def attempt_stale_after() -> float:
    """Seconds after which a RUNNING delivery job's worker is taken for dead: more than an
    attempt takes (its connect and its answer, each within PROVIDER_TIMEOUT) and records."""
    return 2 * settings.PROVIDER_TIMEOUT + 2


@dataclass(frozen=True)
class Answer:
    """What one attempt came to."""

    outcome: str  # sent, retry, failed
    status_code: int | None
    error: str
    retry_after: float | None = None
    # The provider's id for the message it took (WhatsApp's wamid), when it gives one.
    wamid: str | None = None


def request_body(message: Message, *, now: datetime) -> bytes:
    """The SEND_MESSAGE request's body, exactly the bytes that are signed and sent."""
    event = {
        "type": "SEND_MESSAGE",
        "timestamp": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": {
            "id": str(message.id),
            "conversation_id": str(message.conversation_id),
            "content": message.content,
        },
    }
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def signature(body: bytes, secret: str) -> str:
    """X-Hub-Signature-256's value: the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds: a number of seconds or an HTTP date; None if absent or bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - timezone.now()).total_seconds())


# One client for the process, shared by the worker's threads (httpx's Client is thread-safe):
# a client per attempt built its TLS context and its connection pool every time, some tens
# of milliseconds of CPU before each request; this one also keeps connections alive to a
# provider that allows it. Timeouts are per request (PROVIDER_TIMEOUT may change).
_client: httpx.Client | None = None
_client_made = threading.Lock()


def _provider_client() -> httpx.Client:
    global _client
    with _client_made:
        if _client is None:
            _client = httpx.Client(limits=httpx.Limits(max_connections=100))
        return _client


def _whatsapp_post(message: Message) -> Answer:
    """The reply as a WhatsApp message to the customer's wa_id: a template when the agent
    chose one (the 24-hour window had closed), else text."""
    to = message.conversation.wa_id or ""
    attachment = message.attachment or {}
    if message.kind == "template":
        body = graph.template_body(
            to=to,
            name=attachment.get("template", ""),
            language=attachment.get("language", ""),
            parameters=list(attachment.get("parameters", [])),
        )
    else:
        body = graph.text_body(to=to, text=message.content)
    sent = graph.message_send(body, timeout=settings.PROVIDER_TIMEOUT)
    return Answer(sent.outcome, sent.status_code, sent.error, wamid=sent.wamid)


def _post(message: Message) -> Answer:
    if message.conversation.channel == "whatsapp":
        return _whatsapp_post(message)
    body = request_body(message, now=timezone.now())
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": str(message.id),
        "X-Hub-Signature-256": signature(body, settings.PROVIDER_SECRET),
    }
    try:
        response = _provider_client().post(
            settings.PROVIDER_URL,
            content=body,
            headers=headers,
            timeout=settings.PROVIDER_TIMEOUT,
        )
    except httpx.TimeoutException as exc:
        return Answer("retry", None, f"timeout after {settings.PROVIDER_TIMEOUT} s: {exc!r}")
    except httpx.TransportError as exc:
        return Answer("retry", None, f"connection error: {exc!r}")
    status = response.status_code
    if 200 <= status < 300 or status == 409:
        return Answer("sent", status, "")
    error = f"{status}: {response.text}"
    if status in RETRYABLE_STATUSES or status >= 500:
        return Answer("retry", status, error, _retry_after(response.headers.get("Retry-After")))
    return Answer("failed", status, error)


def backoff(attempts: int) -> float:
    """The delay before attempt number `attempts + 1`, with jitter."""
    ceiling = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, attempts - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 (jitter, not a secret)


@task()
def reply_deliver(*, message_id: str, since: str) -> str:
    """One attempt at delivering a PENDING reply; `since` starts its PROVIDER_RETRY_FOR."""
    ident = uuid.UUID(message_id)
    message = Message.objects.select_related("conversation").filter(pk=ident).first()
    if message is None or message.delivery != Delivery.PENDING:
        # Settled meanwhile (an echo, a status, a repeat of this job after a worker died).
        return "settled"
    started = time.monotonic()
    answer = _post(message)
    duration_ms = round((time.monotonic() - started) * 1000)
    return _attempt_record(
        message=message,
        since=datetime.fromisoformat(since),
        answer=answer,
        duration_ms=duration_ms,
    )


def _attempt_record(*, message: Message, since: datetime, answer: Answer, duration_ms: int) -> str:
    """Log the attempt and settle the reply or queue its next attempt, in one transaction."""
    outcome = answer.outcome
    now = timezone.now()
    deadline = since + timedelta(seconds=settings.PROVIDER_RETRY_FOR)
    run_after = None
    if outcome == "retry":
        attempts = OutboundAttempt.objects.filter(message=message, attempted_at__gte=since).count()
        delay = max(backoff(attempts + 1), answer.retry_after or 0.0)
        if now >= deadline or (
            answer.retry_after is not None and now + timedelta(seconds=delay) > deadline
        ):
            # Out of time, or told to wait past it: the last error is the reason.
            outcome = "failed"
        else:
            # The last attempt at the deadline itself, not after it.
            run_after = min(now + timedelta(seconds=delay), deadline)
    with db.write():
        OutboundAttempt.objects.create(
            message=message,
            attempted_at=now - timedelta(milliseconds=duration_ms),
            status_code=answer.status_code,
            outcome=outcome,
            error=error_cut(answer.error) or "",
            duration_ms=duration_ms,
        )
        if outcome == "sent" and answer.wamid:
            # SENT, the wamid and the statuses WhatsApp sent before this commit, in that order
            # and under the wamid's lock first (the webhook's order: no deadlock).
            whatsapp_reply_sent(message_id=message.id, wamid=answer.wamid)
        elif outcome == "sent":
            message_delivery_set(
                message_id=message.id, delivery=Delivery.SENT, only_from=Delivery.PENDING
            )
        elif outcome == "failed":
            message_delivery_set(
                message_id=message.id,
                delivery=Delivery.FAILED,
                error=answer.error,
                only_from=Delivery.PENDING,
            )
        else:
            reply_deliver.using(run_after=run_after).enqueue(
                message_id=str(message.id), since=since.isoformat()
            )
    return outcome
