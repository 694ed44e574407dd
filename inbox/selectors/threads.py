"""A conversation's messages: the whole thread, or one keyset window of it (the latest, the
ones before or after a cursor, or those around a message a search found)."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db.models import Q, QuerySet

from inbox.models import Message
from inbox.selectors.cursors import cursor_decode, cursor_encode

PAGE_SIZE = 50


@dataclass(frozen=True)
class ThreadPage:
    messages: list[Message]  # oldest first, as the thread reads
    earlier_cursor: str | None  # the page before these, or None at the thread's start
    later_cursor: str | None = None  # the page after these, or None at the thread's end


def thread_messages(*, conversation_id: UUID) -> QuerySet[Message]:
    """A whole thread in time order (id breaks ties, so the order is total)."""
    # The replying agent in the same query: every message shows who sent it.
    return (
        Message.objects.filter(conversation_id=conversation_id)
        .select_related("sent_by")
        .order_by("timestamp", "id")
    )


def _thread(conversation_id: UUID) -> QuerySet[Message]:
    return Message.objects.filter(conversation_id=conversation_id).select_related("sent_by")


def _before(when: datetime, ident: UUID) -> Q:
    return Q(timestamp__lt=when) | Q(timestamp=when, id__lt=ident)


def _after(when: datetime, ident: UUID) -> Q:
    return Q(timestamp__gt=when) | Q(timestamp=when, id__gt=ident)


def _earlier(
    conversation_id: UUID,
    position: tuple[datetime, UUID] | None,
    size: int,
    *,
    inclusive: bool = False,
) -> tuple[list[Message], str | None]:
    """Up to `size` messages before `position` (all of the thread without one), oldest
    first, and the cursor of the page before them (None at the thread's start)."""
    queryset = _thread(conversation_id)
    if position is not None:
        condition = _before(*position)
        if inclusive:
            condition |= Q(timestamp=position[0], id=position[1])
        queryset = queryset.filter(condition)
    rows = list(queryset.order_by("-timestamp", "-id")[: size + 1])
    earlier = None
    if len(rows) > size:
        oldest = rows[size - 1]
        earlier = cursor_encode(oldest.timestamp, oldest.id)
    return rows[:size][::-1], earlier


def _later(
    conversation_id: UUID, position: tuple[datetime, UUID], size: int
) -> tuple[list[Message], str | None]:
    """Up to `size` messages after `position`, oldest first, and the cursor of the page
    after them (None at the thread's end)."""
    queryset = _thread(conversation_id).filter(_after(*position))
    rows = list(queryset.order_by("timestamp", "id")[: size + 1])
    later = None
    if len(rows) > size:
        newest = rows[size - 1]
        later = cursor_encode(newest.timestamp, newest.id)
    return rows[:size], later


def thread_page(
    *,
    conversation_id: UUID,
    before: str | None = None,
    after: str | None = None,
    page_size: int = PAGE_SIZE,
) -> ThreadPage:
    """The latest `page_size` messages of a thread, or those just before the `before` cursor
    (scrolling up), or just after the `after` cursor (scrolling down a window opened on a
    search's match), oldest first. Keyset on the thread index, so a thread of 10,000
    messages opens as fast as one of 10."""
    if after:
        messages, later = _later(conversation_id, cursor_decode(after), page_size)
        return ThreadPage(messages=messages, earlier_cursor=None, later_cursor=later)
    position = cursor_decode(before) if before else None
    messages, earlier = _earlier(conversation_id, position, page_size)
    return ThreadPage(messages=messages, earlier_cursor=earlier)


def thread_around(
    *, conversation_id: UUID, message_id: UUID, page_size: int = PAGE_SIZE
) -> ThreadPage | None:
    """The window of a thread around one of its messages (a search's match): half a page
    up to it, half after, each end with its cursor to page on. None when the thread has no
    such message. Three queries, keyset both ways."""
    anchor = (
        Message.objects.filter(conversation_id=conversation_id, pk=message_id)
        .values_list("timestamp", "id")
        .first()
    )
    if anchor is None:
        return None
    half = page_size // 2
    earlier_messages, earlier = _earlier(conversation_id, anchor, half + 1, inclusive=True)
    later_messages, later = _later(conversation_id, anchor, page_size - half - 1)
    return ThreadPage(
        messages=earlier_messages + later_messages, earlier_cursor=earlier, later_cursor=later
    )
