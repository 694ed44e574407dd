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
from uuid import UUID

from django.db import connection
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from inbox.models import Conversation, Message

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


# A search's matching contacts are listed when it is planned, up to this many, and the list
# names them. Asked inside the list's condition instead (an OR with a subquery), the contacts
# were read once per condition, and PostgreSQL, unable to join under the OR, hashed every
# message of a common word first: 540 ms for "premium" at 100,000 conversations, against
# 75 ms without contacts. More than this many, and the condition asks the contacts itself.
MAX_CONTACT_HITS = 100


@dataclass(frozen=True)
class Plan:
    """A search, ready to narrow the list: its words and how to look for them."""

    terms: list[str]
    broad: bool
    # The ids of the contacts whose name or phone holds every word; None when they were not
    # listed (more than MAX_CONTACT_HITS, or a plan made without asking): then the list's
    # condition asks the contacts itself.
    contacts: tuple[int, ...] | None = None


def _survey(terms: list[str]) -> Plan:
    """The plan, in one query: whether at least BROAD_HITS messages match (counted by the
    index, and only that far), and which contacts do."""
    contacts_sql, contacts_params = _contacts_sql(terms)
    hits = f"(SELECT COUNT(*) FROM ({_matching_messages_sql()} LIMIT %s) AS hits)"  # noqa: S608
    if connection.vendor == "postgresql":
        listed = f"ARRAY({contacts_sql} LIMIT %s)"
    else:
        listed = f"(SELECT group_concat(id) FROM ({contacts_sql} LIMIT %s))"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {hits}, {listed}",
            [_query(terms), BROAD_HITS, *contacts_params, MAX_CONTACT_HITS + 1],
        )
        count, found = cursor.fetchone()
    if isinstance(found, str):
        found = [int(ident) for ident in found.split(",")]
    ids = tuple(found or ())
    return Plan(
        terms=terms,
        broad=count >= BROAD_HITS,
        contacts=ids if len(ids) <= MAX_CONTACT_HITS else None,
    )


def plan(q: str) -> Plan | None:
    """The plan for an agent's query (one query to the index and the contacts), or None when
    it has no words and narrows nothing."""
    terms = search_terms(q)
    return _survey(terms) if terms else None


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


def conversation_has_match_sql(
    terms: list[str], table: str, *, fenced: bool = False
) -> tuple[str, list[str]]:
    """A condition on each row of `table` (inbox_conversation): it has a message containing
    every term. Checked through the thread index, conversation by conversation.

    `fenced` (PostgreSQL, a condition under an OR): OFFSET 0 keeps the planner from turning
    the EXISTS into a hash of every matching message, which it does when it cannot join.

    Only table names from the code are formatted into these SQL strings; the agent's words
    are always a bound parameter."""
    if connection.vendor == "postgresql":
        return (
            f'EXISTS (SELECT 1 FROM inbox_message AS m WHERE m.conversation_id = "{table}"."id" '  # noqa: S608
            "AND m.search_vector @@ to_tsquery('simple'::regconfig, inbox_unaccent(%s))"
            f"{' OFFSET 0' if fenced else ''})",
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


def _contacts_sql(terms: list[str]) -> tuple[str, list[str]]:
    """SQL selecting the ids of the contacts whose name (folded as the index folds) or phone
    contains every term (README, "Triage"). Contacts have no text index: one pass over them,
    a few thousand rows per ms."""
    # Imported here: services import the selectors.
    from inbox.services.contacts import name_fold

    each = " AND ".join(["(c.name_folded LIKE %s OR c.phone LIKE %s)"] * len(terms))
    params: list[str] = []
    for term in terms:
        params += [f"%{name_fold(term)}%", f"%{term}%"]
    return f"SELECT c.id FROM inbox_contact AS c WHERE {each}", params  # noqa: S608


def contact_matches_sql(
    terms: list[str], table: str, contacts: tuple[int, ...] | None = None
) -> tuple[str, list] | None:
    """A condition on each row of `table` (inbox_conversation): its contact is one of the
    plan's `contacts`, or, when they were not listed (None), one that matches the terms.
    None when the plan found no contact: nothing to add."""
    if contacts is None:
        sql, params = _contacts_sql(terms)
        return f'"{table}"."contact_id" IN ({sql})', params
    if not contacts:
        return None
    return f'"{table}"."contact_id" IN ({", ".join(["%s"] * len(contacts))})', list(contacts)


def match_sql(plan: Plan, table: str) -> tuple[str, list]:
    """The plan's condition on `table`'s rows: a message, or the contact, matches."""
    contact = contact_matches_sql(plan.terms, table, plan.contacts)
    if plan.broad:
        sql, params = conversation_has_match_sql(plan.terms, table, fenced=contact is not None)
    else:
        sql, params = conversation_in_matches_sql(plan.terms, table)
    if contact is None:
        return sql, params
    contact_sql, contact_params = contact
    return f"({sql} OR {contact_sql})", [*params, *contact_params]


def narrow(queryset: QuerySet[Conversation], plan: Plan | None) -> QuerySet[Conversation]:
    """Narrow to conversations with a message containing every word searched for (through
    the text index), or whose contact's name or phone does; no plan narrows nothing."""
    if plan is None:
        return queryset
    # The SQL is fixed text; the agent's words travel only as bound parameters.
    sql, params = match_sql(plan, Conversation._meta.db_table)
    return queryset.filter(RawSQL(sql, params, output_field=BooleanField()))  # noqa: S611


def _message_matches_sql(plan: Plan, alias: str) -> tuple[str, list[str]]:
    """A condition on each row of `alias` (inbox_message): it contains every term, checked
    as a conversation is walked newest first (a broad plan: a common word is met soon)."""
    query = _query(plan.terms)
    if connection.vendor == "postgresql":
        # COALESCE keeps the GIN index out of the walk: listing 145,000 matches to find one
        # per conversation is the cost the walk avoids.
        return (
            f"COALESCE({alias}.search_vector @@ to_tsquery('simple'::regconfig, "
            "inbox_unaccent(%s)), false)",
            [query],
        )
    # The matching rowids gathered once per query into a temporary index, as the list's own
    # broad search does (conversation_has_match_sql). FTS5 asked about one rowid at a time
    # reads the whole of a common word's list each time: 9 s for a page.
    return (f"+{alias}.rowid IN ({_matching_messages_sql()})", [query])


def _ids_sql(conversation_ids: list[UUID]) -> tuple[str, list]:
    if connection.vendor == "postgresql":
        return "= ANY(%s)", [list(conversation_ids)]
    return "IN ({})".format(", ".join(["%s"] * len(conversation_ids))), [
        ident.hex for ident in conversation_ids
    ]


def newest_matches(*, plan: Plan, conversation_ids: list[UUID]) -> dict[UUID, Message]:
    """For each of these conversations (a page of the list), its newest message containing
    every term, by conversation id. One query either way:

    - narrow: the few matching messages (under BROAD_HITS) gathered from the index, kept if
      they are in these conversations, the newest of each chosen here;
    - broad: each conversation walked newest first on its thread index until a match.
    """
    if not conversation_ids:
        return {}
    ids_sql, ids = _ids_sql(conversation_ids)
    query = _query(plan.terms)
    # Only the code's SQL is formatted in; the words and the ids are bound parameters.
    if not plan.broad:
        if connection.vendor == "postgresql":
            matching = (
                "id = ANY(ARRAY(SELECT id FROM inbox_message WHERE search_vector @@ "
                "to_tsquery('simple'::regconfig, inbox_unaccent(%s))))"
            )
        else:
            matching = f"rowid IN ({_matching_messages_sql()})"
        sql = f"SELECT * FROM inbox_message WHERE {matching} AND conversation_id {ids_sql}"  # noqa: S608
        newest: dict[UUID, Message] = {}
        for message in Message.objects.raw(sql, [query, *ids]):
            known = newest.get(message.conversation_id)
            if known is None or (message.timestamp, message.id) > (known.timestamp, known.id):
                newest[message.conversation_id] = message
        return newest
    condition, params = _message_matches_sql(plan, "m")
    sql = (
        "SELECT * FROM inbox_message WHERE id IN (SELECT (SELECT m.id FROM inbox_message AS m "  # noqa: S608
        f"WHERE m.conversation_id = c.id AND {condition} ORDER BY m.timestamp DESC, m.id DESC "
        f"LIMIT 1) FROM inbox_conversation AS c WHERE c.id {ids_sql})"
    )
    found = Message.objects.raw(sql, [*params, *ids])
    return {message.conversation_id: message for message in found}
