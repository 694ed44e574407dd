"""How many conversations each filter tab holds, with or without a search."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count, QuerySet
from django.db.models.expressions import RawSQL

from inbox.models import Conversation
from inbox.selectors import search


@dataclass(frozen=True)
class TabCounts:
    """How many conversations each filter tab holds. While searching, a count stops at
    SEARCH_COUNT_LIMIT: `capped` names the tabs holding more (shown as "100+")."""

    open: int
    closed: int
    capped: frozenset[str] = frozenset()
    # Open conversations waiting for an answer, the agent's own open ones and nobody's
    # (README, "Triage"); None while searching.
    waiting: int | None = None
    mine: int | None = None
    unassigned: int | None = None
    # Every agent's open conversations, by user id, for the pushed counts: each agent's page
    # gets its own Mine from the one push to all (inbox/consumers.py). Empty while searching.
    by_assignee: Mapping[int, int] = field(default_factory=dict, compare=False)

    @property
    def all(self) -> int:
        return self.open + self.closed

    def label(self, tab: str) -> str:
        count = getattr(self, tab)
        if count is None:
            return ""
        capped = tab in self.capped or (tab == "all" and bool(self.capped))
        return f"{count}+" if capped else str(count)


# While searching, the tabs count matching conversations up to this many each: exact counts
# of a common word cost a pass over every match (see inbox/selectors/search.py).
SEARCH_COUNT_LIMIT = 100


def conversation_counts(*, q: str = "", agent_id: int | None = None) -> TabCounts:
    """How many conversations each filter tab holds, in one aggregate query (a search for a
    common word on SQLite may read a sample of its newest matches first); Mine is agent
    `agent_id`'s."""
    return counts_for_plan(search.plan(q), agent_id=agent_id)


def counts_for_plan(plan: search.Plan | None, *, agent_id: int | None = None) -> TabCounts:
    """conversation_counts for a search already planned (by conversation_list_counted)."""
    if plan is None:
        return _all_counts(agent_id)
    if plan.broad:
        return _search_counts_capped(plan.terms)
    return _capped(_count_by_state(search.narrow(Conversation.objects.all(), plan)))


def _by_state(rows: Iterable[tuple[str, int]]) -> dict[str, int]:
    """(status, count) rows as the tabs' counts; a state with no row has none."""
    counted = dict(rows)
    return {
        "open": counted.get(Conversation.Status.OPEN, 0),
        "closed": counted.get(Conversation.Status.CLOSED, 0),
    }


def _count_by_state(queryset: QuerySet[Conversation]) -> dict[str, int]:
    return _by_state(queryset.order_by().values_list("status").annotate(n=Count("*")))


def _all_counts(agent_id: int | None) -> TabCounts:
    """Every conversation by state, from the table the database keeps by trigger
    (migration 0004_conversation_counts): two rows, whatever the number of conversations."""
    # With the waiting ones, counted on their partial index (conversation_waiting), which
    # holds only those: in the same query, so a page pays no extra round trip.
    # Mine and Unassigned from inbox_assignee_count, kept by trigger too (0009_triage;
    # assignee 0 is nobody).
    # Every assignee's row, not only this agent's: a team is tens of agents, and the live
    # push reads them all in this one query to give each page its own Mine.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, 0, n FROM inbox_conversation_count UNION ALL "
            "SELECT 'WAITING', 0, COUNT(*) FROM inbox_conversation "
            "WHERE status = 'OPEN' AND waiting_since IS NOT NULL UNION ALL "
            "SELECT 'ASSIGNEE', assignee_id, n FROM inbox_assignee_count"
        )
        rows = cursor.fetchall()
    by_assignee = {assignee: n for kind, assignee, n in rows if kind == "ASSIGNEE"}
    waiting = next(n for kind, _, n in rows if kind == "WAITING")
    return TabCounts(
        **_by_state((kind, n) for kind, _, n in rows if kind not in ("WAITING", "ASSIGNEE")),
        waiting=waiting,
        mine=by_assignee.get(agent_id, 0) if agent_id else 0,
        unassigned=by_assignee.get(0, 0),
        by_assignee={assignee: n for assignee, n in by_assignee.items() if assignee},
    )


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
    condition, params = search.match_sql(search.Plan(terms=terms, broad=True), table)
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
