"""1. Ingestion: N clients post NEW_MESSAGE events with unique ids for a fixed time.

The same load against `/healthz` on the same server(s) gives the ceiling. The webhook is
measured twice: with no socket open, then watched by `WATCHERS` agents' sockets (the normal
case: every event is pushed to them), 15 on the list and 5 on threads that receive the
messages. Afterwards the stored rows are counted in the database itself: accepted (201) must
equal stored, exactly; and the watching sockets must have been told of no missed frame
(a resync marker, inbox/consumers.py).
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

from bench import databases, profile_summary
from bench.cpu import CpuMeter
from bench.loadgen import LoadResult, Request, run_load
from bench.servers import Server, fresh_database, server_env
from bench.sockets import login
from bench.stats import rate, ratio, summarize

CONVERSATIONS = 200  # spread the writes, so they do not all queue on one row's lock
LIST_WATCHERS = 15  # sockets on the inbox list (every row change reaches them)
THREAD_WATCHERS = 5  # sockets on one conversation's thread each (its bubbles too)
RESYNC = "<!--live:resync-->"


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


class _Watchers:
    """Agents' sockets, logged in like a browser, counting the frames and resyncs they get."""

    def __init__(self) -> None:
        self.sockets: list = []
        self.readers: list[asyncio.Task] = []
        self.frames = 0
        self.resyncs = 0

    async def open(self, base: str, password: str, conversations: list[str]) -> None:
        cookie = await login(base, password)
        headers = {"Cookie": cookie, "Origin": base}
        ws = base.replace("http://", "ws://") + "/ws/inbox/?status=all"
        urls = [ws] * LIST_WATCHERS
        urls += [f"{ws}&conversation={conversations[n]}" for n in range(THREAD_WATCHERS)]
        self.session = aiohttp.ClientSession()
        for url in urls:
            socket = await self.session.ws_connect(url, headers=headers, heartbeat=None)
            self.sockets.append(socket)
            self.readers.append(asyncio.create_task(self._read(socket)))
        await asyncio.sleep(0.5)  # every consumer has joined its groups

    async def _read(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        async for message in socket:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.frames += 1
                self.resyncs += RESYNC in message.data

    async def close(self) -> None:
        await asyncio.sleep(1.0)  # the last ticks' frames
        await asyncio.gather(*(s.close() for s in self.sockets), return_exceptions=True)
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        await self.session.close()


class _Profiler:
    """py-spy sampling the server for `seconds`: a flame graph of where its time goes, and
    the same samples as collapsed stacks (`.txt`) with a summary of the functions that take
    the most of them, the figures a profile is argued from (bench/profile_summary.py)."""

    def __init__(self, pid: int, seconds: float, out: Path) -> None:
        py_spy = Path(sys.executable).with_name("py-spy")
        self.out = out
        self.processes = []
        for form, path in (("flamegraph", out), ("raw", out.with_suffix(".txt"))):
            command = [str(py_spy), "record", "--pid", str(pid), "--duration", str(int(seconds))]
            command += ["--format", form, "--output", str(path), "--nonblocking"]
            self.processes.append(
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )

    def wait(self) -> None:
        for process in self.processes:
            process.wait(timeout=60)
        raw = self.out.with_suffix(".txt")
        if raw.exists():
            summary = profile_summary.summarize(raw.read_text())
            self.out.with_suffix(".summary.txt").write_text(summary)


async def _measure(
    urls: list[str],
    *,
    clients: int,
    seconds: float,
    secret: str,
    password: str,
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

    async def webhook(profile: Path | None) -> tuple[dict, int]:
        meter = CpuMeter(pids or [])
        profiler = _Profiler(pids[0], seconds, profile) if profile and pids else None
        loaded = await run_load(new_message, clients=clients, seconds=seconds)
        if profiler:
            profiler.wait()
        return _summary(loaded) | meter.read(), loaded.count(201)

    alone, accepted = await webhook(profile_to)
    watchers = _Watchers()
    # Each process's sockets see its own pushes (and, through Redis, the others').
    await watchers.open(urls[0], password, conversations)
    try:
        watched_profile = profile_to.with_stem(profile_to.stem + "-watched") if profile_to else None
        watched, accepted_watched = await webhook(watched_profile)
    finally:
        await watchers.close()
    watched |= {
        "sockets": len(watchers.sockets),
        "frames": watchers.frames,
        "resyncs": watchers.resyncs,
    }
    return {
        "healthz": ceiling,
        "webhook": alone,
        "watched": watched,
        "accepted": accepted + accepted_watched,
    }


def run_config(
    *,
    label: str,
    database_url: str,
    redis_url: str = "",
    processes: int,
    first_port: int,
    clients: int,
    seconds: float,
    log_dir: Path,
    profile_to: Path | None = None,
) -> dict:
    """One configuration (a database, a number of server processes), on a fresh database."""
    secret = secrets.token_hex(16)
    env = server_env(database_url=database_url, redis_url=redis_url, webhook_secret=secret)
    env["CHANNEL_LAYER_PREFIX"] = f"bench-{secrets.token_hex(4)}"
    password = fresh_database(database_url, env)
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
                password=password,
                pids=[s.process.pid for s in servers],
                profile_to=profile_to,
            )
        )
    stored = databases.scalar(database_url, "SELECT count(*) FROM inbox_message")
    webhook, watched = measured["webhook"], measured["watched"]
    # Counted over both runs: the database holds both.
    webhook["accepted"] = watched["accepted"] = measured["accepted"]
    webhook["stored"] = watched["stored"] = stored
    webhook["lost"] = watched["lost"] = measured["accepted"] - stored
    return {
        "label": label,
        "database": "postgresql" if databases.is_postgres(database_url) else "sqlite",
        "processes": processes,
        "clients": clients,
        "healthz": measured["healthz"],
        "channel_layer": "channels-redis" if redis_url else "in-memory",
        "webhook": webhook,
        "ratio": ratio(webhook["requests_per_s"], measured["healthz"]["requests_per_s"]),
        "watched": watched,
        "watched_ratio": ratio(watched["requests_per_s"], measured["healthz"]["requests_per_s"]),
    }
