"""The way out for live pushes: off the request, bounded, numbered, never waiting on Redis.

`live.py` turns each committed write into a job (what changed) and hands it to the process's
one `Sender`; the request returns at once, whatever state Redis is in (README, "Live pushes
under load and faults"). On channels-redis the sender is a daemon thread:

- It takes what was queued in the last tick (`TICK`, 25 ms), asks Redis once which groups of
  those jobs have a socket, renders for those only (`render`, live.py), and sends ONE channel
  layer message per group for the whole tick: a burst of events costs each socket a few
  messages, not one per event.
- Every Redis call has a short timeout (`CALL_TIMEOUT`). After `BREAKER_FAILURES` failures in
  a row the breaker opens: jobs are dropped without trying for `BREAKER_COOL_DOWN` seconds,
  then one batch probes Redis again. A hung Redis costs each tick one timeout, not each
  webhook.
- The queue holds at most `QUEUE_SIZE` jobs; when it is full the oldest is dropped.
- Failures are logged once with a traceback, then as one line with a count per
  `LOG_INTERVAL`, not one line per event.

Nothing dropped is dropped silently. Each message carries its group, an `origin` (this
process's stream for that group) and `seq`, numbered per origin and group; a job that is
dropped, or a send that fails, still takes its number. The consumer (consumers.py) checks
the numbers and tells its page to refetch (`<!--live:resync-->`) when one is missing,
whether this process skipped it or channels-redis dropped it over the channel's capacity.
So that a gap at the very end of a burst is noticed too, each group that was sent to gets
a `live.sync` message with the last number `TAILS` seconds after it goes quiet.

The messages, as the consumer reads them:

    {"type": "live.batch", "group": g, "origin": o, "seq": n, "prev_at": t, "items": [...]}
    {"type": "live.sync", "group": g, "origin": o, "seq": n, "at": t}

`prev_at` is when batch n-1 of that origin was meant to go (0 for the first), `at` when
batch n was: a socket that joined before then and never heard of the origin missed it.

The in-process layer (development, one process) is never slow nor down: its pushes are sent
inline from the committing thread, in order, with the same numbering and no tails.
"""

import asyncio
import logging
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer
from django.db import connections

logger = logging.getLogger(__name__)

TICK = 0.025  # seconds a batch gathers jobs before it is sent
QUEUE_SIZE = 10_000  # jobs waiting; a job is a few ids, not rendered HTML
MAX_BATCH = 200  # jobs rendered into one tick's messages, at most
CALL_TIMEOUT = 1.0  # seconds for one channel-layer call
BREAKER_FAILURES = 3  # failures in a row that open the breaker
BREAKER_COOL_DOWN = 5.0  # seconds the open breaker skips sends before probing again
LOG_INTERVAL = 60.0  # seconds between two lines that count failures
TAILS = (0.5, 5.0)  # seconds after a group's last batch that it is told the last number
FORGET_AFTER = 600.0  # seconds after which an idle group's numbering is forgotten

BATCH = "live.batch"
SYNC = "live.sync"


class Job(Protocol):
    """What live.py queues: the groups it may be pushed to."""

    groups: tuple[str, ...]


Render = Callable[[Sequence[Job], set[str]], dict[str, list[dict]]]


async def listened(layer: BaseChannelLayer, groups: Sequence[str]) -> set[str]:
    """The groups with at least one socket in them. A layer this cannot ask (another
    back-end, another channels_redis) counts as listened to: the push is then only wasted."""
    if isinstance(layer, InMemoryChannelLayer):
        return {group for group in groups if layer.groups.get(group)}
    if not hasattr(layer, "_group_key") or not hasattr(layer, "consistent_hash"):
        return set(groups)
    # channels_redis keeps a group as a sorted set of channels scored by when they joined;
    # group_send skips those older than group_expiry, and so does this. One pipelined round
    # trip per Redis host, however many groups a tick touches.
    since = int(time.time()) - layer.group_expiry
    by_host: dict[int, list[str]] = defaultdict(list)
    for group in groups:
        by_host[layer.consistent_hash(group)].append(group)
    found = set()
    for index, members in by_host.items():
        pipe = layer.connection(index).pipeline(transaction=False)
        for group in members:
            pipe.zcount(layer._group_key(group), since, "+inf")
        counts = await pipe.execute()
        found.update(group for group, count in zip(members, counts, strict=True) if count)
    return found


@dataclass
class _Stream:
    """One group's numbering from this process."""

    origin: str
    seq: int = 0
    last_at: float = 0.0
    tails_sent: int = 0


class _FailureLog:
    """The first failure with its traceback; then one line per LOG_INTERVAL with a count."""

    def __init__(self) -> None:
        self.failing = False
        self.failed = 0  # jobs lost to failures since the last line
        self.overflowed = 0  # jobs dropped from a full queue since the last line
        self.total = 0
        self.since = time.monotonic()
        self.last_error = ""

    def failure(self, jobs: int, error: BaseException | None) -> None:
        if error is not None:
            self.last_error = f"{type(error).__name__}: {error}"
        if not self.failing:
            self.failing = True
            self.since = time.monotonic()
            self.total = jobs
            logger.error(
                "live: could not push to the channel layer (%s); pushes are skipped while it "
                "fails, and a count is logged every %d s",
                self.last_error,
                LOG_INTERVAL,
                exc_info=error,
            )
            return
        self.failed += jobs
        self.total += jobs

    def overflow(self) -> None:
        self.overflowed += 1

    def recovered(self) -> None:
        if self.failing:
            self.report()
            logger.warning("live: pushes go out again (%d lost while failing)", self.total)
        self.failing = False
        self.total = 0

    def report(self, *, due_only: bool = False) -> None:
        if due_only and time.monotonic() - self.since < LOG_INTERVAL:
            return
        seconds = time.monotonic() - self.since
        if self.failed:
            logger.error(
                "live: %d pushes failed in the last %.0f s: %s",
                self.failed,
                seconds,
                self.last_error,
            )
        if self.overflowed:
            logger.warning(
                "live: %d queued pushes dropped in the last %.0f s: the queue of %d was full",
                self.overflowed,
                seconds,
                QUEUE_SIZE,
            )
        self.failed = self.overflowed = 0
        self.since = time.monotonic()


@dataclass
class _Breaker:
    failures: int = 0
    open_until: float = 0.0

    def allows(self) -> bool:
        return time.monotonic() >= self.open_until

    def success(self) -> None:
        self.failures, self.open_until = 0, 0.0

    def failure(self) -> None:
        self.failures += 1
        if self.failures >= BREAKER_FAILURES:
            # Open (again, if this was the probe): skip sends for the cool-down.
            self.open_until = time.monotonic() + BREAKER_COOL_DOWN


@dataclass
class _LayerState:
    """What is tied to one channel layer object: settings changes (tests) make a new one."""

    layer: BaseChannelLayer | None = None
    breaker: _Breaker = field(default_factory=_Breaker)
    log: _FailureLog = field(default_factory=_FailureLog)


class Sender:
    """The process's pushes: `submit(job)` from any thread; `render` makes the messages."""

    def __init__(self, render: Render) -> None:
        self.render = render
        self._id = uuid.uuid4().hex[:12]
        self._streams: dict[str, _Stream] = {}
        self._tailing: dict[str, _Stream] = {}  # the streams whose tails are not all sent
        self._streams_created = 0
        self._forgot = time.monotonic()
        self._numbering = threading.Lock()  # the streams, and the order of inline sends
        self._queue: deque[Job] = deque()
        self._queued = threading.Condition()
        self._submitted = self._finished = 0
        self._thread: threading.Thread | None = None
        self._state = _LayerState()

    # From the committing thread.

    def submit(self, job: Job) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        if isinstance(layer, InMemoryChannelLayer):
            self._send_inline(layer, job)
            return
        with self._queued:
            if len(self._queue) >= QUEUE_SIZE:
                self._skip(self._queue.popleft().groups)
                self._finished += 1
                self._state.log.overflow()
            self._queue.append(job)
            self._submitted += 1
            self._queued.notify()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="inbox-live-sender", daemon=True
                )
                self._thread.start()

    def wait_until_sent(self, timeout: float) -> bool:
        """Whether every job submitted so far was sent (or dropped) within `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._queued:
            target = self._submitted
            while self._finished < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._queued.wait(min(left, 0.05))
        return True

    def _send_inline(self, layer: BaseChannelLayer, job: Job) -> None:
        try:
            audience = async_to_sync(listened)(layer, job.groups)
            if not audience:
                return
            messages = self.render([job], audience)
            # Numbered and sent under one lock: two committing threads' pushes reach a
            # group in the order of their numbers.
            with self._numbering:
                stamped = [
                    self._stamp(group, items, tail=False) for group, items in messages.items()
                ]
                async_to_sync(_send_all)(layer, stamped)
            if time.monotonic() - self._forgot > FORGET_AFTER / 10:
                self._forget_idle()
        except Exception:
            # The write is committed; failing the request now would only make the provider
            # retry an event we already have. Pages refetch what they missed on reconnect.
            logger.exception("live: could not publish to %s", ", ".join(job.groups))

    # Numbering.

    def _stream(self, group: str) -> _Stream:
        stream = self._streams.get(group)
        if stream is None:
            # A new origin each time a group's numbering starts (again, after it was
            # forgotten): a socket never compares numbers of two different counts.
            self._streams_created += 1
            stream = _Stream(origin=f"{self._id}.{self._streams_created}")
            self._streams[group] = stream
        return stream

    def _stamp(self, group: str, items: list[dict], *, tail: bool = True) -> dict:
        stream = self._stream(group)
        prev_at, now = stream.last_at, time.time()
        stream.seq += 1
        stream.last_at, stream.tails_sent = now, 0
        if tail:
            self._tailing[group] = stream
        return {
            "type": BATCH,
            "group": group,
            "origin": stream.origin,
            "seq": stream.seq,
            "prev_at": prev_at,
            "items": items,
        }

    def _skip(self, groups: Sequence[str]) -> None:
        """A job for these groups will never be sent: its number is taken all the same, so
        the next message (or the tail) shows the sockets that they missed one."""
        with self._numbering:
            for group in groups:
                stream = self._stream(group)
                stream.seq += 1
                stream.last_at, stream.tails_sent = time.time(), 0
                self._tailing[group] = stream

    def _forget_idle(self) -> None:
        self._forgot = time.monotonic()
        cutoff = time.time() - FORGET_AFTER
        with self._numbering:
            for group in [g for g, s in self._streams.items() if s.last_at < cutoff]:
                del self._streams[group]
                self._tailing.pop(group, None)

    # The sender thread.

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        while True:
            jobs = self._next_jobs()
            try:
                state = self._layer_state(loop)
                if jobs:
                    self._send_batch(loop, state, jobs)
                self._send_tails(loop, state)
                state.log.report(due_only=True)
            except Exception as error:
                # Counted with the layer's failures: whatever fails every tick (a Redis
                # that is down, say) logs once with its traceback, then a count.
                self._state.log.failure(len(jobs), error)
            finally:
                # The render's database connection goes back to the pool between ticks.
                connections.close_all()
                with self._queued:
                    self._finished += len(jobs)
                    self._queued.notify_all()
            if time.monotonic() - self._forgot > FORGET_AFTER / 10:
                self._forget_idle()

    def _next_jobs(self) -> list[Job]:
        with self._queued:
            if not self._queue:
                self._queued.wait(self._idle_wait())
            if not self._queue:
                return []
        # Let the tick fill: what commits in the next TICK goes out in the same messages.
        time.sleep(TICK)
        with self._queued:
            count = min(len(self._queue), MAX_BATCH)
            return [self._queue.popleft() for _ in range(count)]

    def _idle_wait(self) -> float:
        now = time.time()
        with self._numbering:
            due = [s.last_at + TAILS[s.tails_sent] for s in self._tailing.values()]
        return max(0.01, min([1.0, *(d - now for d in due)]))

    def _layer_state(self, loop: asyncio.AbstractEventLoop) -> _LayerState:
        layer = get_channel_layer()
        if layer is not self._state.layer:
            previous = self._state.layer
            self._state = _LayerState(layer=layer)
            if previous is not None:
                self._call(loop, _close_loop_connections(previous, loop))
        return self._state

    def _call(self, loop: asyncio.AbstractEventLoop, coroutine, timeout: float = CALL_TIMEOUT):
        return loop.run_until_complete(asyncio.wait_for(coroutine, timeout))

    def _send_batch(self, loop: asyncio.AbstractEventLoop, state: _LayerState, jobs: list[Job]):
        layer = state.layer
        if layer is None or isinstance(layer, InMemoryChannelLayer):
            return  # the layer changed under queued jobs (settings changed: tests only)
        groups = list(dict.fromkeys(group for job in jobs for group in job.groups))
        if not state.breaker.allows():
            self._lost(state, jobs, groups, None)
            return
        try:
            audience = self._call(loop, listened(layer, groups))
        except Exception as error:
            self._lost(state, jobs, groups, error)
            return
        if not audience:
            state.breaker.success()
            state.log.recovered()
            return
        try:
            messages = self.render(jobs, audience)
        except Exception as error:
            # The database, most likely: nothing can be rendered, so nothing is sent.
            self._lost(state, jobs, list(audience), error, breaker=False)
            return
        with self._numbering:
            stamped = [self._stamp(group, items) for group, items in messages.items()]
        for message in stamped:
            try:
                self._call(loop, layer.group_send(message["group"], message))
            except Exception as error:
                # Its number is taken: the sockets of that group see the gap.
                state.breaker.failure()
                state.log.failure(len(jobs), error)
                return
        state.breaker.success()
        state.log.recovered()

    def _lost(
        self,
        state: _LayerState,
        jobs: list[Job],
        groups: list[str],
        error: BaseException | None,
        *,
        breaker: bool = True,
    ) -> None:
        self._skip(groups)
        if breaker and error is not None:
            state.breaker.failure()
        state.log.failure(len(jobs), error)

    def _send_tails(self, loop: asyncio.AbstractEventLoop, state: _LayerState) -> None:
        layer = state.layer
        if layer is None or not state.breaker.allows():
            return
        now = time.time()
        with self._numbering:
            due = {
                group: (stream, stream.last_at)
                for group, stream in self._tailing.items()
                if now >= stream.last_at + TAILS[stream.tails_sent]
            }
        if not due:
            return
        try:
            audience = self._call(loop, listened(layer, list(due)))
            for group, (stream, last_at) in due.items():
                if group in audience:
                    message = {
                        "type": SYNC,
                        "group": group,
                        "origin": stream.origin,
                        "seq": stream.seq,
                        "at": stream.last_at,
                    }
                    self._call(loop, layer.group_send(group, message))
                with self._numbering:
                    if stream.last_at != last_at:
                        continue  # a batch went out meanwhile: its own tails start over
                    stream.tails_sent += 1
                    if stream.tails_sent >= len(TAILS) and self._tailing.get(group) is stream:
                        del self._tailing[group]
        except Exception as error:
            state.breaker.failure()
            state.log.failure(0, error)


async def _send_all(layer: BaseChannelLayer, messages: list[dict]) -> None:
    for message in messages:
        await layer.group_send(message["group"], message)


async def _close_loop_connections(layer: BaseChannelLayer, loop: asyncio.AbstractEventLoop):
    """Close the connections a replaced channels_redis layer keeps for this thread's loop."""
    loops = getattr(layer, "_layers", None)
    if isinstance(loops, dict) and loop in loops:
        await loops.pop(loop).flush()
