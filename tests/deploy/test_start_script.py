"""The container's start command, run outside Docker against the real PostgreSQL and Redis.

CI cannot build the image (no Docker engine), so this runs the very script the image runs,
bin/start, in the image's production mode: it must migrate a fresh database, serve, answer
/readyz, store a signed webhook, serve the collected static files, and log JSON lines.
"""

import http.client
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pytest

from tests.conftest import REDIS_URL, free_port, new_conversation, require_service, sign
from tests.deploy.test_deploy import env_file

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.deploy]

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
BIN_PATH = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
PROXY = {"X-Forwarded-Proto": "https"}  # what the TLS proxy in front adds


def postgres_server_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith("postgres") else "postgres://postgres@127.0.0.1:5432/postgres"


@contextmanager
def fresh_database(suffix: str) -> Iterator[str]:
    """A new, empty database of its own on the PostgreSQL server the suite uses; its URL."""
    server = postgres_server_url()
    require_service("PostgreSQL", server, 5432)
    parsed = urlparse(server)
    name = f"test_{parsed.path.lstrip('/') or 'postgres'}_{suffix}"
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parsed._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def start_database() -> Iterator[str]:
    with fresh_database("start") as url:
        yield url


@dataclass
class Server:
    port: int
    env: dict[str, str]
    database_url: str
    log: Path

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            headers = {"Host": "localhost", **(headers or {})}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def static_root(tmp_path_factory) -> Path:
    """collectstatic as the image's build step runs it: DEBUG off, and no secrets."""
    root = tmp_path_factory.mktemp("static")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT,
        env={"PATH": BIN_PATH, "DEBUG": "false", "STATIC_ROOT": str(root)},
        check=True,
        capture_output=True,
        timeout=120,
    )
    return root


@contextmanager
def started(env: dict[str, str], database_url: str, tmp: Path) -> Iterator[Server]:
    """bin/start running with `env` on a free port until the block ends, ready to serve."""
    require_service("Redis", REDIS_URL, 6379)
    port = free_port()
    env = {**env, "PORT": str(port)}
    log = tmp / "stdout.log"
    with log.open("wb") as stdout, (tmp / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603  (our own start script)
            [str(ROOT / "bin" / "start")], env=env, stdout=stdout, stderr=stderr
        )
    served = Server(port=port, env=env, database_url=database_url, log=log)
    try:
        wait_until_ready(served, process, tmp / "stderr.log")
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def production_env(database_url: str, static_root: Path) -> dict[str, str]:
    """What the start command gets in production: fresh secrets, DEBUG off, no shell PATH."""
    return {
        "PATH": BIN_PATH,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "WEBHOOK_SECRET": secrets.token_hex(32),
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "CHANNEL_LAYER_PREFIX": f"start-test-{uuid.uuid4().hex}",
        "ALLOWED_HOSTS": "localhost,127.0.0.1",
        "STATIC_ROOT": str(static_root),
    }


@pytest.fixture(scope="module")
def server(start_database, static_root, tmp_path_factory) -> Iterator[Server]:
    """Production behind a TLS proxy: strict defaults, X-Forwarded-Proto trusted."""
    env = {**production_env(start_database, static_root), "TRUST_X_FORWARDED_PROTO": "true"}
    with started(env, start_database, tmp_path_factory.mktemp("server")) as served:
        yield served


@pytest.fixture(scope="module")
def trial_server(start_database, static_root, tmp_path_factory) -> Iterator[Server]:
    """`cp .env.example .env && docker compose up`: the example as it is, plus what the
    image (DEBUG) and docker-compose.yml (DATABASE_URL, REDIS_URL, PORT) set."""
    env = {
        **env_file((ROOT / ".env.example").read_text()),
        "PATH": BIN_PATH,
        "DEBUG": "false",
        "DATABASE_URL": start_database,
        "REDIS_URL": REDIS_URL,
        "STATIC_ROOT": str(static_root),
    }
    with started(env, start_database, tmp_path_factory.mktemp("trial")) as served:
        yield served


def wait_until_ready(served: Server, process: subprocess.Popen, stderr: Path) -> None:
    """Poll /readyz until 200; a start that fails or never gets ready fails the tests."""
    deadline = time.monotonic() + 90
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"bin/start exited with {process.returncode}:\n{stderr.read_text()}")
        try:
            status, _, body = served.request("GET", "/readyz")
        except OSError as error:
            last = str(error)
        else:
            if status == 200:
                return
            last = f"{status} {body!r}"
        time.sleep(0.25)
    pytest.fail(f"/readyz never answered 200 (last: {last}):\n{stderr.read_text()}")


def test_it_migrates_and_reports_ready(server):
    status, _, body = server.request("GET", "/readyz")
    assert status == 200
    assert json.loads(body) == {"status": "ok", "checks": {"database": "ok", "channel_layer": "ok"}}
    with psycopg.connect(server.database_url) as connection:
        applied = connection.execute("SELECT app FROM django_migrations").fetchall()
    assert {"inbox", "auth", "sessions"} <= {app for (app,) in applied}


def test_the_container_health_check_passes(server):
    result = subprocess.run(  # noqa: S603  (our own health check)
        [sys.executable, str(ROOT / "bin" / "healthcheck")],
        env={**server.env, "ALLOWED_HOSTS": ".localhost,127.0.0.1"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_the_health_check_fails_when_nothing_answers(server):
    result = subprocess.run(  # noqa: S603  (our own health check)
        [sys.executable, str(ROOT / "bin" / "healthcheck")],
        env={**server.env, "PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "readyz did not answer" in result.stdout


def test_a_signed_webhook_is_stored(server):
    conversation_id = uuid.uuid4()
    body = json.dumps(new_conversation(conversation_id)).encode()
    headers = {
        **PROXY,
        "Content-Type": "application/json",
        "X-Hub-Signature-256": sign(body, server.env["WEBHOOK_SECRET"]),
    }
    status, _, answer = server.request("POST", "/webhook/", body, headers)
    assert status == 201, answer
    with psycopg.connect(server.database_url) as connection:
        row = connection.execute(
            "SELECT status FROM inbox_conversation WHERE id = %s", [conversation_id]
        ).fetchone()
    assert row == ("OPEN",)


def test_an_unsigned_webhook_is_refused_and_not_stored(server):
    conversation_id = uuid.uuid4()
    body = json.dumps(new_conversation(conversation_id)).encode()
    status, _, answer = server.request(
        "POST", "/webhook/", body, {**PROXY, "Content-Type": "application/json"}
    )
    assert status == 401
    assert json.loads(answer)["error"] == "signature_missing"
    with psycopg.connect(server.database_url) as connection:
        count = connection.execute(
            "SELECT count(*) FROM inbox_conversation WHERE id = %s", [conversation_id]
        ).fetchone()
    assert count == (0,)


def test_plain_http_is_redirected_to_https(server):
    status, headers, _ = server.request("GET", "/accounts/login/")
    assert status == 301
    assert headers["Location"] == "https://localhost/accounts/login/"


def test_https_pages_carry_hsts_and_hashed_static_files_are_served(server):
    status, headers, page = server.request("GET", "/accounts/login/", headers=PROXY)
    assert status == 200
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
    # The manifest storage rewrote the script's URL to a content-hashed name.
    scripts = [
        part.split('"')[0] for part in page.decode().split('src="')[1:] if "/static/" in part
    ]
    assert scripts and all(re.search(r"\.[0-9a-f]{12}\.js$", url) for url in scripts), scripts
    status, headers, script = server.request("GET", scripts[0], headers=PROXY)
    assert status == 200
    assert len(script) > 1000
    assert "immutable" in headers["Cache-Control"]


def test_everything_it_logs_is_json_lines(server):
    lines = [line for line in server.log.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]
    assert any(entry["logger"].startswith("daphne") for entry in entries)
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)


def test_containers_starting_together_migrate_in_turn(tmp_path):
    """Replicas started at once on an empty database: each migration applied once, no error.

    Plain `migrate` run twice at once fails here ("column ... does not exist", "relation
    already exists"); bin/start's `migrate_exclusive` takes PostgreSQL's advisory lock.
    """
    with fresh_database("race") as url:
        env = {
            "PATH": BIN_PATH,
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "WEBHOOK_SECRET": secrets.token_hex(32),
            "DATABASE_URL": url,
        }
        processes = [
            subprocess.Popen(
                [sys.executable, "manage.py", "migrate_exclusive", "--verbosity", "0"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(3)
        ]
        outputs = [process.communicate(timeout=180)[0] for process in processes]
        assert [process.returncode for process in processes] == [0, 0, 0], outputs
        with psycopg.connect(url) as connection:
            applied = connection.execute(
                "SELECT app, name, count(*) FROM django_migrations GROUP BY app, name"
            ).fetchall()
        assert applied and all(count == 1 for _, _, count in applied)
        assert ("inbox", "0001_initial", 1) in applied


@pytest.mark.browser
def test_the_example_env_serves_an_agent_created_as_documented(trial_server, page):
    """The README's add_agent command, then a real browser logging in over plain
    http://localhost and http://127.0.0.1 with the example's secure cookies."""
    password = secrets.token_urlsafe(16)
    subprocess.run(
        [sys.executable, "manage.py", "add_agent", "maria"],
        cwd=ROOT,
        env={**trial_server.env, "AGENT_PASSWORD": password},
        check=True,
        capture_output=True,
        timeout=60,
    )
    for host in ("localhost", "127.0.0.1"):
        page.context.clear_cookies()
        page.goto(f"http://{host}:{trial_server.port}/")
        assert "/accounts/login/" in page.url
        page.fill("input[name=username]", "maria")
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_selector("#conversation-list")
        assert page.url == f"http://{host}:{trial_server.port}/"


# --- Waiting for PostgreSQL and Redis (manage.py wait_for_services, run by bin/start) -----


def start_process(env: dict[str, str], tmp: Path) -> tuple[subprocess.Popen, Path, Path]:
    stdout_path, stderr_path = tmp / "stdout.log", tmp / "stderr.log"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603  (our own start script)
            [str(ROOT / "bin" / "start")], env=env, stdout=stdout, stderr=stderr
        )
    return process, stdout_path, stderr_path


def messages(log: Path) -> list[str]:
    return [json.loads(line)["message"] for line in log.read_text().splitlines() if line.strip()]


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def start_env(start_database, static_root) -> dict[str, str]:
    require_service("Redis", REDIS_URL, 6379)
    return {**production_env(start_database, static_root), "PORT": str(free_port())}


def test_start_waits_for_a_redis_that_comes_up_late(start_env, private_redis, tmp_path):
    """An orchestrator that starts everything at once: the app waits, then serves."""
    private_redis.stop()
    env = {**start_env, "REDIS_URL": private_redis.url, "STARTUP_WAIT_TIMEOUT": "30"}
    process, stdout, stderr = start_process(env, tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not any(m.startswith("waiting for Redis") for m in messages(stdout)):
            assert process.poll() is None, stderr.read_text()
            assert time.monotonic() < deadline, "no 'waiting for Redis' line"
            time.sleep(0.1)
        time.sleep(1)  # still waiting a second later, not failed
        assert process.poll() is None, stderr.read_text()
        private_redis.start()
        served = Server(
            port=int(env["PORT"]), env=env, database_url=env["DATABASE_URL"], log=stdout
        )
        wait_until_ready(served, process, stderr)
    finally:
        stop(process)
    logged = messages(stdout)
    where = f"127.0.0.1:{private_redis.port}"
    assert f"waiting for Redis at {where} (up to 30 s, STARTUP_WAIT_TIMEOUT)" in logged
    assert any(re.fullmatch(rf"Redis at {where} is ready after \d+\.\d s", m) for m in logged)
    assert any(m.startswith("waiting for PostgreSQL at 127.0.0.1:5432") for m in logged)


@pytest.mark.parametrize("service", ["PostgreSQL", "Redis"])
def test_start_gives_up_naming_what_is_unreachable(service, start_env, tmp_path):
    port = free_port()
    env = {**start_env, "STARTUP_WAIT_TIMEOUT": "3"}
    if service == "PostgreSQL":
        env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{port}/nothing"
    else:
        env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    began = time.monotonic()
    process, stdout, stderr = start_process(env, tmp_path)
    try:
        returncode = process.wait(timeout=60)
    finally:
        stop(process)
    took = time.monotonic() - began
    error = stderr.read_text()
    assert returncode != 0
    assert f"unreachable: {service} at 127.0.0.1:{port}" in error, error
    other = {"PostgreSQL", "Redis"} - {service}
    assert not any(f"{name} at" in error for name in other), error  # the other one answered
    assert 3 <= took < 30  # it waited the timeout, and no longer than it takes to start
    assert f"waiting for {service} at 127.0.0.1:{port} (up to 3 s, STARTUP_WAIT_TIMEOUT)" in (
        messages(stdout)
    )


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_stop_while_waiting_ends_the_start_and_its_step(start_env, tmp_path):
    """SIGTERM during the wait: bin/start ends at once, and takes the step under way with it
    (in a container it is PID 1, which ignores a signal it has no handler for)."""
    env = {**start_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    env["STARTUP_WAIT_TIMEOUT"] = "60"
    process, stdout, stderr = start_process(env, tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not any(m.startswith("waiting for Redis") for m in messages(stdout)):
            assert process.poll() is None, stderr.read_text()
            assert time.monotonic() < deadline, "no 'waiting for Redis' line"
            time.sleep(0.1)
        steps = children(process.pid)
        assert steps, "bin/start runs its steps as child processes"
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=5)
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in steps) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in steps), "the waiting step outlived bin/start"
        assert returncode == 143
    finally:
        stop(process)
        for pid in children(process.pid):
            os.kill(pid, signal.SIGKILL)
