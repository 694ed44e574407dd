"""Every read the views and the API need, each a bounded number of queries."""

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from django.db import connection
from django.db.models import BooleanField, Count, Q, QuerySet
from django.db.models.expressions import RawSQL

from inbox import search
from inbox.models import Conversation, Message

PAGE_SIZE = 50


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True)
class Page:
    conversations: list[Conversation]
    next_cursor: str | None


@dataclass(frozen=True)
class ThreadPage:
    messages: list[Message]  # oldest first, as the thread reads
    earlier_cursor: str | None  # the page before these, or None at the thread's start


def _keyset_encode(when: datetime, ident: UUID) -> str:
    raw = f"{when.isoformat()}|{ident}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def cursor_encode(conversation: Conversation) -> str:
    return _keyset_encode(conversation.last_activity_at, conversation.id)


def cursor_decode(cursor: str) -> tuple[datetime, UUID]:
    """The keyset position a cursor names; InvalidCursor for anything we did not give out.

    A cursor is the client's to forge: its time is normalised to UTC here, so one at the
    calendar's edge (`9999-12-31T23:59:59-05:00`) is refused rather than overflowing in
    the query (a 500).
    """
    invalid = InvalidCursor(f"{cursor[:100]!r} is not a cursor this API gave out")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, ident = raw.partition("|")
        decoded = datetime.fromisoformat(when), UUID(ident)
        if decoded[0].tzinfo is None:
            raise invalid
        return decoded[0].astimezone(UTC), decoded[1]
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise invalid from None


def _plan(q: str | search.Plan | None) -> search.Plan | None:
    return search.plan(q) if isinstance(q, str) else q


def _matching(queryset: QuerySet[Conversation], plan: search.Plan | None) -> QuerySet[Conversation]:
    """Narrow to conversations with a message containing every word searched for (through
    the text index; no plan narrows nothing). See inbox/search.py for the two plans."""
    if plan is None:
        return queryset
    # The SQL is fixed text; the agent's words travel only as bound parameters.
    table = Conversation._meta.db_table
    if plan.broad:
        sql, params = search.conversation_has_match_sql(plan.terms, table)
    else:
        sql, params = search.conversation_in_matches_sql(plan.terms, table)
    return queryset.filter(RawSQL(sql, params, output_field=BooleanField()))  # noqa: S611


def conversation_list(
    *,
    status: str | None = None,
    cursor: str | None = None,
    q: str | search.Plan | None = "",
    page_size: int = PAGE_SIZE,
) -> Page:
    """Conversations, newest activity first, one keyset page at a time.

    Keyset (not offset) paging keeps every page as cheap as the first, and a row that
    moves to the top while an agent scrolls is not shown twice on later pages. `q` keeps
    the conversations with a message containing all its words (accents and case ignored).
    """
    queryset: QuerySet[Conversation] = Conversation.objects.select_related("last_message")
    if status is not None:
        queryset = queryset.filter(status=status)
    queryset = _matching(queryset, _plan(q))
    if cursor:
        when, ident = cursor_decode(cursor)
        queryset = queryset.filter(
            Q(last_activity_at__lt=when) | Q(last_activity_at=when, id__lt=ident)
        )
    rows = list(queryset.order_by("-last_activity_at", "-id")[: page_size + 1])
    next_cursor = cursor_encode(rows[page_size - 1]) if len(rows) > page_size else None
    return Page(conversations=rows[:page_size], next_cursor=next_cursor)


@dataclass(frozen=True)
class TabCounts:
    """How many conversations each filter tab holds. While searching, a count stops at
    SEARCH_COUNT_LIMIT: `capped` names the tabs holding more (shown as "100+")."""

    open: int
    closed: int
    capped: frozenset[str] = frozenset()

    @property
    def all(self) -> int:
        return self.open + self.closed

    def label(self, tab: str) -> str:
        count = getattr(self, tab)
        capped = tab in self.capped or (tab == "all" and bool(self.capped))
        return f"{count}+" if capped else str(count)


# While searching, the tabs count matching conversations up to this many each: exact counts
# of a common word cost a pass over every match (see inbox/search.py).
SEARCH_COUNT_LIMIT = 100


def conversation_counts(*, q: str | search.Plan | None = "") -> TabCounts:
    """How many conversations each filter tab holds, in one aggregate query (a search for a
    common word on SQLite may read a sample of its newest matches first)."""
    plan = _plan(q)
    if plan is None:
        return _all_counts()
    if plan.broad:
        return _search_counts_capped(plan.terms)
    return _capped(_count_by_state(_matching(Conversation.objects.all(), plan)))


def _by_state(rows: Iterable[tuple[str, int]]) -> dict[str, int]:
    """(status, count) rows as the tabs' counts; a state with no row has none."""
    counted = dict(rows)
    return {
        "open": counted.get(Conversation.Status.OPEN, 0),
        "closed": counted.get(Conversation.Status.CLOSED, 0),
    }


def _count_by_state(queryset: QuerySet[Conversation]) -> dict[str, int]:
    return _by_state(queryset.order_by().values_list("status").annotate(n=Count("*")))


def _all_counts() -> TabCounts:
    """Every conversation by state, from the table the database keeps by trigger
    (migration 0004_conversation_counts): two rows, whatever the number of conversations."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT status, n FROM inbox_conversation_count")
        return TabCounts(**_by_state(cursor.fetchall()))


def _capped(counts: dict[str, int]) -> TabCounts:
    over = frozenset(tab for tab, n in counts.items() if n > SEARCH_COUNT_LIMIT)
    clamped = {tab: min(n, SEARCH_COUNT_LIMIT) for tab, n in counts.items()}
    return TabCounts(**clamped, capped=over)


def _search_counts_capped(terms: list[str]) -> TabCounts:
    """Per state, the matching conversations up to one past the limit: each count stops
    walking as soon as it has enough. Both in one query.

    On SQLite a sample of the newest matches usually settles both first: past the limit in
    the sample means past it in all. Walking costs gathering every matching rowid (20 ms for
    a word in 145,000 messages); the sample, reading a thousand."""
    limit = SEARCH_COUNT_LIMIT + 1
    if connection.vendor == "sqlite":
        sampled = _sampled_counts(terms)
        if min(sampled.values()) >= limit:
            return _capped(sampled)
    table = Conversation._meta.db_table
    condition, params = search.conversation_has_match_sql(terms, table)
    one_state = (
        f'SELECT COUNT(*) FROM (SELECT 1 FROM "{table}" WHERE "{table}"."status" = %s '  # noqa: S608
        f"AND {condition} LIMIT %s) AS matched"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT ({one_state}), ({one_state})",
            [Conversation.Status.OPEN, *params, limit, Conversation.Status.CLOSED, *params, limit],
        )
        open_count, closed_count = cursor.fetchone()
    return _capped({"open": open_count, "closed": closed_count})


SEARCH_COUNT_SAMPLE = 1000


def _sampled_counts(terms: list[str]) -> dict[str, int]:
    """The conversations of the newest SEARCH_COUNT_SAMPLE matching messages, by state: a
    lower bound of each count."""
    sql, params = search.newest_matches_sql(terms, SEARCH_COUNT_SAMPLE)
    return _count_by_state(Conversation.objects.filter(id__in=RawSQL(sql, params)))  # noqa: S611


def conversation_matches(*, conversation_id: UUID, q: str) -> bool:
    """Whether this conversation belongs in the list of an agent searching for `q`: the
    same index and rules as the list's search. Every conversation matches an empty query."""
    terms = search.search_terms(q)
    # One conversation: checking its own messages beats listing every match.
    plan = search.Plan(terms=terms, broad=True) if terms else None
    return _matching(Conversation.objects.filter(pk=conversation_id), plan).exists()


def conversation_get(*, conversation_id: UUID) -> Conversation | None:
    return Conversation.objects.select_related("last_message").filter(pk=conversation_id).first()


def thread_messages(*, conversation_id: UUID) -> QuerySet[Message]:
    """A whole thread in time order (id breaks ties, so the order is total)."""
    return Message.objects.filter(conversation_id=conversation_id).order_by("timestamp", "id")


def thread_page(
    *, conversation_id: UUID, before: str | None = None, page_size: int = PAGE_SIZE
) -> ThreadPage:
    """The latest `page_size` messages of a thread (or those just before the `before`
    cursor), oldest first. Keyset on the thread index, so a thread of 10,000 messages opens
    as fast as one of 10."""
    queryset = Message.objects.filter(conversation_id=conversation_id)
    if before:
        when, ident = cursor_decode(before)
        queryset = queryset.filter(Q(timestamp__lt=when) | Q(timestamp=when, id__lt=ident))
    rows = list(queryset.order_by("-timestamp", "-id")[: page_size + 1])
    earlier = None
    if len(rows) > page_size:
        oldest = rows[page_size - 1]
        earlier = _keyset_encode(oldest.timestamp, oldest.id)
    return ThreadPage(messages=rows[:page_size][::-1], earlier_cursor=earlier)
