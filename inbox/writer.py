"""Group commit: the webhook's deliveries applied together, on one long-lived writer.

On SQLite the process has one writer at a time anyway (inbox/db.py). Measured under
`make bench`'s load (README, Performance), each delivery paid on its own for what it shared
with its neighbours: a new connection in its request's thread (connect, the WAL pragmas,
close: about a third of the webhook's own time), a BEGIN and a COMMIT, the handing over of the
writer's lock, and the render and send of its live pushes while it held that lock, once per
event even when twenty arrived together.

So a delivery's work (a callable that writes, the same one that would run in its own
transaction) is handed to `apply()`, and the writer, one thread with a connection it keeps,
runs every delivery waiting at that moment in ONE transaction:

- each in its own savepoint: one that raises is rolled back alone and gets its exception;
  the others are stored and get their own results (201/200/409/202 as they would alone);
- its on_commit callbacks (the live pushes, inbox/live/publish.py) run once the group has
  committed, so nothing is pushed for a group that did not commit, and the group's changes
  go out as one batch: one render, one frame per socket;
- when the group cannot commit (the store is down, locked by another process), nothing of
  it is stored and every delivery in it gets the error, which the webhook answers 503;
- an answer is given only after its group committed: a delivery answered is stored, and one
  cut short (the process killed mid-group) was never answered, so the provider's retry is safe.

Only SQLite goes through the writer. PostgreSQL runs deliveries side by side in their own
transactions and connections from the pool (they wait only on the rows they share), and a
group holding several conversations' locks in one transaction could deadlock with another
process's group. A delivery made inside a caller's transaction (a test's, a management
command's) joins that transaction rather than waiting for a writer that cannot see it.
"""

import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync
from django.db import connection, transaction

from inbox import db

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_GROUP = 64  # deliveries in one transaction, at most: a bound on one group's latency


@dataclass(eq=False)
class _Delivery:
    work: Callable[[], Any]
    future: Future = field(default_factory=Future)
    # The event loop of the request that submitted it (asgiref's thread-local, set in the
    # threads that serve sync views): the live pushes of its group are sent on that loop,
    # where the in-process channel layer's sockets wait (inbox/live/publish.py).
    loop: Any = None


class GroupWriter:
    """One thread, started on first use, applying what `apply()` hands it group by group."""

    def __init__(self) -> None:
        self._waiting: deque[_Delivery] = deque()
        self._arrived = threading.Condition()
        self._thread: threading.Thread | None = None
        self._reconnect = threading.Event()

    def reconnect(self) -> None:
        """Close the writer's connection before its next group, as `connections.close_all()`
        does for the calling thread's: the next group connects with the settings then in
        force (a test's database outage points them elsewhere)."""
        self._reconnect.set()

    def apply(self, work: Callable[[], T]) -> T:
        """`work()`'s result once its group has committed; or its exception, or the group's."""
        if connection.vendor != "sqlite" or connection.in_atomic_block:
            # Its own transaction, or a savepoint in its caller's: a failure rolls back
            # only this delivery, as in a group.
            with db.write(savepoint=True):
                return work()
        loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
        delivery = _Delivery(work=work, loop=loop)
        with self._arrived:
            self._waiting.append(delivery)
            self._arrived.notify()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="inbox-group-writer", daemon=True
                )
                self._thread.start()
        return delivery.future.result()

    def _run(self) -> None:
        while True:
            with self._arrived:
                while not self._waiting:
                    self._arrived.wait()
                count = min(len(self._waiting), MAX_GROUP)
                group = [self._waiting.popleft() for _ in range(count)]
            self._commit(group)

    def _commit(self, group: list[_Delivery]) -> None:
        if self._reconnect.is_set():
            self._reconnect.clear()
            connection.close()
        outcomes: list[tuple[bool, Any]] = []
        try:
            with _pushes_on(group[0].loop), db.write():
                for delivery in group:
                    try:
                        with transaction.atomic():  # its own savepoint
                            outcomes.append((True, delivery.work()))
                    except Exception as error:
                        outcomes.append((False, error))
        except Exception as error:
            # BEGIN or COMMIT failed: the whole group was rolled back, none of it is stored.
            logger.warning("webhook: a group of %d deliveries could not commit", len(group))
            for delivery in group:
                delivery.future.set_exception(error)
            # The next group starts on a fresh connection, whatever this one's state.
            connection.close()
            return
        for delivery, (succeeded, value) in zip(group, outcomes, strict=True):
            if succeeded:
                delivery.future.set_result(value)
            else:
                delivery.future.set_exception(value)


class _pushes_on:
    """Let this thread's `async_to_sync` calls run on `loop`, as in the thread of a request.

    The pushes of a group (on_commit, in this thread) then reach the in-process channel
    layer's queues on the loop that their sockets wait on, not on a loop of their own.
    """

    def __init__(self, loop: Any) -> None:
        self.loop = loop

    def __enter__(self) -> None:
        local = SyncToAsync.threadlocal
        if self.loop is not None:
            local.main_event_loop, local.main_event_loop_pid = self.loop, os.getpid()

    def __exit__(self, *exc: object) -> None:
        local = SyncToAsync.threadlocal
        local.main_event_loop = local.main_event_loop_pid = None


_writer = GroupWriter()


def apply(work: Callable[[], T]) -> T:
    """Run one delivery's writes with the others waiting now, in one transaction (above)."""
    return _writer.apply(work)


def reconnect() -> None:
    """The writer's next group opens a new connection (GroupWriter.reconnect)."""
    _writer.reconnect()
