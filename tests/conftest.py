"""Fixtures shared by the whole suite: agents, event builders, and the real services."""

import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.db import connection
from django.test import Client, override_settings

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _redis_of_this_worker(url: str) -> str:
    """`url` with a Redis database of this pytest-xdist worker's own (the given one plus the
    worker's number): one worker's groups and channels never reach another's tests."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ...; unset without -n
    if not worker.startswith("gw"):
        return url
    parsed = urlparse(url)
    database = int(parsed.path.lstrip("/") or 0) + int(worker[2:])
    return parsed._replace(path=f"/{database}").geturl()


REDIS_URL = _redis_of_this_worker(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, the app's own Redis (settings, and the servers the tests start,
    which inherit the environment) is this worker's database too."""
    if not os.environ.get("REDIS_URL") or os.environ["REDIS_URL"] == REDIS_URL:
        return
    from django.conf import settings

    os.environ["REDIS_URL"] = REDIS_URL
    settings.REDIS_URL = REDIS_URL
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [REDIS_URL]


T0 = datetime(2025, 2, 21, 10, 20, 41, tzinfo=UTC)
# An id no test stores, for "no such conversation/message" cases. Fixed, not uuid4(): a
# parameter is part of a test's name, which every pytest-xdist worker must collect the same.
NO_SUCH_ID = uuid.UUID("00000000-0000-4000-8000-00000000dead")


def at(seconds: float) -> str:
    """An ISO 8601 timestamp `seconds` after T0."""
    return (T0 + timedelta(seconds=seconds)).isoformat()


def service_reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or default_port), 1):
            return True
    except OSError:
        return False


def require_service(name: str, url: str, default_port: int) -> None:
    """Skip when a real service is absent; under CI its absence is a failure, never a skip."""
    if service_reachable(url, default_port):
        return
    reason = f"{name} is not reachable at {url}"
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: tests that need it must run)")
    pytest.skip(reason)


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", REDIS_URL, 6379)
    return REDIS_URL


def new_conversation(conversation_id: uuid.UUID | None = None, ts: float = 0) -> dict:
    return {
        "type": "NEW_CONVERSATION",
        "timestamp": at(ts),
        "data": {"id": str(conversation_id or uuid.uuid4())},
    }


def new_message(
    conversation_id: uuid.UUID | str,
    ts: float = 1,
    *,
    message_id: uuid.UUID | None = None,
    direction: str = "RECEIVED",
    content: str = "Olá, preciso de ajuda",
) -> dict:
    return {
        "type": "NEW_MESSAGE",
        "timestamp": at(ts),
        "data": {
            "id": str(message_id or uuid.uuid4()),
            "direction": direction,
            "content": content,
            "conversation_id": str(conversation_id),
        },
    }


def close_conversation(conversation_id: uuid.UUID | str, ts: float = 100) -> dict:
    return {"type": "CLOSE_CONVERSATION", "timestamp": at(ts), "data": {"id": str(conversation_id)}}


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def post_event(client: Client) -> Callable:
    """POST an event (a dict, or raw bytes) to the webhook, signed when a secret is given."""

    def post(event: dict | bytes, *, secret: str | None = None, client: Client = client):
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        headers = {"HTTP_X_HUB_SIGNATURE_256": sign(body, secret)} if secret else {}
        return client.post("/webhook/", body, content_type="application/json", **headers)

    return post


def deliver_concurrently(bodies: list[bytes]) -> Counter:
    """POST each body from its own thread, all released at the same instant; the statuses."""
    barrier = threading.Barrier(len(bodies))
    statuses: list[int] = []

    def deliver(body: bytes) -> None:
        client = Client()
        barrier.wait()
        try:
            response = client.post("/webhook/", body, content_type="application/json")
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Counter(statuses)


# PBKDF2 is slow on purpose; a test's users need no protection. MD5 hashes in this process,
# the production hashers stay listed for a password a server subprocess has to check
# (it runs with the real settings, which have no MD5: see test_server's login test).
FAST_PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]


@pytest.fixture(autouse=True)
def default_language() -> Iterator[None]:
    """Each test starts in the default language: LocaleMiddleware leaves the language of the
    test client's last request active in the thread, and services' texts (a refusal's
    reason) are translated outside requests too."""
    yield
    from django.utils import translation

    translation.deactivate()


@pytest.fixture(autouse=True, scope="session")
def fast_password_hasher() -> Iterator[None]:
    with override_settings(PASSWORD_HASHERS=FAST_PASSWORD_HASHERS):
        yield


def set_server_password(user, password: str) -> None:
    """A password a `serve` subprocess can check: it hashes with the production hashers."""
    from django.contrib.auth.hashers import make_password

    user.password = make_password(password, hasher="pbkdf2_sha256")
    user.save(update_fields=["password"])


@pytest.fixture
def agent(db):
    from tests import factories  # here: factories imports this module's T0

    return factories.agent()


@pytest.fixture
def agent_client(agent) -> Client:
    client = Client()
    client.force_login(agent)
    return client


CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium keeps dialling Google's hosts, which this network refuses.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser():
    """Debian's Chromium driven by Playwright (which cannot download its own browser here).

    One per test, not per session: Playwright's sync API keeps an event loop running in the
    main thread while it is open, and every later test would then run inside it (where
    async_to_sync refuses to run, and DJANGO_ALLOW_ASYNC_UNSAFE would stay set).
    """
    if not os.path.exists(CHROMIUM):
        reason = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: browser tests must run)")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # around it are still synchronous and safe.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(browser):
    """A fresh browser context (cookies, language) per test."""
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 800})
    yield context.new_page()
    context.close()


# What the Content-Security-Policy blocks shows in the page as a `securitypolicyviolation`
# event; the init script runs before any of the page's own, in every document of the context.
WATCH_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportViolation(
    `${event.effectiveDirective} blocked ${event.blockedURI || "inline"} ` +
    `at ${event.sourceFile || location.href}:${event.lineNumber} ${event.sample || ""}`
  );
}, true);
"""
POLICY_CONSOLE_ERRORS = ("Content Security Policy", "Content-Security-Policy", "Permissions-Policy")


@pytest.fixture
def violations(page) -> list[str]:
    """What went wrong on `page`, each a line: a CSP violation, a console error about a
    policy header, or an uncaught script error. A test that uses it ends by asserting it is
    empty."""
    found: list[str] = []

    def report(line: str) -> None:
        found.append(line)

    page.context.expose_function("reportViolation", report)
    page.context.add_init_script(WATCH_VIOLATIONS)

    def console(message) -> None:
        if message.type == "error" and any(p in message.text for p in POLICY_CONSOLE_ERRORS):
            found.append(f"console: {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda error: found.append(f"uncaught: {error}"))
    return found


# Real server processes (`manage.py serve`), for the live-update and shutdown tests.
# Generous bounds for a loaded 2-core machine: they only keep a broken run from hanging.
STARTUP_LIMIT = 60
WAIT_LIMIT = 30


def free_port() -> int:
    """A local port nothing listens on (bound, then released): free for a server the test
    starts, and refused at once for a client that should find nothing there."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url() -> str:
    """The test database, for a server process to share with the test."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


class Server:
    def __init__(self, process: subprocess.Popen, port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def serve(tmp_path) -> Iterator[Callable[..., Server]]:
    """Start `manage.py serve` on the test database; kill whatever is left at the end.

    `serve(port=..., args=(daphne's arguments), REDIS_URL=...)`: keyword arguments in capitals
    are the server's environment; without REDIS_URL it has the in-process channel layer.
    `preexec_fn` runs in the child before it starts (e.g. to lower its open-file limit).
    """
    from django.conf import settings

    started: list[Server] = []

    def start(
        port: int | None = None,
        args: tuple[str, ...] = (),
        preexec_fn: Callable[[], None] | None = None,
        **env: str,
    ) -> Server:
        port = port or free_port()
        log = tmp_path / f"serve-{port}-{len(started)}.log"
        environment = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "DEBUG": "true",
            "SQLITE_BUSY_TIMEOUT": "60",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        if "REDIS_URL" not in env:
            environment.pop("REDIS_URL", None)
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "serve", "-b", "127.0.0.1", "-p", str(port), *args],
            cwd=settings.BASE_DIR,
            env=environment,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn,
        )
        server = Server(process, port, log)
        started.append(server)
        deadline = time.monotonic() + STARTUP_LIMIT
        while time.monotonic() < deadline:
            assert process.poll() is None, f"the server died:\n{server.output()}"
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                return server
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"the server did not listen:\n{server.output()}")

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


class PrivateRedis:
    """A redis-server of the test's own, which it may stop, freeze or kill.

    The shared Redis on 127.0.0.1:6379 is the whole suite's (and CI's): fault tests never
    touch it. `freeze()` is SIGSTOP (a hung Redis: connections open, nothing answers),
    `thaw()` SIGCONT, `stop()` / `start()` take it down and bring it back on the same port.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603
            [
                REDIS_SERVER,
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + STARTUP_LIMIT
        while time.monotonic() < deadline:
            if service_reachable(self.url, 6379):
                return
            time.sleep(0.05)
        pytest.fail(f"the private redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.thaw()
            self.process.terminate()
            self.process.wait(10)

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)


REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    """A started private Redis (see PrivateRedis); skipped, or failed under CI, without one."""
    if not os.path.exists(REDIS_SERVER):
        reason = "redis-server is not installed (apt-get install redis-server)"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: fault tests must run)")
        pytest.skip(reason)
    redis = PrivateRedis(tmp_path)
    redis.start()
    yield redis
    redis.stop()
