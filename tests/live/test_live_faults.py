"""A sick Redis costs the webhook nothing: real servers against a private Redis.

- Frozen (SIGSTOP: connections open, nothing answers) with no agent connected, signed
  webhooks are still answered 201 at once, and the database pool is not held by pushes.
- Down (refused), the server logs the first failure with its traceback and then a count per
  interval, not one ERROR per event, and the probe likewise, not one per probe; a line says
  when each recovers.
"""

import http.client
import itertools
import json
import re
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


def test_redis_down_logs_one_traceback_a_count_and_the_recovery(serve, private_redis):
    server = serve(REDIS_URL=private_redis.url, WEBHOOK_SECRET=SECRET)
    assert post_signed(server, new_conversation())[0] == 201
    private_redis.stop()
    answers = deliver(server, events(400), senders=8)
    assert [status for status, _ in answers] == [201] * 400
    # Probes while it is down: an orchestrator polls readiness all along.
    for _ in range(5):
        assert readyz_status(server) == 503
    private_redis.start()
    # Redis is back: the next pushes go out (once the breaker's cool-down is over), and the
    # probe sees it; the failures' count and the recovery are logged.
    deadline = time.monotonic() + WAIT_LIMIT
    while "live: pushes go out again" not in server.output():
        assert time.monotonic() < deadline, server.output()[-5000:]
        assert post_signed(server, new_conversation())[0] == 201
        time.sleep(0.5)
    assert readyz_status(server) == 200
    output = server.output()
    # One traceback per kind of failure seen (the pushes, the probe), not one per event.
    assert logged_tracebacks(output) == 2, output[-5000:]
    assert len(error_lines(output)) <= 4, "\n".join(error_lines(output)[:20])
    counts = re.findall(r"live: (\d+) pushes failed in the last \d+ s: \w+", output)
    assert counts, output[-5000:]
    assert sum(map(int, counts)) >= 300, counts
    assert re.search(r"readyz: channel_layer: \d+ probes failed in the last \d+ s", output)
    assert "readyz: channel_layer is reachable again" in output


def logged_tracebacks(output: str) -> int:
    """Log records with a traceback (a chained exception's second traceback not counted)."""
    lines = output.splitlines()
    return sum(
        1
        for before, line in itertools.pairwise(lines)
        if line.startswith("Traceback") and re.match(r"\d{4}-\d\d-\d\d ", before)
    )


def readyz_status(server: Server) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_LIMIT)
    try:
        conn.request("GET", "/readyz")
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()
