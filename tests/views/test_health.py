"""/healthz and /readyz: what a load balancer or the container's health check sees."""

import http.client
import json
import time
import uuid

import pytest
from django.db import connection
from django.db.utils import ConnectionHandler

from inbox import health
from tests.conftest import WAIT_LIMIT, free_port, new_conversation, sign


def redis_layer(url: str) -> dict:
    return {
        "default": {
            "BACKEND": "inbox.channel_layer.InboxChannelLayer",
            # A prefix of its own, so a probe never meets another test's messages.
            "CONFIG": {"hosts": [url], "prefix": f"readyz-test-{uuid.uuid4().hex}"},
        }
    }


@pytest.fixture
def postgres_down(monkeypatch) -> None:
    """The database the probe uses is a PostgreSQL server on a port where none listens."""
    unreachable = ConnectionHandler(
        {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": "inbox",
                "USER": "postgres",
                "HOST": "127.0.0.1",
                "PORT": free_port(),
                "OPTIONS": {"connect_timeout": 2},
            }
        }
    )
    monkeypatch.setattr(health, "connections", unreachable)
    yield
    unreachable.close_all()


@pytest.fixture
def redis_down(settings) -> None:
    settings.CHANNEL_LAYERS = redis_layer(f"redis://127.0.0.1:{free_port()}/0")


def test_healthz_answers_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_ok_with_the_configured_database_and_channel_layer(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "channel_layer": "ok"},
    }
    assert response["Cache-Control"] == "no-store"


@pytest.mark.redis
@pytest.mark.django_db
def test_readyz_is_ok_when_redis_answers(client, settings, redis_url):
    settings.CHANNEL_LAYERS = redis_layer(redis_url)
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"database": "ok", "channel_layer": "ok"}


@pytest.mark.django_db
def test_readyz_is_503_naming_redis_when_redis_is_unreachable(client, redis_down):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "channel_layer": "unreachable"},
        "detail": "unreachable: channel_layer",
    }


def test_readyz_is_503_naming_the_database_when_postgresql_is_unreachable(client, postgres_down):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"] == {"database": "unreachable", "channel_layer": "ok"}
    assert body["detail"] == "unreachable: database"


def test_readyz_names_both_when_both_are_unreachable(client, postgres_down, redis_down):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["detail"] == "unreachable: database, channel_layer"


def test_readyz_is_get_only(client):
    assert client.post("/readyz").status_code == 405


# Real server processes: what a container's health check and a provider see together.


def _request(server, method: str, path: str, body: bytes = b"", headers=None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_LIMIT)
    try:
        conn.request(method, path, body, headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def _signed_webhook(server, secret: str) -> tuple[int, dict, float]:
    """POST a signed NEW_CONVERSATION; its status, body and how long the answer took."""
    body = json.dumps(new_conversation()).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret)}
    started = time.monotonic()
    status, answer = _request(server, "POST", "/webhook/", body, headers)
    return status, answer, time.monotonic() - started


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_readiness_probes_leave_the_database_pool_to_the_webhook(serve):
    """Each probe once took a pooled connection and never gave it back: after as many
    probes as the pool had connections, every webhook waited for the pool and got a 503."""
    if connection.vendor != "postgresql":
        pytest.skip("the connection pool is PostgreSQL's")
    secret = "probe-test-secret"
    server = serve(DATABASE_POOL_SIZE="2", WEBHOOK_SECRET=secret)
    for _ in range(50):
        status, answer = _request(server, "GET", "/readyz")
        assert status == 200, answer
    status, answer, elapsed = _signed_webhook(server, secret)
    assert status == 201, answer
    assert elapsed < 1, f"the webhook waited {elapsed:.1f} s for a pooled connection"


def test_a_database_outage_fails_the_webhook_within_the_connect_timeout(serve):
    """The pool's own wait for a connection is bounded by DATABASE_CONNECT_TIMEOUT too, so a
    provider hears 503 quickly instead of holding a thread for the pool's default 10 s."""
    secret = "probe-test-secret"
    server = serve(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/inbox",
        DATABASE_CONNECT_TIMEOUT="2",
        WEBHOOK_SECRET=secret,
    )
    status, answer, elapsed = _signed_webhook(server, secret)
    assert status == 503, answer
    assert answer["error"] == "store_unavailable"
    assert elapsed < 2 + 1.5, f"the 503 took {elapsed:.1f} s"
