"""Every read the views and the API need, each a bounded number of queries."""

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db.models import Count, Q, QuerySet
from django.db.models.expressions import RawSQL

from inbox.models import Conversation, Message
from inbox.search import matching_conversation_ids_sql, search_terms

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
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, ident = raw.partition("|")
        decoded = datetime.fromisoformat(when), UUID(ident)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor(f"{cursor!r} is not a cursor this API gave out") from None
    if decoded[0].tzinfo is None:
        raise InvalidCursor(f"{cursor!r} is not a cursor this API gave out")
    return decoded


def _matching(queryset: QuerySet[Conversation], q: str) -> QuerySet[Conversation]:
    """Narrow to conversations with a message containing every word of `q` (through the
    text index; a query without words narrows nothing)."""
    terms = search_terms(q)
    if not terms:
        return queryset
    sql, params = matching_conversation_ids_sql(terms)
    # The SQL is fixed text; the agent's words travel only as a bound parameter.
    return queryset.filter(id__in=RawSQL(sql, params))  # noqa: S611


def conversation_list(
    *,
    status: str | None = None,
    cursor: str | None = None,
    q: str = "",
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
    queryset = _matching(queryset, q)
    if cursor:
        when, ident = cursor_decode(cursor)
        queryset = queryset.filter(
            Q(last_activity_at__lt=when) | Q(last_activity_at=when, id__lt=ident)
        )
    rows = list(queryset.order_by("-last_activity_at", "-id")[: page_size + 1])
    next_cursor = cursor_encode(rows[page_size - 1]) if len(rows) > page_size else None
    return Page(conversations=rows[:page_size], next_cursor=next_cursor)


def conversation_counts(*, q: str = "") -> dict[str, int]:
    """How many conversations each filter tab holds, in one aggregate query."""
    # GROUP BY status reads only the (status, ...) index, never the rows.
    by_status = dict(
        _matching(Conversation.objects.all(), q)
        .order_by()
        .values_list("status")
        .annotate(n=Count("*"))
    )
    open_count = by_status.get(Conversation.Status.OPEN, 0)
    closed_count = by_status.get(Conversation.Status.CLOSED, 0)
    return {"open": open_count, "closed": closed_count, "all": open_count + closed_count}


def conversation_matches(*, conversation_id: UUID, q: str) -> bool:
    """Whether this conversation belongs in the list of an agent searching for `q`: the
    same index and rules as the list's search. Every conversation matches an empty query."""
    return _matching(Conversation.objects.filter(pk=conversation_id), q).exists()


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
