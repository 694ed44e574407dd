"""The Redis channel layer, with connections that suit how channels-redis uses them.

channels-redis receives with a blocking pop (`BZPOPMIN ... timeout`) and loops; redis-py
gives up on any read after `socket_timeout`. With both at 5 s (each library's default) the
read timed out first, the receive raised, and every idle socket was closed with 1011 within
about 5 s. Here the pop is shorter than the read timeout, always (checked at start-up).

README: "Probes and the live layer" (under Operations) says what this guarantees.
"""

import asyncio
import time
import weakref
from collections import defaultdict
from collections.abc import Sequence

from channels_redis.core import RedisChannelLayer
from django.core.exceptions import ImproperlyConfigured
from redis import asyncio as aioredis

# Seconds a receive blocks in Redis before it loops; an idle process pays one small round
# trip per this many seconds.
BLOCKING_POP_TIMEOUT = 2
# redis-py's options for every connection to Redis.
CONNECTION_OPTIONS: dict[str, object] = {
    # Longer than the blocking pop, with room for a loaded event loop, so only a Redis
    # that stopped answering times a read out.
    "socket_timeout": BLOCKING_POP_TIMEOUT + 3,
    # A Redis that is down or unroutable fails a connection attempt quickly.
    "socket_connect_timeout": 2,
    # A peer that vanished (a host or NAT gone) is found by the kernel, not never.
    "socket_keepalive": True,
    # A connection idle for this long is PINGed before use: one a proxy or Redis's own
    # `timeout` closed is replaced instead of failing the command on it.
    "health_check_interval": 30,
}


class InboxChannelLayer(RedisChannelLayer):
    """channels-redis's layer with a shorter blocking pop, the connection options above and
    a bounded pool that queues.

    `max_connections` (CONFIG) bounds each process's connections per Redis host. When all
    are busy a caller waits for one (up to `socket_timeout`, no longer than for an answer)
    instead of failing at once with `MaxConnectionsError` as redis-py's default pool of 100
    does: closing 1,000 sockets at once lost most of their discards that way.

    It also answers what the live layer asks that channels-redis has no public call for
    (`groups_with_members`, `close_loop_connections`), from what this class owns, so nothing
    reads channels-redis's private attributes.
    """

    brpop_timeout = BLOCKING_POP_TIMEOUT

    def __init__(self, hosts=None, *, max_connections: int = 200, **config: object) -> None:
        super().__init__(hosts=hosts, **config)
        # The connections handed out, per event loop (`close_loop_connections`).
        self.loop_connections: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict] = (
            weakref.WeakKeyDictionary()
        )
        self.hosts = [
            {**CONNECTION_OPTIONS, "max_connections": max_connections, **host}
            for host in self.hosts
        ]
        for host in self.hosts:
            timeout = host.get("socket_timeout")
            if timeout is not None and timeout <= self.brpop_timeout:
                raise ImproperlyConfigured(
                    f"the channel layer's socket_timeout ({timeout} s) must be longer than "
                    f"its blocking pop ({self.brpop_timeout} s), or idle sockets are closed"
                )

    def create_pool(self, index: int) -> aioredis.ConnectionPool:
        host = dict(self.hosts[index])
        if "address" not in host:
            # Sentinels, or a (host, port) pair: channels-redis's own pools, our options.
            return super().create_pool(index)
        host.setdefault("timeout", host.get("socket_timeout"))
        return aioredis.BlockingConnectionPool.from_url(host.pop("address"), **host)

    def connection(self, index: int) -> aioredis.Redis:
        connection = super().connection(index)
        self.loop_connections.setdefault(asyncio.get_running_loop(), {})[index] = connection
        return connection

    def group_key(self, group: str) -> bytes:
        """The Redis key of a group's members: the sorted set of its channels, scored by when
        each joined, as channels-redis 4 stores it (tests/live/test_consumers.py checks that the
        answers below follow joins and leaves, so a change of that format fails a test)."""
        return f"{self.prefix}:group:{group}".encode()

    async def groups_with_members(self, groups: Sequence[str]) -> set[str]:
        """The groups with at least one member that `group_send` would still send to.

        group_send skips members older than group_expiry, and so does this. One pipelined
        round trip per Redis host, however many groups are asked about.
        """
        since = int(time.time()) - self.group_expiry
        by_host: dict[int, list[str]] = defaultdict(list)
        for group in groups:
            by_host[self.consistent_hash(group)].append(group)
        found = set()
        for index, members in by_host.items():
            pipe = self.connection(index).pipeline(transaction=False)
            for group in members:
                pipe.zcount(self.group_key(group), since, "+inf")
            counts = await pipe.execute()
            found.update(group for group, count in zip(members, counts, strict=True) if count)
        return found

    async def close_loop_connections(self) -> None:
        """Close the connections this layer opened on the running event loop: a thread that
        outlives the layer (the live sender's, when settings change in tests) would keep
        them open otherwise. A later call on this loop opens new ones."""
        for connection in self.loop_connections.pop(asyncio.get_running_loop(), {}).values():
            await connection.aclose(close_connection_pool=True)
