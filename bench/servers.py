"""The servers under test: daphne processes the bench starts, watches and stops itself."""

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench import databases

ROOT = Path(__file__).resolve().parent.parent
# Production serves static files from the collected, hashed copies (WhiteNoise's manifest).
STATIC_ROOT = ROOT / "bench" / "results" / "tmp" / "static"


def server_env(*, database_url: str, redis_url: str = "", webhook_secret: str = "") -> dict:
    """A production environment, as behind a TLS proxy: DEBUG off, real secrets, the bench's
    services. Plain HTTP on loopback stands for the proxy's side, so no HTTPS redirect and
    cookies that travel over it."""
    env = dict(os.environ)
    env.update(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(40),
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        # Production refuses to start unsigned; a section that posts nothing still needs one.
        WEBHOOK_SECRET=webhook_secret or secrets.token_urlsafe(32),
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        STATIC_ROOT=str(STATIC_ROOT),
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="project.settings",
    )
    return env


# The agent the replies and sockets benchmarks log in as.
AGENT = "bench-agent"


def fresh_database(database_url: str, env: dict) -> str:
    """Recreate the database, migrate it and create the bench's agent (a superuser, so
    that the admin answers too); the agent's password."""
    password = secrets.token_urlsafe(16)
    databases.recreate(database_url)
    manage("migrate", "--noinput", env=env)
    manage(
        "createsuperuser",
        "--noinput",
        env={
            **env,
            "DJANGO_SUPERUSER_USERNAME": AGENT,
            "DJANGO_SUPERUSER_PASSWORD": password,
            "DJANGO_SUPERUSER_EMAIL": "bench@example.com",
        },
    )
    return password


def collect_static() -> None:
    """Collect the static files once, as the image does at build time."""
    manage(
        "collectstatic",
        "--noinput",
        "--verbosity",
        "0",
        env=server_env(database_url=f"sqlite:///{STATIC_ROOT.parent / 'static.sqlite3'}"),
    )


def manage(*args: str, env: dict, timeout: float = 900) -> str:
    """Run `manage.py` with the bench's environment; its output, or an error with its stderr."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


class Server:
    """One daphne process on 127.0.0.1:port. Use as a context manager."""

    def __init__(self, port: int, env: dict, log_dir: Path) -> None:
        self.port = port
        self.env = env
        self.log_path = log_dir / f"daphne-{port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "Server":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            # The production server: daphne with the graceful SIGTERM (as bin/start runs it).
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "serve",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"daphne on port {self.port} exited: {self.log_path.read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"daphne on port {self.port} did not answer /healthz in {timeout} s")

    def rss_bytes(self) -> int:
        """The server process's resident memory, from /proc (Linux)."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("VmRSS not found")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
