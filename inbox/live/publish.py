"""What a committed write pushes, and the way out: one batch per transaction, off the request.

The services describe each write as a `Change` (`conversation_changed`, `message_added`,
`session_ended`). Called inside a transaction, the changes are collected and handed over
together, in ONE `transaction.on_commit`, when it commits: nothing is pushed for a write that
rolls back, a transaction that drains N held events makes one batch, not N, and every
fragment is rendered from the committed state. Called outside one (from a service's own
on_commit callback, say), a change is handed over at once. A change from a savepoint that
rolled back may go out with its transaction's others: `render` reads what was committed and
skips what is not there, and each fragment is state, not a delta, so that is only a wasted
row.

The process's one `Sender` asks who listens (groups.py), calls `render` for a whole tick of
transactions and sends the messages, numbered so that a page learns when it missed one. A
push that fails (the channel layer's Redis is down or hung) never holds or fails the
request: the write is committed and the webhook must still answer 2xx.

The request returns at once, whatever state Redis is in (README, "Live pushes under load and
faults"). On channels-redis the sender is a daemon thread:

- It takes what was queued in the last tick (`TICK`, 25 ms), asks Redis once which groups of
  those changes have a socket, renders for those only, and sends ONE channel layer message
  per group for the whole tick: a burst of events costs each socket a few messages, not one
  per event.
- Every Redis call has a short timeout (`CALL_TIMEOUT`). After `BREAKER_FAILURES` failures in
  a row the breaker opens: jobs are dropped without trying for `BREAKER_COOL_DOWN` seconds,
  then one batch probes Redis again. A hung Redis costs each tick one timeout, not each
  webhook.
- The queue holds at most `QUEUE_SIZE` jobs (a job is one transaction's changes); when it is
  full the oldest is dropped.
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
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer
from django.db import connections, transaction

from inbox import selectors
from inbox.channel_layer import InboxChannelLayer
from inbox.live.fragments import (
    bubble_event,
    counts_event,
    header_event,
    note_event,
    row_event,
)
from inbox.live.groups import (
    AGENTS_GROUP,
    conversation_group,
    listened,
    session_group,
    user_group,
)
from inbox.models import Message, Note

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


@dataclass(frozen=True)
class Change:
    """A write to push once committed: what `render` turns into fragments, in the sender."""

    CONVERSATION: ClassVar[str] = "conversation"
    # A change that is not activity (a contact renamed, an assignment): the row is updated
    # where it is, not moved to the top.
    DETAILS: ClassVar[str] = "details"
    MESSAGE: ClassVar[str] = "message"
    # An internal note: its bubble to the thread's viewers, nothing to the list (README,
    # "Triage": a note is no activity, no count, no preview).
    NOTE: ClassVar[str] = "note"
    SESSION: ClassVar[str] = "session"
    ACCOUNT: ClassVar[str] = "account"

    kind: str
    groups: tuple[str, ...]
    conversation_id: UUID | None = None
    message_id: UUID | None = None
    note_id: UUID | None = None
    version: int = 0


# A job: one transaction's changes, sent together.
Job = tuple[Change, ...]


def _pushes(jobs: Sequence[Job]) -> int:
    """The changes in these jobs: what a failure log counts, however many transactions (a
    group commit of the webhook's deliveries is one, inbox/writer.py) they came in."""
    return sum(len(job) for job in jobs)


def _groups(job: Job) -> list[str]:
    return list(dict.fromkeys(group for change in job for group in change.groups))


def conversation_changed(conversation_id: UUID) -> None:
    """Push a conversation's row to every agent and its header to the thread's viewers.

    For writes that make the conversation the most recent activity: opened, closed, reopened.
    """
    publish(
        Change(
            kind=Change.CONVERSATION,
            groups=(AGENTS_GROUP, conversation_group(conversation_id)),
            conversation_id=conversation_id,
            version=_version(),
        )
    )


def conversation_updated(conversation_id: UUID) -> None:
    """Push a conversation's row and header for a change that is not activity: the row
    stays in its place in the list (README, "Triage")."""
    publish(
        Change(
            kind=Change.DETAILS,
            groups=(AGENTS_GROUP, conversation_group(conversation_id)),
            conversation_id=conversation_id,
            version=_version(),
        )
    )


def message_added(message_id: UUID, conversation_id: UUID) -> None:
    """Push a new message: its bubble to the thread's viewers, its row to every agent.

    The row moves to the top only when this is the conversation's latest message; a late
    delivery of an old message updates the row where it is.
    """
    publish(
        Change(
            kind=Change.MESSAGE,
            groups=(conversation_group(conversation_id), AGENTS_GROUP),
            conversation_id=conversation_id,
            message_id=message_id,
            version=_version(),
        )
    )


def note_added(note_id: UUID, conversation_id: UUID) -> None:
    """Push a new internal note to the thread's viewers (only theirs: the list shows none)."""
    publish(
        Change(
            kind=Change.NOTE,
            groups=(conversation_group(conversation_id),),
            conversation_id=conversation_id,
            note_id=note_id,
            version=_version(),
        )
    )


def session_ended(session_key: str) -> None:
    """Close the sockets of a session that logged out or was deleted: they would go on
    receiving every conversation's pushes until their tabs closed. Other sessions of the
    agent keep theirs."""
    publish(Change(kind=Change.SESSION, groups=(session_group(session_key),)))


def account_changed(user_id: int | str) -> None:
    """Make every socket of an agent whose account changed (deactivated, a new password)
    check that its session still logs it in, and close itself if not (inbox/consumers.py)."""
    publish(Change(kind=Change.ACCOUNT, groups=(user_group(user_id),)))


def wait_until_sent(timeout: float = 10.0) -> bool:
    """Whether every push submitted so far has left this process (or was dropped)."""
    return _sender.wait_until_sent(timeout)


class _Transaction:
    """The changes of one transaction, handed to the sender together when it commits."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.sent = False

    def send(self) -> None:
        self.sent = True
        _sender.submit(tuple(self.changes))


# Per thread (a connection is), the transaction collecting changes. Only its on_commit
# callback holds it: when the transaction (or the savepoint that registered the callback)
# rolls back, Django drops the callback, the weak reference dies with it, and the next
# change starts a new collection.
_collecting = threading.local()


def publish(change: Change) -> None:
    """Push a change after its transaction commits, in one batch with its other changes."""
    if not transaction.get_connection().in_atomic_block:
        _sender.submit((change,))
        return
    ref = getattr(_collecting, "transaction", None)
    pending = ref() if ref is not None else None
    if pending is None or pending.sent:
        pending = _Transaction()
        _collecting.transaction = weakref.ref(pending)
        transaction.on_commit(pending.send, robust=True)
    pending.changes.append(change)


def render(jobs: Sequence[Job], audience: set[str]) -> dict[str, list[dict]]:
    """The messages for a tick's changes, by group, for the groups with a socket.

    Coalesced: a conversation that changed several times in the tick gets one row and one
    header (a new message changes the header's count too), read once from the committed
    state (newer than any of the changes), with the newest version and every received
    message's marker. Each bubble is its own. Thread groups come first, so a thread's viewer
    gets the bubble before the row that counts it. The agents' group gets the tabs' counts
    once per tick, after its rows.
    """
    changes = [change for job in jobs for change in job]
    wanted = [c for c in changes if any(group in audience for group in c.groups)]
    conversation_ids = dict.fromkeys(
        c.conversation_id for c in wanted if c.conversation_id is not None
    )
    message_ids = {c.message_id for c in wanted if c.message_id is not None}
    conversations = (
        selectors.conversations_get(conversation_ids=conversation_ids) if conversation_ids else {}
    )
    # With the replying agent: a bubble names who sent it.
    messages = Message.objects.select_related("sent_by").in_bulk(message_ids) if message_ids else {}
    note_ids = {c.note_id for c in wanted if c.note_id is not None}
    notes = Note.objects.select_related("author").in_bulk(note_ids) if note_ids else {}

    threads: dict[str, list[dict]] = {}
    rows: dict[UUID, dict] = {}  # by conversation, in the order of their last change
    headers: dict[UUID, int] = {}  # conversation -> newest version of a header change
    sessions: dict[str, list[dict]] = {}
    for change in wanted:
        if change.kind == Change.SESSION:
            sessions[change.groups[0]] = [{"type": "session.ended"}]
            continue
        if change.kind == Change.ACCOUNT:
            sessions[change.groups[0]] = [{"type": "session.check"}]
            continue
        if change.kind == Change.NOTE:
            note = notes.get(change.note_id)
            group = change.groups[0]
            if note is not None and group in audience:
                threads.setdefault(group, []).append(note_event(note, version=change.version))
            continue
        conversation = conversations.get(change.conversation_id)
        message = messages.get(change.message_id) if change.message_id else None
        if conversation is None or (change.kind == Change.MESSAGE and message is None):
            continue
        thread = conversation_group(conversation.id)
        if message is not None and thread in audience:
            threads.setdefault(thread, []).append(bubble_event(message, version=change.version))
        # Every change, a message too: the header counts the messages, and the page hides
        # its "no messages yet" by what the thread holds, so all follow the same push.
        if thread in audience:
            headers[conversation.id] = max(headers.get(conversation.id, 0), change.version)
        if AGENTS_GROUP in audience:
            row = rows.pop(conversation.id, {"version": 0, "to_top": False, "received": []})
            row["version"] = max(row["version"], change.version)
            row["to_top"] = row["to_top"] or (
                change.kind == Change.CONVERSATION
                or (message is not None and conversation.last_message_id == message.id)
            )
            if message is not None and message.direction == "RECEIVED":
                row["received"].append(message.id)
            rows[conversation.id] = row

    out: dict[str, list[dict]] = {}
    for conversation_id, version in headers.items():
        header = header_event(conversations[conversation_id], version=version)
        threads.setdefault(conversation_group(conversation_id), []).append(header)
    out.update(threads)
    if rows:
        # What each agent has seen of these rows, in one query whatever the number of agents.
        seen = selectors.conversations_seen(conversation_ids=rows.keys())
        out[AGENTS_GROUP] = [
            row_event(conversations[conversation_id], **row, seen=seen.get(conversation_id))
            for conversation_id, row in rows.items()
        ]
        # After the rows, read after them: the tabs count at least what the rows show.
        version = max(row["version"] for row in rows.values())
        out[AGENTS_GROUP].append(counts_event(selectors.conversation_counts(), version=version))
    out.update(sessions)
    return out


def _version() -> int:
    """Microseconds since the epoch (exact in a JavaScript number).

    Taken before the state is read, so a fragment never claims to be newer than what it shows.
    """
    return time.time_ns() // 1000


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
        self.failed = 0  # pushes (changes) lost to failures since the last line
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

    def __init__(self) -> None:
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
        if _forward is not None and job:
            _forward(job)
            return
        layer = get_channel_layer()
        if layer is None or not job:
            return
        if isinstance(layer, InMemoryChannelLayer):
            self._send_inline(layer, job)
            return
        with self._queued:
            if len(self._queue) >= QUEUE_SIZE:
                self._skip(_groups(self._queue.popleft()))
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
            audience = async_to_sync(listened)(layer, _groups(job))
            if not audience:
                return
            messages = render([job], audience)
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
            logger.exception("live: could not publish to %s", ", ".join(_groups(job)))

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
                self._state.log.failure(_pushes(jobs), error)
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
            if isinstance(previous, InboxChannelLayer):
                self._call(loop, previous.close_loop_connections())
        return self._state

    def _call(self, loop: asyncio.AbstractEventLoop, coroutine, timeout: float = CALL_TIMEOUT):
        return loop.run_until_complete(asyncio.wait_for(coroutine, timeout))

    def _send_batch(self, loop: asyncio.AbstractEventLoop, state: _LayerState, jobs: list[Job]):
        layer = state.layer
        if layer is None or isinstance(layer, InMemoryChannelLayer):
            return  # the layer changed under queued jobs (settings changed: tests only)
        groups = list(dict.fromkeys(group for job in jobs for group in _groups(job)))
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
            messages = render(jobs, audience)
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
                state.log.failure(_pushes(jobs), error)
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
        state.log.failure(_pushes(jobs), error)

    def _send_tails(self, loop: asyncio.AbstractEventLoop, state: _LayerState) -> None:
        layer = state.layer
        if layer is None or isinstance(layer, InMemoryChannelLayer) or not state.breaker.allows():
            # The in-process layer's pushes are inline and have no tails (settings changed
            # under this thread: tests only).
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


_sender = Sender()

# Where this process's pushes go instead of its channel layer: set by a worker whose
# in-process layer has no sockets in it, to hand its changes to the server's (notify.py).
_forward: Callable[[Job], None] | None = None


def forward_to(forward: Callable[[Job], None] | None) -> None:
    """Send this process's committed changes to `forward` instead of the channel layer
    (None: the layer again)."""
    global _forward
    _forward = forward
