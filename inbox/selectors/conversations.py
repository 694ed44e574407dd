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
    sort: str = "activity",
    assignee: str | None = None,
    page_size: int = PAGE_SIZE,
) -> Page:
    """Conversations, newest activity first, one keyset page at a time.

    Keyset (not offset) paging keeps every page as cheap as the first, and a row that
    moves to the top while an agent scrolls is not shown twice on later pages. `q` keeps
    the conversations with a message containing all its words (accents and case ignored).
    `sort="waiting"`: the open conversations waiting for us, longest-waiting first.
    """
    return _page(status=status, cursor=cursor, plan=search.plan(q), page_size=page_size, sort=sort)


def conversation_list_counted(
    *,
    status: str | None = None,
    q: str = "",
    sort: str = "activity",
    assignee: str | None = None,
    agent_id: int | None = None,
) -> CountedPage:
    """conversation_list's first page and conversation_counts, asking the index how to
    search only once for both."""
    plan = search.plan(q)
    return CountedPage(
        page=_page(
            status=status,
            cursor=None,
            plan=plan,
            page_size=PAGE_SIZE,
            sort=sort,
            assignee=assignee,
        ),
        counts=counts_for_plan(plan, agent_id=agent_id),
    )


def _page(
    *,
    status: str | None,
    cursor: str | None,
    plan: search.Plan | None,
    page_size: int,
    sort: str = "activity",
    assignee: str | None = None,
) -> Page:
    queryset: QuerySet[Conversation] = Conversation.objects.select_related(
        "last_message", "contact", "assignee"
    )
    if status is not None:
        queryset = queryset.filter(status=status)
    if assignee == "":
        queryset = queryset.filter(assignee__isnull=True)
    elif assignee is not None:
        queryset = queryset.filter(assignee__username=assignee)
    queryset = search.narrow(queryset, plan)
    if sort == "waiting":
        return _waiting_page(queryset, cursor=cursor, page_size=page_size)
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
    return Page(conversations=rows[:page_size], next_cursor=next_cursor)


def _waiting_page(queryset: QuerySet[Conversation], *, cursor: str | None, page_size: int) -> Page:
    """The open conversations waiting for us, longest-waiting first: keyset on the partial
    index `conversation_waiting`, as the default order is on its own."""
    queryset = queryset.filter(status=Conversation.Status.OPEN, waiting_since__isnull=False)
    if cursor:
        when, ident = cursor_decode(cursor)
        queryset = queryset.filter(Q(waiting_since__gt=when) | Q(waiting_since=when, id__gt=ident))
    rows = list(queryset.order_by("waiting_since", "id")[: page_size + 1])
    next_cursor = None
    if len(rows) > page_size:
        last = rows[page_size - 1]
        next_cursor = cursor_encode(last.waiting_since, last.id)
    return Page(conversations=rows[:page_size], next_cursor=next_cursor)


def conversation_matches(*, conversation_id: UUID, q: str) -> bool:
    """Whether this conversation belongs in the list of an agent searching for `q`: the
    same index and rules as the list's search. Every conversation matches an empty query."""
    terms = search.search_terms(q)
    # One conversation: checking its own messages beats listing every match.
    plan = search.Plan(terms=terms, broad=True) if terms else None
    return search.narrow(Conversation.objects.filter(pk=conversation_id), plan).exists()


def conversation_get(*, conversation_id: UUID) -> Conversation | None:
    return (
        Conversation.objects.select_related("last_message", "contact", "assignee")
        .filter(pk=conversation_id)
        .first()
    )


def conversations_get(*, conversation_ids: Iterable[UUID]) -> dict[UUID, Conversation]:
    """`conversation_get` for many at once, in one query: those that exist, by id."""
    return Conversation.objects.select_related("last_message", "contact", "assignee").in_bulk(
        list(conversation_ids)
    )
