"""Fill the store fast with realistic conversations, for scale tests and the benchmarks.

This bypasses `services` on purpose: one transaction per webhook event would take hours for
a million messages. It writes rows that `services` would have produced for in-order
deliveries, denormalised fields included (`message_count`, `last_message`,
`last_message_at`, `last_activity_at`), with multi-row inserts on SQLite and COPY on
PostgreSQL. Both go through SQL on the real tables, so indexes and triggers (a text search
index, say) are maintained as for any other insert.
"""

import contextlib
import random
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

from devtools.simulator import RECEIVED, SENT, customer, message_text
from inbox.models import Contact, Conversation, Message
from inbox.services.contacts import name_fold

# Rows per transaction: large enough to amortise the commit, small enough to keep memory flat.
_CONVERSATIONS_PER_BATCH = 5000
_TEXTS_PER_DIRECTION = 4000


@dataclass(frozen=True)
class SeedReport:
    conversations: int
    messages: int
    largest_thread: uuid.UUID | None


@dataclass
class _Batch:
    conversations: list[tuple]
    messages: list[tuple]
    contacts: list[tuple]


# Seeded phones are +55 12 9 and 8 digits from the contact's id: unique however often the
# store is seeded, and never one the simulator draws (it uses other area codes).
_SEEDED_PHONE_BASE = 60_000_000


def _seeded_phone(contact_id: int) -> str:
    return f"+55129{_SEEDED_PHONE_BASE + contact_id % 40_000_000:08d}"


def _message_counts(
    rng: random.Random, *, conversations: int, messages: int, largest_thread: int
) -> list[int]:
    """How many messages each conversation gets: Poisson-like around the mean, summing exactly."""
    counts = [0] * conversations
    if conversations == 0:
        return counts
    largest_thread = min(largest_thread, messages)
    if largest_thread:
        counts[0] = largest_thread
    rest = messages - largest_thread
    others = conversations - 1 if largest_thread else conversations
    offset = conversations - others
    if others == 0:
        counts[0] += rest
        return counts
    for index in rng.choices(range(offset, conversations), k=rest):
        counts[index] += 1
    return counts


def _new_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _batches(
    rng: random.Random, counts: list[int], *, now: datetime, open_ratio: float, first_contact: int
) -> Iterator[_Batch]:
    texts = {
        direction: [message_text(rng, direction) for _ in range(_TEXTS_PER_DIRECTION)]
        for direction in (RECEIVED, SENT)
    }
    span = timedelta(days=90).total_seconds()
    batch = _Batch([], [], [])
    for number, count in enumerate(counts):
        conversation_id = _new_uuid(rng)
        contact_id = first_contact + number
        name = customer(conversation_id)["name"]
        batch.contacts.append((contact_id, name, _seeded_phone(contact_id), name_fold(name), now))
        created_at = now - timedelta(seconds=rng.uniform(0, span))
        when = created_at
        message_id = None
        for position in range(count):
            # Strictly increasing times: the last message is the one with the latest time.
            when += timedelta(seconds=rng.uniform(5, 300))
            direction = RECEIVED if position % 2 == 0 else SENT
            message_id = _new_uuid(rng)
            content = rng.choice(texts[direction])
            batch.messages.append((message_id, conversation_id, direction, content, when))
        last_message_at = when if count else None
        closed_at = None
        status = Conversation.Status.OPEN
        if rng.random() >= open_ratio:
            status = Conversation.Status.CLOSED
            closed_at = when + timedelta(seconds=rng.uniform(60, 3600))
        last_activity_at = max(t for t in (created_at, last_message_at, closed_at) if t)
        batch.conversations.append(
            (
                conversation_id,
                status,
                created_at,
                closed_at,
                last_activity_at,
                count,
                message_id,
                last_message_at,
                contact_id,
                # Alternating turns: the newest is the customer's when the count is odd, and
                # then it is their only message since our last.
                when if count % 2 else None,
            )
        )
        if len(batch.conversations) >= _CONVERSATIONS_PER_BATCH:
            yield batch
            batch = _Batch([], [], [])
    if batch.conversations:
        yield batch


_CONVERSATION_COLUMNS = (
    "id",
    "status",
    "created_at",
    "closed_at",
    "last_activity_at",
    "message_count",
    "last_message_id",
    "last_message_at",
    "contact_id",
    "waiting_since",
)
_CONTACT_COLUMNS = ("id", "name", "phone", "name_folded", "created_at")
_MESSAGE_COLUMNS = ("id", "conversation_id", "direction", "content", "timestamp")


def _sqlite_row(row: tuple) -> tuple:
    # Django's own SQLite representation: UUIDs as 32 hex digits, datetimes as naive UTC text.
    return tuple(
        value.hex
        if isinstance(value, uuid.UUID)
        else str(value.astimezone(UTC).replace(tzinfo=None))
        if isinstance(value, datetime)
        else value
        for value in row
    )


def _write_sqlite(cursor, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    placeholders = ", ".join(["%s"] * len(columns))
    cursor.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})",  # noqa: S608
        [_sqlite_row(row) for row in rows],
    )


def _write_postgresql(cursor, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    # COPY is several times faster than INSERT; psycopg adapts UUIDs and aware datetimes.
    with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


# `CREATE TRIGGER name AFTER INSERT ON table [FOR EACH ROW] BEGIN INSERT INTO ... VALUES
# (new.x, ...); END`: a trigger that copies each new row somewhere (a text search index).
_COPYING_TRIGGER = re.compile(
    r"^\s*CREATE\s+TRIGGER\s+\S+\s+AFTER\s+INSERT\s+ON\s+\S+\s+(?:FOR\s+EACH\s+ROW\s+)?"
    r"BEGIN\s+(?P<insert>INSERT\s+INTO\s+[^;]+?)\s+VALUES\s*\((?P<values>[^;]*)\)\s*;\s*END\s*$",
    re.IGNORECASE | re.DOTALL,
)


@dataclass
class _SetAside:
    """SQLite triggers dropped for the load, replayed once over all its rows, then restored.

    A full-text index filled row by row through a trigger takes ten times longer than one
    INSERT ... SELECT over the same rows (measured with an FTS5 index: 25 s against 2 s for
    200,000 messages). Only triggers of the simple copying shape are set aside; any other
    keeps firing row by row, so the result is the same either way.
    """

    table: str
    after_rowid: int
    triggers: list[tuple[str, str, str]]  # name, CREATE statement, INSERT ... SELECT

    def replay(self) -> None:
        with connection.cursor() as cursor:
            for _name, create, replay in self.triggers:
                cursor.execute(f"{replay} WHERE inserted.rowid > {int(self.after_rowid)}")
                cursor.execute(create)


def _sqlite_triggers_set_aside(table: str) -> _SetAside:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
            [table],
        )
        found = cursor.fetchall()
        cursor.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}")  # noqa: S608
        after_rowid = cursor.fetchone()[0]
        triggers = []
        for name, create in found:
            shape = _COPYING_TRIGGER.match(create or "")
            if not shape or re.search(r"\bold\.", shape["values"], re.IGNORECASE):
                continue
            values = re.sub(r"\bnew\.", "inserted.", shape["values"], flags=re.IGNORECASE)
            replay = f"{shape['insert']} SELECT {values} FROM {table} AS inserted"  # noqa: S608
            cursor.execute(f'DROP TRIGGER "{name}"')
            triggers.append((name, create, replay))
    return _SetAside(table=table, after_rowid=after_rowid, triggers=triggers)


def seed(
    *,
    conversations: int,
    messages: int,
    largest_thread: int = 0,
    open_ratio: float = 0.3,
    random_seed: int = 0,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SeedReport:
    """Add `conversations` conversations holding `messages` messages in all.

    `largest_thread` gives the first conversation that many messages (a long thread to
    measure); the rest are spread at random. `open_ratio` of the conversations stay OPEN.
    """
    if conversations < 0 or messages < 0 or largest_thread < 0:
        raise ValueError("counts must not be negative")
    if messages and not conversations:
        raise ValueError("messages need at least one conversation")
    rng = random.Random(random_seed)  # noqa: S311 - sample data, not secrets
    now = now or datetime.now(UTC)
    counts = _message_counts(
        rng, conversations=conversations, messages=messages, largest_thread=largest_thread
    )
    if connection.vendor == "postgresql":
        write = _write_postgresql
    elif connection.vendor == "sqlite":
        write = _write_sqlite
    else:
        raise NotImplementedError(
            f"seeding supports SQLite and PostgreSQL, not {connection.vendor}"
        )
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            # Random UUID keys land all over the index: a large page cache keeps those
            # inserts in memory instead of on disk (this connection only).
            cursor.execute("PRAGMA cache_size = -262144")
    contact_table = Contact._meta.db_table
    first_contact = (Contact.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    conversation_table = Conversation._meta.db_table
    message_table = Message._meta.db_table
    first_id = None
    done_conversations = done_messages = 0
    # On SQLite the whole load is one transaction, so the triggers set aside below are back
    # whatever happens; PostgreSQL commits batch by batch.
    whole = transaction.atomic() if connection.vendor == "sqlite" else contextlib.nullcontext()
    with whole:
        set_aside = (
            _sqlite_triggers_set_aside(message_table) if connection.vendor == "sqlite" else None
        )
        batches = _batches(rng, counts, now=now, open_ratio=open_ratio, first_contact=first_contact)
        for batch in batches:
            if first_id is None:
                first_id = batch.conversations[0][0]
            # Conversations point at their last message and messages at their conversation:
            # both foreign keys are deferred to the commit, so one order suffices.
            with transaction.atomic(), connection.cursor() as cursor:
                write(cursor, contact_table, _CONTACT_COLUMNS, batch.contacts)
                write(cursor, conversation_table, _CONVERSATION_COLUMNS, batch.conversations)
                write(cursor, message_table, _MESSAGE_COLUMNS, batch.messages)
            done_conversations += len(batch.conversations)
            done_messages += len(batch.messages)
            if progress:
                progress(done_conversations, done_messages)
        if set_aside:
            set_aside.replay()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and done_conversations:
            # The ids were written, not drawn from the sequence: it must move past them.
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{contact_table}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {contact_table}))"
            )
        # Fresh statistics, as a long-lived database would have, so the planner picks the
        # indexes it would pick in production.
        for table in (contact_table, conversation_table, message_table):
            cursor.execute(f"ANALYZE {table}")
    return SeedReport(
        conversations=done_conversations,
        messages=done_messages,
        largest_thread=first_id if largest_thread else None,
    )
