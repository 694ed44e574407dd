"""A conversation's messages: the whole thread, or one keyset window of it (the latest, the
ones before or after a cursor, or those around a message a search found).

A window carries the internal notes of its stretch of time (README, "Triage"): each note
belongs to the window of the newest message at or before it (the first window when it is
older than every message), so paging either way shows every note once."""

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from django.db.models import Q, QuerySet

from inbox.models import Message, Note
from inbox.selectors.cursors import cursor_decode, cursor_encode

PAGE_SIZE = 50


@dataclass(frozen=True)
class ThreadPage:
    messages: list[Message]  # oldest first, as the thread reads
    earlier_cursor: str | None  # the page before these, or None at the thread's start
    later_cursor: str | None = None  # the page after these, or None at the thread's end
    notes: list[Note] = field(default_factory=list)  # this window's, oldest first

    @property
    def entries(self) -> list[Message | Note]:
        """Messages and notes in one time order, as the thread shows them; a note written
        at a message's very time comes after it."""
        entries: list[Message | Note] = [*self.messages, *self.notes]
        entries.sort(key=lambda entry: (entry.timestamp, entry.is_note))
        return entries


def _notes(conversation_id: UUID, since: datetime | None, until: datetime | None) -> list[Note]:
    """The notes from `since` (inclusive) up to `until` (exclusive), None being open."""
    queryset = Note.objects.filter(conversation_id=conversation_id).select_related("author")
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    if until is not None:
        queryset = queryset.filter(created_at__lt=until)
    return list(queryset.order_by("created_at", "id"))


def _window(
    conversation_id: UUID,
    messages: list[Message],
    *,
    earlier: str | None,
    later: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> ThreadPage:
    """A window of messages with its notes: from its first message when there are earlier
    ones (`since` overrides), up to `until` (the next window's first message)."""
    if since is None and (earlier is not None) and messages:
        since = messages[0].timestamp
    return ThreadPage(
        messages=messages,
        earlier_cursor=earlier,
        later_cursor=later,
        notes=_notes(conversation_id, since, until),
    )


def thread_messages(*, conversation_id: UUID) -> QuerySet[Message]:
    """A whole thread in time order (id breaks ties, so the order is total)."""
    # The replying agent in the same query: every message shows who sent it.
    return (
        Message.objects.filter(conversation_id=conversation_id)
        .select_related("sent_by")
        .order_by("timestamp", "id")
    )


def thread_notes(*, conversation_id: UUID) -> list[Note]:
    """A whole thread's internal notes, oldest first."""
    return _notes(conversation_id, None, None)


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
) -> tuple[list[Message], str | None, datetime | None]:
    """Up to `size` messages after `position`, oldest first, the cursor of the page after
    them (None at the thread's end), and when that page's first message is."""
    queryset = _thread(conversation_id).filter(_after(*position))
    rows = list(queryset.order_by("timestamp", "id")[: size + 1])
    later = following = None
    if len(rows) > size:
        newest = rows[size - 1]
        later = cursor_encode(newest.timestamp, newest.id)
        following = rows[size].timestamp
    return rows[:size], later, following


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
        position = cursor_decode(after)
        messages, later, following = _later(conversation_id, position, page_size)
        # The window before this one holds the notes up to this one's first message.
        since = messages[0].timestamp if messages else position[0]
        return _window(
            conversation_id, messages, earlier=None, later=later, since=since, until=following
        )
    position = cursor_decode(before) if before else None
    messages, earlier = _earlier(conversation_id, position, page_size)
    # The window after this one (already shown) holds the notes from its first message on.
    until = position[0] if position is not None else None
    return _window(conversation_id, messages, earlier=earlier, until=until)


def thread_around(
    *, conversation_id: UUID, message_id: UUID, page_size: int = PAGE_SIZE
) -> ThreadPage | None:
    """The window of a thread around one of its messages (a search's match): half a page
    up to it, half after, each end with its cursor to page on. None when the thread has no
    such message. Four queries, keyset both ways, and the notes'."""
    anchor = (
        Message.objects.filter(conversation_id=conversation_id, pk=message_id)
        .values_list("timestamp", "id")
        .first()
    )
    if anchor is None:
        return None
    half = page_size // 2
    earlier_messages, earlier = _earlier(conversation_id, anchor, half + 1, inclusive=True)
    later_messages, later, following = _later(conversation_id, anchor, page_size - half - 1)
    return _window(
        conversation_id,
        earlier_messages + later_messages,
        earlier=earlier,
        later=later,
        until=following,
    )
