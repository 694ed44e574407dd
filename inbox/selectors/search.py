"""The message text index, one per database back-end, behind two questions: how many
messages contain these words, and which conversations have one?

SQLite uses an FTS5 table (`inbox_message_fts`, migration 0002_inbox_ui) kept in sync with
`inbox_message` by triggers; PostgreSQL a GIN index over the stored column
`inbox_message.search_vector` (migration 0003_search_vector). Both fold case and accents, so
`acao` finds `ação`, and treat every word of three letters or more as a prefix, so results
appear while the agent is still typing.

A search is answered in one of two ways, chosen by how many messages match (`is_broad`):

- narrow (fewer than BROAD_HITS messages): the index lists the matching conversations, and
  the list is those, newest activity first. Cost grows with the matches, which are few.
- broad: listing every match costs too much (a common word is in a hundred thousand of a
  million messages), so the list walks the conversations newest activity first and keeps
  those with a matching message (`conversation_has_match_sql`), stopping at a page. Cost
  grows with the page, and a common word fills it quickly.

Neither plan is left to the databases' planners: PostgreSQL guesses thousands of matches
for a word it has never seen, and walks all 100,000 conversations to find none.
"""

import re
from dataclasses import dataclass

from django.db import connection
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from inbox.models import Conversation

# Letters and digits only: punctuation and the index's operators never reach the query
# language, so no input can make the MATCH/to_tsquery syntax fail.
_WORD = re.compile(r"[^\W_]+")
MAX_TERMS = 8
MAX_TERM_LENGTH = 64

# Shorter words are matched whole: as prefixes, one or two letters match nearly every
# message, and the search would cost a scan of the index.
MIN_PREFIX_LENGTH = 3

# From this many matching messages a search walks the list instead of listing the matches.
BROAD_HITS = 2000


def search_terms(q: str) -> list[str]:
    """The words of an agent's query, as the index will look for them (all of them)."""
    return [word[:MAX_TERM_LENGTH] for word in _WORD.findall(q)][:MAX_TERMS]


def _as_prefix(term: str) -> bool:
    return len(term) >= MIN_PREFIX_LENGTH


def _query(terms: list[str]) -> str:
    """The index's query for messages containing every term."""
    if connection.vendor == "postgresql":
        return " & ".join(term + (":*" if _as_prefix(term) else "") for term in terms)
    return " ".join(f'"{term}"' + ("*" if _as_prefix(term) else "") for term in terms)


def _matching_messages_sql() -> str:
    """SQL for the messages matching the query in %s: rowids on SQLite, rows on PostgreSQL."""
    if connection.vendor == "postgresql":
        return (
            "SELECT conversation_id FROM inbox_message "
            "WHERE search_vector @@ to_tsquery('simple'::regconfig, inbox_unaccent(%s))"
        )
    return "SELECT rowid FROM inbox_message_fts WHERE inbox_message_fts MATCH %s"


def _is_broad(terms: list[str]) -> bool:
    """Whether at least BROAD_HITS messages match: counted by the index, and only that far."""
    sql = f"SELECT COUNT(*) FROM ({_matching_messages_sql()} LIMIT %s) AS hits"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [_query(terms), BROAD_HITS])
        return cursor.fetchone()[0] >= BROAD_HITS


@dataclass(frozen=True)
class Plan:
    """A search, ready to narrow the list: its words and how to look for them."""

    terms: list[str]
    broad: bool


def plan(q: str) -> Plan | None:
    """The plan for an agent's query (one query to the index), or None when it has no words
    and narrows nothing."""
    terms = search_terms(q)
    return Plan(terms=terms, broad=_is_broad(terms)) if terms else None


def conversation_in_matches_sql(terms: list[str], table: str) -> tuple[str, list[str]]:
    """A condition on each row of `table` (inbox_conversation): it is among the
    conversations of the matching messages, gathered once from the index."""
    if connection.vendor == "postgresql":
        # ARRAY(...) makes PostgreSQL gather the matches first. Given `IN (subquery)`, it
        # guesses thousands of matches for a rare word and walks the conversations
        # instead: 650 ms to find none among 100,000.
        return (
            f'"{table}"."id" = ANY(ARRAY({_matching_messages_sql()}))',
            [_query(terms)],
        )
    return (
        f'"{table}"."id" IN (SELECT conversation_id FROM inbox_message_fts '  # noqa: S608
        "WHERE inbox_message_fts MATCH %s)",
        [_query(terms)],
    )


def newest_matches_sql(terms: list[str], limit: int) -> tuple[str, list]:
    """SQLite: SQL selecting the conversation ids of the newest `limit` matching messages
    (FTS5 reads its matches in rowid order, so the newest come first at no cost)."""
    return (
        "SELECT conversation_id FROM inbox_message_fts WHERE inbox_message_fts MATCH %s "
        "ORDER BY rowid DESC LIMIT %s",
        [_query(terms), int(limit)],
    )


def conversation_has_match_sql(terms: list[str], table: str) -> tuple[str, list[str]]:
    """A condition on each row of `table` (inbox_conversation): it has a message containing
    every term. Checked through the thread index, conversation by conversation.

    Only table names from the code are formatted into these SQL strings; the agent's words
    are always a bound parameter."""
    if connection.vendor == "postgresql":
        return (
            f'EXISTS (SELECT 1 FROM inbox_message AS m WHERE m.conversation_id = "{table}"."id" '  # noqa: S608
            "AND m.search_vector @@ to_tsquery('simple'::regconfig, inbox_unaccent(%s)))",
            [_query(terms)],
        )
    # The matching rowids are gathered once into a temporary index, and each conversation's
    # messages are looked up in it. The unary + keeps SQLite from the opposite plan, which
    # looks up every matching rowid in every conversation.
    return (
        f'EXISTS (SELECT 1 FROM inbox_message AS m WHERE m.conversation_id = "{table}"."id" '  # noqa: S608
        f"AND +m.rowid IN ({_matching_messages_sql()}))",
        [_query(terms)],
    )


def contact_matches_sql(terms: list[str], table: str) -> tuple[str, list[str]]:
    """A condition on each row of `table` (inbox_conversation): its contact's name (folded as
    the index folds) or phone contains every term (README, "Triage"). Contacts have no text
    index: one pass over them, a few thousand rows per ms."""
    # Imported here: services import the selectors.
    from inbox.services.contacts import name_fold

    each = " AND ".join(["(c.name_folded LIKE %s OR c.phone LIKE %s)"] * len(terms))
    params: list[str] = []
    for term in terms:
        params += [f"%{name_fold(term)}%", f"%{term}%"]
    return (
        f'"{table}"."contact_id" IN (SELECT c.id FROM inbox_contact AS c WHERE {each})',  # noqa: S608
        params,
    )


def match_sql(plan: Plan, table: str) -> tuple[str, list[str]]:
    """The plan's condition on `table`'s rows: a message, or the contact, matches."""
    if plan.broad:
        sql, params = conversation_has_match_sql(plan.terms, table)
    else:
        sql, params = conversation_in_matches_sql(plan.terms, table)
    contact_sql, contact_params = contact_matches_sql(plan.terms, table)
    return f"({sql} OR {contact_sql})", [*params, *contact_params]


def narrow(queryset: QuerySet[Conversation], plan: Plan | None) -> QuerySet[Conversation]:
    """Narrow to conversations with a message containing every word searched for (through
    the text index), or whose contact's name or phone does; no plan narrows nothing."""
    if plan is None:
        return queryset
    # The SQL is fixed text; the agent's words travel only as bound parameters.
    sql, params = match_sql(plan, Conversation._meta.db_table)
    return queryset.filter(RawSQL(sql, params, output_field=BooleanField()))  # noqa: S611
