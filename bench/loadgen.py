"""The load generator: asyncio and aiohttp, N clients on kept-alive connections.

Each client sends its next request as soon as the previous answer is read (a closed loop),
for a fixed time. The generator reports its own CPU use so a reader can tell whether the
client or the server was the bottleneck.
"""

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

# (method, url, body, headers) for the next request; `None` body for a GET.
Request = tuple[str, str, bytes | None, dict[str, str]]


@dataclass
class LoadResult:
    seconds: float
    client_cpu_seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds, answered requests
    statuses: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)  # exceptions by type: no answer

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    def count(self, status: int) -> int:
        return self.statuses.get(status, 0)

    @property
    def errors(self) -> int:
        """Answers that are not 2xx, plus requests with no answer at all."""
        return sum(n for s, n in self.statuses.items() if not 200 <= s < 300) + sum(
            self.failures.values()
        )

    @property
    def client_cpu_share(self) -> float:
        """The client's CPU time over the wall time: 1.0 is one core busy all along."""
        return self.client_cpu_seconds / self.seconds if self.seconds else 0.0


async def run_load(
    next_request: Callable[[int], Request],
    *,
    clients: int,
    seconds: float,
    timeout: float = 30.0,
) -> LoadResult:
    """`clients` concurrent loops calling `next_request(sequence)` for `seconds` seconds."""
    counter = itertools.count()
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    cpu_start = time.process_time()
    started = time.perf_counter()
    stop_at = started + seconds
    result = LoadResult(seconds=0.0, client_cpu_seconds=0.0)

    async def client(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < stop_at:
            method, url, body, headers = next_request(next(counter))
            sent = time.perf_counter()
            try:
                async with session.request(method, url, data=body, headers=headers) as response:
                    await response.read()
                    result.statuses[response.status] += 1
                    result.latencies.append(time.perf_counter() - sent)
            except (TimeoutError, aiohttp.ClientError) as exc:
                result.failures[type(exc).__name__] += 1

    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    result.seconds = time.perf_counter() - started
    result.client_cpu_seconds = time.process_time() - cpu_start
    return result
