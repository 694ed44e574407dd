"""The image and the compose stack, built and run, and checked as an operator would.

The image is built from the Dockerfile with whichever engine answers: Docker, else podman
with `--format docker` (the OCI format drops HEALTHCHECK). docker-compose.yml then comes up
unchanged under a project name of its own, published on a free port, with `.env.example` as
the operator's `.env` (`cp .env.example .env`); a small override file only names the image
just built and that env file, so a developer's own `.env`, image and stack are never touched.
Everything is checked through the published port, `compose exec` and `compose stop`/`start`.

Run once by `.ci/run`, after the suite, as `pytest -m container`; the suite's own passes
deselect it. Without an engine it skips with the reason, and fails under CI=true.

On podman without systemd (CI's machines) nothing runs health checks by itself: the test runs
them with `podman healthcheck run`. podman-compose on podman < 4.6 ignores `depends_on:
condition: service_healthy` and starts all three containers at once: bin/start's own wait
for PostgreSQL and Redis (`manage.py wait_for_services`) is then what orders the start.

The tests share one stack and run in file order, each building on the state the previous
left (the agent's session, the stored conversations); the last one stops the app.
"""

import http.client
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.conftest import IN_CI, free_port, new_conversation, sign
from tests.deploy.test_deploy import env_file

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
IMAGE = "localhost/inbox:container-test"  # kept after the run: the next build reuses its layers
SERVICES = ("db", "redis", "app")
HEALTHY_WITHIN = 120  # seconds, for the whole stack from `up`
COMMAND_TIMEOUT = 120
BUILD_TIMEOUT = 600


@dataclass
class Engine:
    name: str  # "docker" or "podman"
    compose: list[str]  # the compose command for it


def answers(*command: str) -> bool:
    try:
        result = subprocess.run(  # noqa: S603  (the container engine's own CLI)
            command, capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def find_engine() -> Engine | str:
    """Docker when its daemon answers, else podman with podman-compose; else why neither."""
    if (
        shutil.which("docker")
        and answers("docker", "info")
        and answers("docker", "compose", "version")
    ):
        return Engine("docker", ["docker", "compose"])
    if shutil.which("podman") and answers("podman", "info"):
        podman_compose = shutil.which(
            "podman-compose", path=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"
        )
        if podman_compose:
            return Engine("podman", [podman_compose])
        return "podman answers but podman-compose is missing (the dev extra installs it)"
    return "no container engine answers (`docker info` nor `podman info`)"


def run(
    command: list[str], timeout: float = COMMAND_TIMEOUT, **kwargs
) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603  (the engine, compose, with our own arguments)
        command, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


@dataclass
class Stack:
    engine: Engine
    project: str
    port: int
    settings: dict[str, str]  # the operator's .env
    compose_command: list[str]
    compose_env: dict[str, str]
    # State the tests hand on, in file order.
    conversations: list[str] = field(default_factory=list)
    session: dict[str, str] = field(default_factory=dict)

    def compose(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
        return run([*self.compose_command, *args], timeout=timeout, env=self.compose_env, cwd=ROOT)

    def exec(self, service: str, *command: str) -> subprocess.CompletedProcess:
        return self.compose("exec", "-T", service, *command)

    def container(self, service: str) -> str:
        result = run(
            [
                self.engine.name, "ps", "-a", "-q",
                "--filter", f"label=com.docker.compose.project={self.project}",
                "--filter", f"label=com.docker.compose.service={service}",
            ]
        )  # fmt: skip
        ids = result.stdout.split()
        assert len(ids) == 1, f"{service}: containers {ids} ({result.stderr})"
        return ids[0]

    def healthy(self, service: str) -> bool:
        container = self.container(service)
        if self.engine.name == "podman":
            # No systemd timer runs it: this run is the check, and updates the status.
            return run(["podman", "healthcheck", "run", container], timeout=30).returncode == 0
        status = run(["docker", "inspect", "-f", "{{.State.Health.Status}}", container])
        return status.stdout.strip() == "healthy"

    def wait_healthy(self, *services: str, within: float = HEALTHY_WITHIN) -> None:
        deadline = time.monotonic() + within
        waiting = list(services)
        while waiting and time.monotonic() < deadline:
            waiting = [service for service in waiting if not self.healthy(service)]
            if waiting:
                time.sleep(1)
        if waiting:
            logs = "\n".join(f"--- {s}:\n{self.logs(s)}" for s in waiting)
            pytest.fail(f"not healthy within {within} s: {waiting}\n{logs}")

    def logs(self, service: str, tail: int | None = 40) -> str:
        last = ["--tail", str(tail)] if tail else []
        result = run([self.engine.name, "logs", *last, self.container(service)])
        return result.stdout + result.stderr

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """Through the published port, with the Host a browser on this machine sends."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            connection.request(
                method,
                path,
                body=body,
                headers={"Host": f"localhost:{self.port}", **(headers or {})},
            )
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()

    def post_webhook(self) -> tuple[str, int, bytes]:
        conversation_id = str(uuid.uuid4())
        body = json.dumps(new_conversation(uuid.UUID(conversation_id))).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(body, self.settings["WEBHOOK_SECRET"]),
        }
        status, _, answer = self.request("POST", "/webhook/", body, headers)
        return conversation_id, status, answer

    def psql(self, sql: str) -> str:
        result = self.exec(
            "db", "psql", "-U", self.settings["POSTGRES_USER"],
            "-d", self.settings["POSTGRES_DB"], "-tAc", sql,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def stored_status(self, conversation_id: str) -> str:
        uuid.UUID(conversation_id)  # only a UUID is ever inlined into the SQL
        return self.psql(f"SELECT status FROM inbox_conversation WHERE id = '{conversation_id}'")  # noqa: S608

    def readyz(self) -> tuple[int, dict]:
        status, _, body = self.request("GET", "/readyz")
        return status, json.loads(body)

    def wait_readyz(self, expected: int, within: float = 60) -> dict:
        deadline = time.monotonic() + within
        last: object = None
        while time.monotonic() < deadline:
            try:
                status, answer = self.readyz()
            except (OSError, http.client.HTTPException, ValueError) as error:
                last = error
            else:
                if status == expected:
                    return answer
                last = (status, answer)
            time.sleep(0.5)
        pytest.fail(f"/readyz never answered {expected} within {within} s (last: {last})")


def cookies_from(headers: http.client.HTTPMessage) -> dict[str, str]:
    jar = SimpleCookie()
    for header in headers.get_all("Set-Cookie") or []:
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def clean_up(engine: Engine, project: str, stack_compose) -> None:
    """Containers (with their anonymous volumes), then the network and named volumes."""
    label = f"label=com.docker.compose.project={project}"
    ids = run([engine.name, "ps", "-a", "-q", "--filter", label]).stdout.split()
    if ids:
        run([engine.name, "rm", "-f", "-v", *ids])
    stack_compose("down", "-v", "--timeout", "5")
    for volume in run([engine.name, "volume", "ls", "-q", "--filter", label]).stdout.split():
        run([engine.name, "volume", "rm", "-f", volume])
    for network in run([engine.name, "network", "ls", "-q", "--filter", label]).stdout.split():
        run([engine.name, "network", "rm", "-f", network])


@pytest.fixture(scope="module")
def engine() -> Engine:
    found = find_engine()
    if isinstance(found, str):
        if IN_CI:
            pytest.fail(f"{found} (CI=true: the container test must run)")
        pytest.skip(found)
    return found


@pytest.fixture(scope="module")
def image(engine) -> str:
    if engine.name == "podman":
        # --network=host: RUN steps reach the package mirrors through this machine's network.
        command = ["podman", "build", "--format", "docker", "--network=host", "-t", IMAGE, "."]
    else:
        command = ["docker", "build", "-t", IMAGE, "."]
    result = run(command, timeout=BUILD_TIMEOUT, cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    # node 22: the locked postcss tools refuse older engines (npm warns, the build goes on).
    assert "EBADENGINE" not in output, output[-5000:]
    return IMAGE


@pytest.fixture(scope="module")
def stack(engine, image, tmp_path_factory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("stack")
    # The operator's one step: cp .env.example .env.
    dotenv = directory / ".env"
    shutil.copy(ROOT / ".env.example", dotenv)
    override = directory / "override.yml"
    # The worker (README, "Replies") runs the same image, with the same settings.
    override.write_text(
        "services:\n"
        + "".join(
            f"  {service}:\n    image: {image}\n    env_file: !override\n      - {dotenv}\n"
            for service in ("app", "worker")
        )
    )
    project = f"inbox-test-{secrets.token_hex(4)}"
    port = free_port()
    compose_env = {
        # The shell's own POSTGRES_* or APP_* would win over the .env file: none of them.
        **{k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "APP_"))},
        "APP_BIND": "127.0.0.1",
        "APP_PORT": str(port),
        "BUILDAH_FORMAT": "docker",
    }
    served = Stack(
        engine=engine,
        project=project,
        port=port,
        settings=env_file(dotenv.read_text()),
        compose_command=[
            *engine.compose,
            "-p", project,
            "-f", str(ROOT / "docker-compose.yml"),
            "-f", str(override),
            "--env-file", str(dotenv),
        ],
        compose_env=compose_env,
    )  # fmt: skip
    try:
        up = served.compose("up", "-d", "--no-build", timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr
        served.wait_healthy(*SERVICES)
        yield served
    finally:
        clean_up(engine, project, served.compose)


# --- As it comes up ----------------------------------------------------------------------


def test_it_is_live_and_ready_through_the_published_port(stack):
    status, _, body = stack.request("GET", "/healthz")
    assert status == 200, body
    assert stack.readyz() == (
        200,
        {"status": "ok", "checks": {"database": "ok", "channel_layer": "ok"}},
    )


def test_it_waited_for_its_services_and_applied_every_migration(stack):
    plan = stack.exec("app", "python", "manage.py", "showmigrations", "--plan")
    assert plan.returncode == 0, plan.stderr
    lines = [line for line in plan.stdout.splitlines() if line.strip()]
    assert lines and all(line.startswith("[X]") for line in lines), plan.stdout
    assert any("inbox.0001_initial" in line for line in lines)
    # bin/start waited for both services itself (under podman-compose < 4.6, nothing else
    # ordered the start), then said when each answered.
    messages = [
        json.loads(line)["message"]
        for line in stack.logs("app", tail=None).splitlines()
        if line.startswith("{")
    ]
    for name, where in (("PostgreSQL", "db:5432"), ("Redis", "redis:6379")):
        assert f"waiting for {name} at {where} (up to 60 s, STARTUP_WAIT_TIMEOUT)" in messages
        assert any(
            re.fullmatch(rf"{name} at {where} is ready after \d+\.\d s", m) for m in messages
        )


def test_a_signed_webhook_is_stored_in_postgresql(stack):
    conversation_id, status, answer = stack.post_webhook()
    assert status == 201, answer
    assert stack.stored_status(conversation_id) == "OPEN"
    stack.conversations.append(conversation_id)


def test_the_login_page_and_its_hashed_stylesheet_are_served(stack):
    status, _, page = stack.request("GET", "/accounts/login/")
    assert status == 200
    stylesheets = re.findall(r'href="(/static/[^"]+\.css)"', page.decode())
    assert stylesheets, page.decode()[:2000]
    # The manifest storage rewrote the name to a content hash; Tailwind built it (node stage).
    assert all(re.search(r"\.[0-9a-f]{12}\.css$", url) for url in stylesheets), stylesheets
    status, headers, css = stack.request("GET", stylesheets[0])
    assert status == 200
    assert headers["Content-Type"].startswith("text/css")
    assert "immutable" in headers["Cache-Control"]
    assert len(css) > 1000


def readme_add_agent_command() -> list[str]:
    """The README's command that adds an agent to the running stack (## Production)."""
    readme = (ROOT / "README.md").read_text()
    production = readme.split("\n## Production\n", 1)[1].split("\n## ", 1)[0]
    for block in re.findall(r"```sh\n(.*?)```", production, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:3] == ["docker", "compose", "exec"]:
                return words[3:]
    pytest.fail("the README's Production section has no `docker compose exec` command")


def log_in(stack: Stack, username: str, password: str) -> dict[str, str]:
    """The login form, as a browser fills it in; the session's cookies."""
    status, headers, page = stack.request("GET", "/accounts/login/")
    assert status == 200
    cookies = cookies_from(headers)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.decode()).group(1)
    form = urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
    status, headers, body = stack.request(
        "POST",
        "/accounts/login/",
        form.encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie_header(cookies)},
    )
    assert status == 302, body.decode()[:2000]
    assert headers["Location"] == "/"
    return {**cookies, **cookies_from(headers)}


def test_the_readme_command_adds_an_agent_who_can_log_in(stack):
    password = secrets.token_urlsafe(16)
    words = [
        re.sub(r"^(AGENT_PASSWORD)=.*", rf"\1={password}", word)
        for word in readme_add_agent_command()
    ]
    assert f"AGENT_PASSWORD={password}" in words, words
    username = words[words.index("add_agent") + 1]
    added = stack.compose("exec", "-T", *words)
    assert added.returncode == 0, added.stdout + added.stderr
    session = log_in(stack, username, password)
    status, _, page = stack.request("GET", "/", headers={"Cookie": cookie_header(session)})
    assert status == 200
    assert 'id="conversation-list"' in page.decode()
    stack.session = session


def test_it_runs_as_a_non_root_user_who_cannot_write_the_app(stack):
    identity = stack.exec("app", "id")
    assert identity.stdout.split() == [
        "uid=10001(inbox)",
        "gid=10001(inbox)",
        "groups=10001(inbox)",
    ]
    write = stack.exec("app", "touch", "/app/manage.py", "/app/new-file")
    assert write.returncode != 0
    assert "Permission denied" in write.stderr
    listing = stack.exec("app", "ls", "-A", "/app").stdout.split()
    # .dockerignore keeps local state, tests, docs and pip's metadata out of the image.
    assert "manage.py" in listing and "staticfiles" in listing
    unwanted = {".env", ".git", ".venv", "tests", "docs", "db.sqlite3", "node_modules"}
    assert not unwanted & set(listing), listing
    assert not [name for name in listing if name.endswith(".egg-info")], listing


# --- Restarts and outages ----------------------------------------------------------------


def test_after_a_restart_of_the_app_the_data_and_the_session_are_still_there(stack):
    assert stack.conversations and stack.session, "runs after the webhook and login tests"
    restarted = stack.compose("restart", "app")
    assert restarted.returncode == 0, restarted.stderr
    stack.wait_healthy("app")
    assert stack.stored_status(stack.conversations[0]) == "OPEN"
    status, _, body = stack.request(
        "GET", "/api/conversations/", headers={"Cookie": cookie_header(stack.session)}
    )
    assert status == 200, body
    listed = {conversation["id"] for conversation in json.loads(body)["results"]}
    assert stack.conversations[0] in listed


def test_without_redis_readyz_names_the_channel_layer_and_webhooks_are_still_stored(stack):
    stopped = stack.compose("stop", "redis")
    assert stopped.returncode == 0, stopped.stderr
    try:
        answer = stack.wait_readyz(503, within=30)
        assert answer["checks"] == {"database": "ok", "channel_layer": "unreachable"}
        assert "channel_layer" in answer["detail"]
        conversation_id, status, body = stack.post_webhook()
        assert status == 201, body
        assert stack.stored_status(conversation_id) == "OPEN"
    finally:
        started = stack.compose("start", "redis")
    assert started.returncode == 0, started.stderr
    stack.wait_healthy("redis")
    assert stack.wait_readyz(200, within=60)["checks"]["channel_layer"] == "ok"
    conversation_id, status, body = stack.post_webhook()
    assert status == 201, body
    assert stack.stored_status(conversation_id) == "OPEN"


def test_compose_stop_ends_the_app_with_exit_0_within_the_shutdown_timeout(stack):
    shutdown_timeout = float(stack.settings["SHUTDOWN_TIMEOUT"])
    began = time.monotonic()
    stopped = stack.compose("stop", "app")
    took = time.monotonic() - began
    assert stopped.returncode == 0, stopped.stderr
    container = stack.container("app")
    state = run(
        [stack.engine.name, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", container]
    ).stdout.split()
    assert state == ["exited", "0"], stack.logs("app")
    assert took < shutdown_timeout, f"compose stop took {took:.1f} s"
    assert "serve: SIGTERM" in stack.logs("app")
