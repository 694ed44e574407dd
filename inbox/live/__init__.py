"""The live layer: what a committed write pushes to the agents' pages, and how.

- groups.py: the groups' names and which of them have a socket (who listens).
- fragments.py: the fragments, rendered from the page's partials (no sending).
- publish.py: `Change`, one batch per transaction after it commits, and the sender that
  numbers the batches and gets them out without ever holding a request.

The rest of the app calls the names below (`live.message_added(...)`), never the modules.
"""

from inbox.live.fragments import (
    MAX_FRAME_BYTES,
    REFETCH_MARKER,
    bubble_event,
    count_html,
    counts_event,
    counts_html,
    header_event,
    row_event,
)
from inbox.live.groups import (
    AGENTS_GROUP,
    conversation_group,
    listened,
    session_group,
    user_group,
)
from inbox.live.publish import (
    BATCH,
    SYNC,
    Change,
    account_changed,
    conversation_changed,
    conversation_updated,
    message_added,
    publish,
    render,
    session_ended,
    wait_until_sent,
)

__all__ = [
    "AGENTS_GROUP",
    "BATCH",
    "MAX_FRAME_BYTES",
    "REFETCH_MARKER",
    "SYNC",
    "Change",
    "account_changed",
    "bubble_event",
    "conversation_changed",
    "conversation_group",
    "conversation_updated",
    "count_html",
    "counts_event",
    "counts_html",
    "header_event",
    "listened",
    "message_added",
    "publish",
    "render",
    "row_event",
    "session_ended",
    "session_group",
    "user_group",
    "wait_until_sent",
]
