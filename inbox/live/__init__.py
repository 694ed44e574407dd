"""The live layer: what a committed write pushes to the agents' pages, and how.

- groups.py: the groups' names and which of them have a socket (who listens).
- fragments.py: the fragments, rendered from the page's partials (no sending).
- publish.py: `Change`, one batch per transaction after it commits, and the sender that
  numbers the batches and gets them out without ever holding a request.
- presence.py: who else views a thread and who types in it (ephemeral; the consumer
  sends and receives it).
- notify.py: a worker's changes handed to the server when the channel layer is in-process.

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
    note_event,
    presence_html,
    row_event,
    row_for,
    row_unread,
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
    note_added,
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
    "note_added",
    "note_event",
    "presence_html",
    "publish",
    "render",
    "row_event",
    "row_for",
    "row_unread",
    "session_ended",
    "session_group",
    "user_group",
    "wait_until_sent",
]
