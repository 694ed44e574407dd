"""1. Ingestion: N clients post NEW_MESSAGE events with unique ids for a fixed time.

The same load against `/healthz` on the same server(s) gives the ceiling. Afterwards the
stored rows are counted in the database itself: accepted (201) must equal stored, exactly.
"""

import asyncio
import hashlib
import hmac
import json
import secrets
import subprocess
import sys
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bench import databases
from bench.cpu import CpuMeter
from bench.loadgen import LoadResult, Request, run_load
from bench.servers import Server, manage, server_env
from bench.stats import rate, ratio, summarize

CONVERSATIONS = 200  # spread the writes, so they do not all queue on one row's lock


def _signed(body: bytes, secret: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}


async def _open_conversations(urls: list[str], secret: str) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(CONVERSATIONS)]
    async with aiohttp.ClientSession() as session:
        for index, conversation_id in enumerate(ids):
            body = json.dumps(
                {
                    "type": "NEW_CONVERSATION",
                    "timestamp": datetime.now(UTC).isoformat(),
                    "data": {"id": conversation_id},
                }
            ).encode()
            url = urls[index % len(urls)] + "/webhook/"
            async with session.post(url, data=body, headers=_signed(body, secret)) as response:
                if response.status != 201:
                    raise RuntimeError(f"opening a conversation: {response.status}")
    return ids


def _summary(result: LoadResult) -> dict:
    latency = summarize([s * 1000 for s in result.latencies])
    return {
        "requests_per_s": rate(result.answered, result.seconds),
        "p50_ms": latency.get("p50"),
        "p99_ms": latency.get("p99"),
        "answered": result.answered,
        "errors": result.errors,
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "failures": dict(result.failures),
        "seconds": result.seconds,
        "client_cpu": result.client_cpu_share,
    }


def _profiler(pid: int, seconds: float, out: Path) -> subprocess.Popen:
    """py-spy sampling the server for `seconds`: a flame graph of where its time goes."""
    py_spy = Path(sys.executable).with_name("py-spy")
    command = [str(py_spy), "record", "--pid", str(pid), "--duration", str(int(seconds))]
    command += ["--format", "flamegraph", "--output", str(out), "--nonblocking"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _measure(
    urls: list[str],
    *,
    clients: int,
    seconds: float,
    secret: str,
    pids: list[int] | None = None,
    profile_to: Path | None = None,
) -> dict:
    conversations = await _open_conversations(urls, secret)

    def healthz(sequence: int) -> Request:
        return ("GET", urls[sequence % len(urls)] + "/healthz", None, {})

    def new_message(sequence: int) -> Request:
        body = json.dumps(
            {
                "type": "NEW_MESSAGE",
                "timestamp": datetime.now(UTC).isoformat(),
                "data": {
                    "id": str(uuid.uuid4()),
                    "direction": "RECEIVED" if sequence % 2 else "SENT",
                    "content": f"Olá, mensagem de carga número {sequence}",
                    "conversation_id": conversations[sequence % len(conversations)],
                },
            }
        ).encode()
        return ("POST", urls[sequence % len(urls)] + "/webhook/", body, _signed(body, secret))

    meter = CpuMeter(pids or [])
    ceiling = _summary(await run_load(healthz, clients=clients, seconds=seconds)) | meter.read()
    meter = CpuMeter(pids or [])
    profiler = _profiler(pids[0], seconds, profile_to) if profile_to and pids else None
    loaded = await run_load(new_message, clients=clients, seconds=seconds)
    if profiler:
        profiler.wait(timeout=60)
    webhook = _summary(loaded) | meter.read()
    return {"healthz": ceiling, "webhook": webhook, "accepted": loaded.count(201)}


def run_config(
    *,
    label: str,
    database_url: str,
    processes: int,
    first_port: int,
    clients: int,
    seconds: float,
    log_dir: Path,
    profile_to: Path | None = None,
) -> dict:
    """One configuration (a database, a number of server processes), on a fresh database."""
    secret = secrets.token_hex(16)
    env = server_env(database_url=database_url, webhook_secret=secret)
    databases.recreate(database_url)
    manage("migrate", "--noinput", env=env)
    with ExitStack() as stack:
        servers = [
            stack.enter_context(Server(first_port + n, env, log_dir)) for n in range(processes)
        ]
        measured = asyncio.run(
            _measure(
                [s.url for s in servers],
                clients=clients,
                seconds=seconds,
                secret=secret,
                pids=[s.process.pid for s in servers],
                profile_to=profile_to,
            )
        )
    stored = databases.scalar(database_url, "SELECT count(*) FROM inbox_message")
    webhook = measured["webhook"]
    webhook["accepted"] = measured["accepted"]
    webhook["stored"] = stored
    webhook["lost"] = measured["accepted"] - stored
    return {
        "label": label,
        "database": "postgresql" if databases.is_postgres(database_url) else "sqlite",
        "processes": processes,
        "clients": clients,
        "healthz": measured["healthz"],
        "webhook": webhook,
        "ratio": ratio(webhook["requests_per_s"], measured["healthz"]["requests_per_s"]),
    }
