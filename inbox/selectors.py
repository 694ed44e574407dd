"""Every read the views and the API need, each a bounded number of queries."""

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db.models import Q, QuerySet

from inbox.models import Conversation, Message

PAGE_SIZE = 50


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True)
class Page:
    conversations: list[Conversation]
    next_cursor: str | None


def cursor_encode(conversation: Conversation) -> str:
    raw = f"{conversation.last_activity_at.isoformat()}|{conversation.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


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


def conversation_list(
    *, status: str | None = None, cursor: str | None = None, page_size: int = PAGE_SIZE
) -> Page:
    """Conversations, newest activity first, one keyset page at a time.

    Keyset (not offset) paging keeps every page as cheap as the first, and a row that
    moves to the top while an agent scrolls is not shown twice on later pages.
    """
    queryset: QuerySet[Conversation] = Conversation.objects.select_related("last_message")
    if status is not None:
        queryset = queryset.filter(status=status)
    if cursor:
        when, ident = cursor_decode(cursor)
        queryset = queryset.filter(
            Q(last_activity_at__lt=when) | Q(last_activity_at=when, id__lt=ident)
        )
    rows = list(queryset.order_by("-last_activity_at", "-id")[: page_size + 1])
    next_cursor = cursor_encode(rows[page_size - 1]) if len(rows) > page_size else None
    return Page(conversations=rows[:page_size], next_cursor=next_cursor)


def conversation_get(*, conversation_id: UUID) -> Conversation | None:
    return Conversation.objects.filter(pk=conversation_id).first()


def thread_messages(*, conversation_id: UUID) -> QuerySet[Message]:
    """A whole thread in time order (id breaks ties, so the order is total)."""
    return Message.objects.filter(conversation_id=conversation_id).order_by("timestamp", "id")


def conversation_matches(*, conversation_id: UUID, q: str) -> bool:
    """Whether a conversation has a message whose content contains `q`.

    A plain scan, enough for the live inbox to honour a page's search; issue 6's full-text
    index replaces this at merge with the same signature.
    """
    return Message.objects.filter(conversation_id=conversation_id, content__icontains=q).exists()
