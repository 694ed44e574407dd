"""Conversations: the list (keyset pages, filtered and searched), one conversation, and
whether one belongs in a searched list."""

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from django.db.models import Q, QuerySet

from inbox.models import Conversation
from inbox.selectors import search
from inbox.selectors.counts import TabCounts, counts_for_plan
from inbox.selectors.cursors import cursor_decode, cursor_encode

PAGE_SIZE = 50


@dataclass(frozen=True)
class Page:
    conversations: list[Conversation]
    next_cursor: str | None


@dataclass(frozen=True)
class CountedPage:
    """The list's first page and the filter tabs' counts, for the same search."""

    page: Page
    counts: TabCounts


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
    return _page(status=status, cursor=cursor, plan=search.plan(q), page_size=page_size)


def conversation_list_counted(*, status: str | None = None, q: str = "") -> CountedPage:
    """conversation_list's first page and conversation_counts, asking the index how to
    search only once for both."""
    plan = search.plan(q)
    return CountedPage(
        page=_page(status=status, cursor=None, plan=plan, page_size=PAGE_SIZE),
        counts=counts_for_plan(plan),
    )


def _page(
    *, status: str | None, cursor: str | None, plan: search.Plan | None, page_size: int
) -> Page:
    queryset: QuerySet[Conversation] = Conversation.objects.select_related("last_message")
    if status is not None:
        queryset = queryset.filter(status=status)
    queryset = search.narrow(queryset, plan)
    if cursor:
        when, ident = cursor_decode(cursor)
        queryset = queryset.filter(
            Q(last_activity_at__lt=when) | Q(last_activity_at=when, id__lt=ident)
        )
    rows = list(queryset.order_by("-last_activity_at", "-id")[: page_size + 1])
    next_cursor = None
    if len(rows) > page_size:
        last = rows[page_size - 1]
        next_cursor = cursor_encode(last.last_activity_at, last.id)
    conversations = rows[:page_size]
    if plan is not None:
        # Why each row is listed: its newest matching message, shown instead of the latest
        # and opened at (one more query for the page).
        hits = search.newest_matches(plan=plan, conversation_ids=[c.id for c in conversations])
        for conversation in conversations:
            conversation.search_hit = hits.get(conversation.id)
    return Page(conversations=conversations, next_cursor=next_cursor)


def conversation_matches(*, conversation_id: UUID, q: str) -> bool:
    """Whether this conversation belongs in the list of an agent searching for `q`: the
    same index and rules as the list's search. Every conversation matches an empty query."""
    terms = search.search_terms(q)
    # One conversation: checking its own messages beats listing every match.
    plan = search.Plan(terms=terms, broad=True) if terms else None
    return search.narrow(Conversation.objects.filter(pk=conversation_id), plan).exists()


def conversation_get(*, conversation_id: UUID) -> Conversation | None:
    return Conversation.objects.select_related("last_message").filter(pk=conversation_id).first()


def conversations_get(*, conversation_ids: Iterable[UUID]) -> dict[UUID, Conversation]:
    """`conversation_get` for many at once, in one query: those that exist, by id."""
    return Conversation.objects.select_related("last_message").in_bulk(list(conversation_ids))
