"""Replies (README "Performance", 5): from an agent's POST to the provider, and the outbox.

A stub provider in this process (a real HTTP server on 127.0.0.1) answers every
SEND_MESSAGE after `PROVIDER_DELAY` (50 ms, a provider's own work) and notes when each
arrived, by content. Against one production server and its workers on a fresh database:

- latency: one reply at a time, on an idle queue, from just before the agent's POST (the
  composer's plain form post) to the moment the provider has read the request;
- throughput: a backlog of replies written with the workers stopped, then the workers
  started; the drain rate is from the first reply the provider receives to the last (so a
  worker's start-up is not counted), and duplicates (an id received twice) are counted.
"""

import hashlib
import hmac
import http.cookiejar
import json
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench import databases
from bench.cpu import CpuMeter
from bench.servers import AGENT, ROOT, Server, fresh_database, server_env
from bench.stats import rate, summarize

PROVIDER_DELAY = 0.05
# Attempts each worker runs at once: the product's default (WORKER_CONCURRENCY).
CONCURRENCY = 8
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
ARRIVAL_TIMEOUT = 30.0


class Provider:
    """The stub provider: answers 200 after PROVIDER_DELAY, records (content, id, time)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrived: dict[str, float] = {}  # content -> first arrival (monotonic)
        self.ids: list[str] = []  # every id received, repeats included
        self.changed = threading.Condition(self.lock)
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.monotonic()
                data = json.loads(body)["data"]
                with provider.changed:
                    provider.arrived.setdefault(data["content"], now)
                    provider.ids.append(data["id"])
                    provider.changed.notify_all()
                time.sleep(PROVIDER_DELAY)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, contents: set[str], timeout: float = ARRIVAL_TIMEOUT) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: contents <= self.arrived.keys(), timeout)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class Agent:
    """A logged-in agent's browser, as far as a plain form post needs one."""

    def __init__(self, base: str, password: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect()
        )
        token = self._token("/accounts/login/")
        self.post("/accounts/login/", {"username": AGENT, "password": password}, token)

    def _token(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=30) as response:
            return CSRF.search(response.read().decode())[1]

    def post(self, path: str, form: dict, token: str) -> int:
        body = urllib.parse.urlencode({**form, "csrfmiddlewaretoken": token}).encode()
        request = urllib.request.Request(  # noqa: S310
            self.base + path, body, {"Origin": self.base, "Referer": self.base + path}
        )
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as error:
            if error.code in {301, 302}:
                return error.code
            raise


def _webhook(base: str, secret: str, event: dict) -> None:
    body = json.dumps(event).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(  # noqa: S310
        f"{base}/webhook/",
        body,
        {"Content-Type": "application/json", "X-Hub-Signature-256": signature},
    )
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310
        pass


def _workers(count: int, env: dict, log_dir: Path) -> list[subprocess.Popen]:
    # The worker's own defaults (its poll interval), and its concurrency said out loud.
    return [
        subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "worker", "--concurrency", str(CONCURRENCY)],
            cwd=ROOT,
            env=env,
            stdout=(log_dir / f"worker-{n}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        for n in range(count)
    ]


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_config(
    *,
    label: str,
    database_url: str,
    workers: int,
    port: int,
    redis_url: str = "",
    log_dir: Path,
    samples: int,
    backlog: int,
) -> dict:
    """One server and `workers` workers on a fresh database: latency, then the backlog."""
    secret = secrets.token_hex(16)
    provider = Provider()
    env = server_env(database_url=database_url, redis_url=redis_url, webhook_secret=secret)
    env.update(PROVIDER_URL=provider.url, PROVIDER_SECRET=secrets.token_hex(16))
    if redis_url:
        env["CHANNEL_LAYER_PREFIX"] = f"bench-{secrets.token_hex(4)}"
    else:
        # As make run: without Redis the workers tell the server of their changes.
        env["WORKER_NOTIFY_URL"] = f"http://127.0.0.1:{port}"
    password = fresh_database(database_url, env)
    result: dict = {
        "label": label,
        "workers": workers,
        "concurrency": CONCURRENCY,
        "channel_layer": "channels-redis" if redis_url else "in-memory, worker notices",
        "provider_delay_ms": PROVIDER_DELAY * 1e3,
    }
    try:
        with Server(port, env, log_dir) as server:
            conversation = str(uuid.uuid4())
            _webhook(
                server.url,
                secret,
                {
                    "type": "NEW_CONVERSATION",
                    "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "data": {"id": conversation},
                },
            )
            agent = Agent(server.url, password)
            path = f"/conversations/{conversation}/messages/"
            token = agent._token(f"/conversations/{conversation}/")
            running = _workers(workers, env, log_dir)
            try:
                # Warm-up: the worker's first poll, the server's first reply.
                warm = f"warm-{uuid.uuid4()}"
                assert agent.post(path, {"content": warm}, token) == 302
                provider.wait_for({warm}, timeout=60)
                latencies = []
                for _ in range(samples):
                    content = f"latency-{uuid.uuid4()}"
                    started = time.monotonic()
                    assert agent.post(path, {"content": content}, token) == 302
                    if provider.wait_for({content}):
                        latencies.append((provider.arrived[content] - started) * 1e3)
                result["latency_ms"] = summarize(latencies)
                result["latency_missed"] = samples - len(latencies)
            finally:
                _stop(running)

            # The backlog, written with no worker running, by 4 agents' posts at once.
            contents = [f"backlog-{n}-{uuid.uuid4()}" for n in range(backlog)]
            with ThreadPoolExecutor(4) as pool:
                statuses = list(
                    pool.map(lambda c: agent.post(path, {"content": c}, token), contents)
                )
            assert all(status == 302 for status in statuses), set(statuses)
            before = len(provider.ids)
            running = _workers(workers, env, log_dir)
            # The workers' CPU over the drain (their start-up included), and the machine's:
            # on a shared machine a drain can be short of CPU rather than of concurrency.
            meter = CpuMeter([p.pid for p in running])
            try:
                drained = provider.wait_for(set(contents), timeout=max(60.0, backlog / 5))
                cpu = meter.read()
                cpu_seconds = cpu["server_cpu"] * (time.perf_counter() - meter.started)
            finally:
                _stop(running)
            times = sorted(provider.arrived[c] for c in contents if c in provider.arrived)
            received = provider.ids[before:]
            result["backlog"] = {
                "replies": backlog,
                "received": len(times),
                "drained": drained,
                "replies_per_s": rate(len(times) - 1, times[-1] - times[0]) if times else 0.0,
                "duplicates": len(received) - len(set(received)),
                "workers_cpu_ms_per_reply": cpu_seconds * 1e3 / max(1, len(times)),
                "machine_busy": cpu["machine_busy"],
            }
    finally:
        provider.stop()
    result["database"] = "postgresql" if databases.is_postgres(database_url) else "sqlite"
    return result
