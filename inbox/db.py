"""The one door every write goes through: `write()`, a transaction that waits its turn.

Webhook deliveries and agents' actions alike take it, so on SQLite they queue on one lock
instead of polling each other, and a service nested in another's transaction joins it.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

from django.db import OperationalError, connection, transaction

_sqlite_writer = threading.Lock()
# How deep this thread is in `write()`: only the outermost takes the lock (it is not
# reentrant, so that a test can hold it from one thread and see another wait).
_depth = threading.local()


@contextmanager
def _writer_turn() -> Iterator[None]:
    """On SQLite, this process's writers go one at a time, queued on a lock.

    SQLite takes one writer at a time and makes the others poll for it, sleeping up to
    100 ms between tries: under 16 concurrent deliveries the webhook's p99 was 1.5 s. A lock
    wakes the next writer the moment the last one commits. Writers in other processes still
    queue through SQLite's busy timeout, which bounds the wait here too (then
    OperationalError, which the webhook answers 503).
    """
    depth = getattr(_depth, "value", 0)
    if connection.vendor != "sqlite" or depth:
        _depth.value = depth + 1
        try:
            yield
        finally:
            _depth.value = depth
        return
    timeout = connection.settings_dict.get("OPTIONS", {}).get("timeout", 20.0)
    if not _sqlite_writer.acquire(timeout=timeout):
        raise OperationalError("database is locked (waited for this process's other writers)")
    _depth.value = 1
    try:
        yield
    finally:
        _depth.value = 0
        _sqlite_writer.release()


@contextmanager
def write(*, savepoint: bool = False, atomic: bool = True) -> Iterator[None]:
    """Every write's transaction: the writer's turn, then `transaction.atomic`.

    `savepoint=False` by default: a write that never rolls back part of its work and
    carries on needs no savepoint when nested in its caller's transaction (nested in the
    webhook's, the savepoints were 4 of its 12 statements); one that does
    (`transaction.set_rollback` on a refused insert) asks for one. `atomic=False` is for a
    single statement, atomic by itself: it needs only the turn, not a BEGIN of its own.
    """
    with _writer_turn():
        if not atomic:
            yield
            return
        with transaction.atomic(savepoint=savepoint):
            yield


def key_lock(ident: UUID) -> None:
    """Serialise, until the transaction ends, every write that concerns one provider id.

    SQLite needs nothing: BEGIN IMMEDIATE already lets only one writer in at a time.
    """
    if connection.vendor == "postgresql":
        key = int.from_bytes(ident.bytes[:8], "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
