"""/healthz and /readyz: does this process answer, and can it reach what it needs to serve?
Cheap enough to poll often.

Each probe is one round trip (a `SELECT 1`; a PING to Redis, or a message to ourselves on the
in-process layer) under a short timeout, and the probes run concurrently, so an answer comes
within PROBE_TIMEOUT even when a service hangs instead of refusing.

An outage is logged as one: its first failure with the traceback, then a count per
LOG_INTERVAL, and one line when the dependency answers again. Probed every few seconds by
every orchestrator and load balancer, a traceback per probe buried everything else.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

PROBE_TIMEOUT = 2.0  # seconds; below the container health check's own timeout
LOG_INTERVAL = 60.0  # seconds between two lines that count a dependency's failed probes


class _Outage:
    """How one dependency's failed probes are logged (called on the event loop only)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.down = False
        self.failed = 0  # probes failed since the last line
        self.total = 0  # probes failed since the outage began
        self.since = 0.0
        self.reason = ""

    def failure(self, error: BaseException) -> None:
        self.reason = f"{type(error).__name__}: {error}"
        if not self.down:
            self.down, self.total, self.failed = True, 1, 0
            self.since = time.monotonic()
            logger.warning(
                "readyz: %s is unreachable (%s); while it is, a count is logged every %d s",
                self.name,
                self.reason,
                LOG_INTERVAL,
                exc_info=error,
            )
            return
        self.failed += 1
        self.total += 1
        if time.monotonic() - self.since >= LOG_INTERVAL:
            self._report()

    def success(self) -> None:
        if not self.down:
            return
        self._report()
        logger.warning("readyz: %s is reachable again (%d probes failed)", self.name, self.total)
        self.down = False

    def _report(self) -> None:
        if self.failed:
            logger.warning(
                "readyz: %s: %d probes failed in the last %.0f s: %s",
                self.name,
                self.failed,
                time.monotonic() - self.since,
                self.reason,
            )
        self.failed = 0
        self.since = time.monotonic()


_outages = {name: _Outage(name) for name in ("database", "channel_layer")}


def _database_ping() -> None:
    """Open a connection of its own, run `SELECT 1`, close it.

    Not the request's connection: under ASGI it belongs to a per-request thread, where a
    persistent one would outlive the probe, and a fresh connection is also the honest
    answer to "can this process reach the database now?". Never one from the pool either
    (`get_new_connection()` is `pool.getconn()` there): closing it would leak the pool's
    slot, and a probe must not take a connection a webhook is waiting for.
    """
    wrapper = connections[DEFAULT_DB_ALIAS]
    # The pool's options are not connection parameters: get_connection_params drops them.
    params = wrapper.get_connection_params()
    if wrapper.vendor == "postgresql":
        params["connect_timeout"] = max(1, round(PROBE_TIMEOUT))
    connection = wrapper.Database.connect(**params)
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT 1")
        cursor.fetchone()
    finally:
        connection.close()


async def _channel_layer_round_trip() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer is configured")
    if isinstance(layer, RedisChannelLayer):
        # A PING on the layer's own pool. Never `receive`: channels-redis serves every
        # receive in a process through one lock, which a socket waiting for pushes holds
        # for its whole blocking pop, so the probe timed out whenever an agent was idle.
        await asyncio.gather(*(layer.connection(i).ping() for i in range(layer.ring_size)))
        return
    channel = await layer.new_channel("readyz")
    await layer.send(channel, {"type": "readyz.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "readyz.ping":
        raise RuntimeError(f"the channel layer returned {message!r}")


async def _probe(name: str, check: Callable[[], Awaitable[None]]) -> bool:
    try:
        await asyncio.wait_for(check(), PROBE_TIMEOUT)
    except Exception as error:
        _outages[name].failure(error)
        return False
    _outages[name].success()
    return True


async def readiness() -> dict[str, bool]:
    """Whether each dependency answered: {"database": bool, "channel_layer": bool}."""
    database, channel_layer = await asyncio.gather(
        # Not thread-sensitive: a hanging database must not hold up the requests that
        # share the one thread-sensitive worker; the probe touches no thread-local state.
        _probe("database", sync_to_async(_database_ping, thread_sensitive=False)),
        _probe("channel_layer", _channel_layer_round_trip),
    )
    return {"database": database, "channel_layer": channel_layer}


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process answers. No database: this is the ceiling the benchmarks compare against."""
    return JsonResponse({"status": "ok"})


@require_GET
async def readyz(request: HttpRequest) -> JsonResponse:
    """The database and the channel layer answer: 200, or 503 naming what is down.

    Unauthenticated, for load balancers and the container's health check.
    """
    checks = await readiness()
    down = [name for name, ok in checks.items() if not ok]
    body: dict[str, object] = {
        "status": "unavailable" if down else "ok",
        "checks": {name: "ok" if ok else "unreachable" for name, ok in checks.items()},
    }
    if down:
        body["detail"] = f"unreachable: {', '.join(down)}"
    response = JsonResponse(body, status=503 if down else 200)
    response["Cache-Control"] = "no-store"
    # The probe logs an outage itself, once (above): Django's own ERROR for every 5xx
    # answer would be one more line per probe.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response
