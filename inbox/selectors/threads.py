"""A conversation's messages: the whole thread, or one keyset page of it."""

from dataclasses import dataclass
from uuid import UUID

from django.db.models import Q, QuerySet

from inbox.models import Message
from inbox.selectors.cursors import cursor_decode, cursor_encode

PAGE_SIZE = 50


@dataclass(frozen=True)
class ThreadPage:
    messages: list[Message]  # oldest first, as the thread reads
    earlier_cursor: str | None  # the page before these, or None at the thread's start


def thread_messages(*, conversation_id: UUID) -> QuerySet[Message]:
    """A whole thread in time order (id breaks ties, so the order is total)."""
    # The replying agent in the same query: every message shows who sent it.
    return (
        Message.objects.filter(conversation_id=conversation_id)
        .select_related("sent_by")
        .order_by("timestamp", "id")
    )


def thread_page(
    *, conversation_id: UUID, before: str | None = None, page_size: int = PAGE_SIZE
) -> ThreadPage:
    """The latest `page_size` messages of a thread (or those just before the `before`
    cursor), oldest first. Keyset on the thread index, so a thread of 10,000 messages opens
    as fast as one of 10."""
    queryset = Message.objects.filter(conversation_id=conversation_id).select_related("sent_by")
    if before:
        when, ident = cursor_decode(before)
        queryset = queryset.filter(Q(timestamp__lt=when) | Q(timestamp=when, id__lt=ident))
    rows = list(queryset.order_by("-timestamp", "-id")[: page_size + 1])
    earlier = None
    if len(rows) > page_size:
        oldest = rows[page_size - 1]
        earlier = cursor_encode(oldest.timestamp, oldest.id)
    return ThreadPage(messages=rows[:page_size][::-1], earlier_cursor=earlier)
