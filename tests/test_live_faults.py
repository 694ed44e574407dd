"""A sick Redis costs the webhook nothing: real servers against a private Redis.

- Frozen (SIGSTOP: connections open, nothing answers) with no agent connected, signed
  webhooks are still answered 201 at once, and the database pool is not held by pushes.
- Down (refused), the server logs the first failure with its traceback and then a count per
  interval, not one ERROR per event.
"""

import http.client
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import WAIT_LIMIT, Server, new_conversation, new_message, sign

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "a-webhook-secret-for-the-fault-tests"


def post_signed(server: Server, event: dict) -> tuple[int, float]:
    """POST one signed event; its status and how long the answer took, in seconds."""
    body = json.dumps(event).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, SECRET)}
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_LIMIT)
    try:
        conn.request("POST", "/webhook/", body, headers)
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    finally:
        conn.close()


def events(count: int) -> list[dict]:
    """`count` events: new conversations, and a message in each."""
    made = []
    while len(made) < count:
        ident = uuid.uuid4()
        made += [new_conversation(ident), new_message(ident, ts=1)]
    return made[:count]


def deliver(server: Server, batch: list[dict], senders: int) -> list[tuple[int, float]]:
    """Each event in order per conversation: a conversation's two events on one sender."""
    pairs = [batch[i : i + 2] for i in range(0, len(batch), 2)]

    def send_pair(pair: list[dict]) -> list[tuple[int, float]]:
        return [post_signed(server, event) for event in pair]

    with ThreadPoolExecutor(senders) as pool:
        return [answer for answers in pool.map(send_pair, pairs) for answer in answers]


def test_a_frozen_redis_costs_the_webhook_nothing(serve, private_redis):
    server = serve(REDIS_URL=private_redis.url, WEBHOOK_SECRET=SECRET)
    # Warm up with Redis healthy: the process has its connections to Redis open.
    assert post_signed(server, new_conversation())[0] == 201
    private_redis.freeze()
    try:
        started = time.monotonic()
        answers = deliver(server, events(32), senders=16)
        elapsed = time.monotonic() - started
        statuses = [status for status, _ in answers]
        assert statuses == [201] * 32, server.output()
        # Each one took redis-py's 5 s timeout (or the pool's 10 s, then 503) before the fix.
        assert elapsed < 5, f"32 webhooks took {elapsed:.1f} s with Redis frozen"
        # The database pool is free: webhooks that follow are answered at once, one by one.
        for event in events(10):
            status, took = post_signed(server, event)
            assert status == 201
            assert took < 1.5, f"a webhook took {took:.1f} s after the burst"
    finally:
        private_redis.thaw()


def error_lines(output: str) -> list[str]:
    # The development log format: "<time> <LEVEL> <logger>: <message>" (project/settings.py).
    return [line for line in output.splitlines() if " ERROR " in line]


def test_redis_down_logs_the_first_failure_then_a_count(serve, private_redis):
    server = serve(REDIS_URL=private_redis.url, WEBHOOK_SECRET=SECRET)
    assert post_signed(server, new_conversation())[0] == 201
    private_redis.stop()
    answers = deliver(server, events(200), senders=8)
    assert [status for status, _ in answers] == [201] * 200
    time.sleep(1)  # what is logged after the last answer, too
    output = server.output()
    errors = error_lines(output)
    assert errors, "the failure must be logged"
    assert "Traceback" in output, "the first failure is logged with its traceback"
    # One line for the first failure, then a count per interval: not one per event.
    assert len(errors) <= 5, "\n".join(errors[:20])
