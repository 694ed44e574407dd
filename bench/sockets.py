"""2. Live push and 4. memory: WebSocket clients logged in as an agent, through Redis.

Live push: K sockets on `/ws/inbox/`; a NEW_CONVERSATION is posted to the webhook and the
time from the webhook's answer to the arrival of its row (`id="conversation-<uuid>"`) is
taken at every socket, for K = 1, 50, 200. Memory: the server's resident memory idle, then
with 1,000 sockets connected.

A build without the WebSocket endpoint gets "not available in this build", never a crash.
"""

import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bench import databases
from bench.servers import AGENT, Server, fresh_database, server_env
from bench.stats import summarize

ROW_ID = re.compile(r'id="conversation-([0-9a-f-]{36})"')
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
ARRIVAL_TIMEOUT = 5.0
MAX_INCOMPLETE = 3  # events some socket never got, before a trial gives up


class NotAvailable(Exception):
    """The endpoint is not in this build (or refuses us): reported, not raised further."""


async def login(base: str, password: str) -> str:
    """Log in through the login form, like a browser; the Cookie header of the session."""
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for an IP address host
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        async with session.get(f"{base}/accounts/login/") as response:
            page = await response.text()
        token = CSRF.search(page)
        if not token:
            raise NotAvailable("no login form at /accounts/login/")
        form = {"username": AGENT, "password": password, "csrfmiddlewaretoken": token[1]}
        async with session.post(
            f"{base}/accounts/login/",
            data=form,
            headers={"Origin": base, "Referer": f"{base}/accounts/login/"},
            allow_redirects=False,
        ) as response:
            if response.status != 302:
                raise NotAvailable(f"login failed: HTTP {response.status}")
        cookies = jar.filter_cookies(f"{base}/")
        return "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())


@dataclass
class Sockets:
    """K connected sockets, each with a reader that time-stamps the rows it receives."""

    sockets: list = field(default_factory=list)
    readers: list = field(default_factory=list)
    arrivals: dict = field(default_factory=dict)  # conversation id -> {socket: time}
    waiting: dict = field(default_factory=dict)  # conversation id -> (count, asyncio.Event)

    async def read(self, index: int, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            now = time.perf_counter()
            for conversation_id in set(ROW_ID.findall(message.data)):
                seen = self.arrivals.setdefault(conversation_id, {})
                seen.setdefault(index, now)
                wanted = self.waiting.get(conversation_id)
                if wanted and len(seen) >= wanted[0]:
                    wanted[1].set()


async def connect(
    session: aiohttp.ClientSession, ws_url: str, headers: dict, count: int, into: Sockets
) -> None:
    limit = asyncio.Semaphore(50)  # not 1,000 handshakes in the same instant

    async def one(index: int) -> None:
        async with limit:
            try:
                ws = await session.ws_connect(ws_url, headers=headers, heartbeat=None)
            except aiohttp.WSServerHandshakeError as exc:
                raise NotAvailable(f"/ws/inbox/ refused the handshake: HTTP {exc.status}") from exc
            into.sockets.append(ws)
            into.readers.append(asyncio.create_task(into.read(index, ws)))

    start = len(into.sockets)
    await asyncio.gather(*(one(start + n) for n in range(count)))


async def close(into: Sockets) -> None:
    await asyncio.gather(*(ws.close() for ws in into.sockets), return_exceptions=True)
    for reader in into.readers:
        reader.cancel()
    await asyncio.gather(*into.readers, return_exceptions=True)
    into.sockets.clear()
    into.readers.clear()


def _signed_event(secret: str, conversation_id: str) -> tuple[bytes, dict]:
    body = json.dumps(
        {
            "type": "NEW_CONVERSATION",
            "timestamp": datetime.now(UTC).isoformat(),
            "data": {"id": conversation_id},
        }
    ).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}


async def push_trial(
    session: aiohttp.ClientSession,
    base: str,
    ws_url: str,
    headers: dict,
    *,
    k: int,
    events: int,
    secret: str,
) -> dict:
    sockets = Sockets()
    await connect(session, ws_url, headers, k, sockets)
    await asyncio.sleep(0.5)  # every consumer has joined its groups
    from_answer: list[float] = []
    from_request: list[float] = []
    slowest: list[float] = []
    missed = incomplete = played = 0
    cpu_start = time.process_time()
    started = time.perf_counter()
    try:
        for _ in range(events):
            conversation_id = str(uuid.uuid4())
            done = asyncio.Event()
            sockets.waiting[conversation_id] = (k, done)
            body, event_headers = _signed_event(secret, conversation_id)
            sent = time.perf_counter()
            async with session.post(f"{base}/webhook/", data=body, headers=event_headers) as r:
                await r.read()
                answered = time.perf_counter()
                if r.status != 201:
                    raise RuntimeError(f"the webhook answered {r.status}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), ARRIVAL_TIMEOUT)
            arrived = sockets.arrivals.get(conversation_id, {})
            if not arrived and not from_answer:
                raise NotAvailable(
                    f"no row arrived on /ws/inbox/ within {ARRIVAL_TIMEOUT:g} s of the webhook"
                )
            played += 1
            missed += k - len(arrived)
            from_answer += [(t - answered) * 1000 for t in arrived.values()]
            from_request += [(t - sent) * 1000 for t in arrived.values()]
            if len(arrived) == k:
                slowest.append((max(arrived.values()) - sent) * 1000)
            else:
                incomplete += 1
                if incomplete >= MAX_INCOMPLETE:
                    # Each incomplete event costs the full timeout: stop rather than blow
                    # the bench's time budget; the missed count says what happened.
                    break
            await asyncio.sleep(0.05)
    finally:
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_start
        await close(sockets)
    sent_stats, answer_stats = summarize(from_request), summarize(from_answer)
    return {
        "k": k,
        "events": played,
        "deliveries": len(from_request),
        "missed": missed,
        # From the moment the webhook request is sent: includes the webhook's own work, so
        # it bounds the push latency from above whatever the order of answer and push.
        "p50_ms": sent_stats.get("p50"),
        "p99_ms": sent_stats.get("p99"),
        # From the moment the answer is read; negative when the row arrived first.
        "after_answer_p50_ms": answer_stats.get("p50"),
        "after_answer_p99_ms": answer_stats.get("p99"),
        "all_sockets_p99_ms": summarize(slowest).get("p99"),
        "client_cpu": cpu / wall if wall else 0.0,
    }


async def _measure(
    server: Server, password: str, secret: str, ks: list[int], events: int, memory_sockets: int
) -> dict:
    base = server.url
    ws_url = f"ws://127.0.0.1:{server.port}/ws/inbox/?status=all"
    result: dict = {"live_push": {"trials": []}, "memory": {}}
    # Warm the process (imports, templates, connections) before reading its idle size.
    async with aiohttp.ClientSession() as session:
        for path in ("/healthz", "/accounts/login/"):
            async with session.get(base + path) as response:
                await response.read()
    cookie = await login(base, password)
    headers = {"Cookie": cookie, "Origin": base}
    await asyncio.sleep(1.0)
    result["memory"]["idle_rss_mb"] = server.rss_bytes() / 2**20
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        try:
            for k in ks:
                result["live_push"]["trials"].append(
                    await push_trial(
                        session, base, ws_url, headers, k=k, events=events, secret=secret
                    )
                )
        except NotAvailable as exc:
            result["live_push"]["note"] = f"not available in this build: {exc}"
        sockets = Sockets()
        try:
            await connect(session, ws_url, headers, memory_sockets, sockets)
            await asyncio.sleep(2.0)
            rss = server.rss_bytes() / 2**20
            result["memory"].update(
                sockets=len(sockets.sockets),
                with_sockets_rss_mb=rss,
                per_socket_kb=(rss - result["memory"]["idle_rss_mb"]) * 1024 / memory_sockets,
            )
        except NotAvailable as exc:
            result["memory"]["note"] = f"sockets not available in this build: {exc}"
        finally:
            await close(sockets)
    return result


def run(
    *,
    database_url: str,
    redis_url: str,
    port: int,
    log_dir: Path,
    ks: list[int],
    events: int,
    memory_sockets: int,
) -> dict:
    """One server on a fresh database, with the channel layer on `redis_url` (if any)."""
    secret = secrets.token_hex(16)
    env = server_env(database_url=database_url, redis_url=redis_url, webhook_secret=secret)
    env["CHANNEL_LAYER_PREFIX"] = f"bench-{secrets.token_hex(4)}"
    password = fresh_database(database_url, env)
    with Server(port, env, log_dir) as server:
        result = asyncio.run(_measure(server, password, secret, ks, events, memory_sockets))
    result["channel_layer"] = "channels-redis" if redis_url else "in-memory"
    result["database"] = "postgresql" if databases.is_postgres(database_url) else "sqlite"
    return result
