"""Every read the views, the API and the socket need, each a bounded number of queries.

conversations.py (the list, one conversation), threads.py (messages), counts.py (the filter
tabs), search.py (the text index), cursors.py (keyset positions). Callers import from here.
"""

from inbox.selectors.conversations import (
    CountedPage,
    Page,
    conversation_get,
    conversation_list,
    conversation_list_counted,
    conversation_matches,
    conversations_get,
    conversations_seen,
)
from inbox.selectors.counts import TabCounts, conversation_counts
from inbox.selectors.cursors import InvalidCursor, cursor_decode, cursor_encode
from inbox.selectors.threads import (
    ThreadPage,
    thread_around,
    thread_messages,
    thread_notes,
    thread_page,
)
from inbox.selectors.whatsapp import whatsapp_templates, whatsapp_window_closes

__all__ = [
    "CountedPage",
    "InvalidCursor",
    "Page",
    "TabCounts",
    "ThreadPage",
    "conversation_counts",
    "conversation_get",
    "conversation_list",
    "conversation_list_counted",
    "conversation_matches",
    "conversations_get",
    "conversations_seen",
    "cursor_decode",
    "cursor_encode",
    "thread_around",
    "thread_messages",
    "thread_notes",
    "thread_page",
    "whatsapp_templates",
    "whatsapp_window_closes",
]
