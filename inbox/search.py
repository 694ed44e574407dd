"""The message text index, one per database back-end, behind one question: which messages
contain these words?

SQLite uses an FTS5 table (`inbox_message_fts`) kept in sync with `inbox_message` by
triggers; PostgreSQL a GIN full-text index over `inbox_unaccent(content)`. Both are created
by migration 0002_inbox_ui. Both fold case and accents, so `acao` finds `ação`, and treat
every word of three letters or more as a prefix, so results appear while the agent is
still typing.
"""

import re

from django.db import connection

# Letters and digits only: punctuation and the index's operators never reach the query
# language, so no input can make the MATCH/to_tsquery syntax fail.
_WORD = re.compile(r"[^\W_]+")
MAX_TERMS = 8
MAX_TERM_LENGTH = 64


# Shorter words are matched whole: as prefixes, one or two letters match nearly every
# message, and the search would cost a scan of the index.
MIN_PREFIX_LENGTH = 3


def search_terms(q: str) -> list[str]:
    """The words of an agent's query, as the index will look for them (all of them)."""
    return [word[:MAX_TERM_LENGTH] for word in _WORD.findall(q)][:MAX_TERMS]


def _as_prefix(term: str) -> bool:
    return len(term) >= MIN_PREFIX_LENGTH


def matching_conversation_ids_sql(terms: list[str]) -> tuple[str, list[str]]:
    """SQL selecting the ids of conversations with a message containing every term."""
    if connection.vendor == "postgresql":
        return (
            "SELECT conversation_id FROM inbox_message WHERE "
            "to_tsvector('simple'::regconfig, inbox_unaccent(content)) "
            "@@ to_tsquery('simple'::regconfig, inbox_unaccent(%s))",
            [" & ".join(term + (":*" if _as_prefix(term) else "") for term in terms)],
        )
    return (
        "SELECT conversation_id FROM inbox_message_fts WHERE inbox_message_fts MATCH %s",
        [" ".join(f'"{term}"' + ("*" if _as_prefix(term) else "") for term in terms)],
    )
