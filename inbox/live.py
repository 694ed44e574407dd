"""What gets pushed after a commit: render each fragment once, send it to the groups showing it.

The services call these functions through `transaction.on_commit`, so nothing is pushed for a
write that rolls back, and every fragment is rendered from the committed state, with the same
`{% partialdef %}` the pages use. Two groups:

- `AGENTS_GROUP`: every agent's socket. Gets list rows; each consumer shows or hides a row
  according to the filter and search its page is looking at.
- `conversation_group(id)`: the sockets viewing that thread. Gets message bubbles and the
  thread's header, so traffic grows with what agents look at, not with everything that happens.

Every fragment is an out-of-band swap keyed by the contract's DOM ids, safe to apply twice:
an insert is always preceded by a delete of the same id. Each also carries `data-live-key` and
`data-live-version` (when its state was read) so the page drops a fragment older than one it
already applied, whatever order two processes' pushes arrive in.

A fragment is rendered only for a group with a socket in it: most threads have no viewer, and
with no agent online a webhook renders nothing.

The request only describes the change (`Change`) and hands it to the process's sender
(inbox/sender.py), which asks who listens, calls `render` for a whole tick of changes and
sends the messages, numbered so that a page learns when it missed one. A push that fails
(the channel layer's Redis is down or hung) never holds or fails the request: the write is
committed and the webhook must still answer 2xx.
"""

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer
from django.conf import settings
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.html import escape

from inbox import sender
from inbox.middleware import server_timezone
from inbox.models import Conversation, Message

logger = logging.getLogger(__name__)

AGENTS_GROUP = "inbox.agents"
TEMPLATE = "inbox/index.html"

# The largest frame a push may be. daphne (autobahn) refuses to send a message over its
# websocket_max_message_size of 1 MiB, and then closes the socket with 1011; a bubble is
# HTML-escaped (`<` becomes `&lt;`), so a message well inside the webhook's 1 MiB can
# render past it. Half of that leaves room for whatever wraps a frame.
MAX_FRAME_BYTES = 512 * 1024
# Sent instead of a fragment too big for a frame: the page refetches what it shows
# (static/inbox/live.js), which brings the message over HTTP, where size is no limit.
REFETCH_MARKER = "<!--live:refetch-->"

_ROOT_TAG = re.compile(r"^\s*<([a-zA-Z][\w-]*)")
_ROOT_ID = re.compile(r"^\s*<[a-zA-Z][\w-]*\b[^>]*?\sid=\"([^\"]+)\"")


def conversation_group(conversation_id: UUID | str) -> str:
    return f"inbox.conversation.{conversation_id}"


def session_group(session_key: str) -> str:
    """The sockets opened under one login session (session keys are [a-z0-9]+)."""
    return f"inbox.session.{session_key}"


def user_group(user_id: int | str) -> str:
    """The sockets opened by one agent, under any of its sessions."""
    return f"inbox.user.{user_id}"


def session_ended(session_key: str) -> None:
    """Close the sockets of a session that logged out or was deleted: they would go on
    receiving every conversation's pushes until their tabs closed. Other sessions of the
    agent keep theirs."""
    _sender.submit(Change(kind=Change.SESSION, groups=(session_group(session_key),)))


def account_changed(user_id: int | str) -> None:
    """Make every socket of an agent whose account changed (deactivated, a new password)
    check that its session still logs it in, and close itself if not (inbox/consumers.py)."""
    _sender.submit(Change(kind=Change.ACCOUNT, groups=(user_group(user_id),)))


def conversation_changed(conversation_id: UUID) -> None:
    """Push a conversation's row to every agent and its header to the thread's viewers.

    For writes that make the conversation the most recent activity: opened, closed, reopened.
    """
    _sender.submit(
        Change(
            kind=Change.CONVERSATION,
            groups=(AGENTS_GROUP, conversation_group(conversation_id)),
            conversation_id=conversation_id,
            version=_version(),
        )
    )


def message_added(message_id: UUID, conversation_id: UUID) -> None:
    """Push a new message: its bubble to the thread's viewers, its row to every agent.

    The row moves to the top only when this is the conversation's latest message; a late
    delivery of an old message updates the row where it is.
    """
    _sender.submit(
        Change(
            kind=Change.MESSAGE,
            groups=(conversation_group(conversation_id), AGENTS_GROUP),
            conversation_id=conversation_id,
            message_id=message_id,
            version=_version(),
        )
    )


def wait_until_sent(timeout: float = 10.0) -> bool:
    """Whether every push submitted so far has left this process (or was dropped)."""
    return _sender.wait_until_sent(timeout)


@dataclass(frozen=True)
class Change:
    """A committed write to push: what `render` turns into fragments, in the sender."""

    CONVERSATION: ClassVar[str] = "conversation"
    MESSAGE: ClassVar[str] = "message"
    SESSION: ClassVar[str] = "session"
    ACCOUNT: ClassVar[str] = "account"

    kind: str
    groups: tuple[str, ...]
    conversation_id: UUID | None = None
    message_id: UUID | None = None
    version: int = 0


def render(changes: Sequence[Change], listened: set[str]) -> dict[str, list[dict]]:
    """The messages for a tick's changes, by group, for the groups with a socket.

    Coalesced: a conversation that changed several times in the tick gets one row and one
    header, read once from the committed state (newer than any of the changes), with the
    newest version and every received message's marker. Each bubble is its own. Thread
    groups come first, so a thread's viewer gets the bubble before the row that counts it.
    """
    wanted = [c for c in changes if any(group in listened for group in c.groups)]
    conversation_ids = {c.conversation_id for c in wanted if c.conversation_id is not None}
    message_ids = {c.message_id for c in wanted if c.message_id is not None}
    conversations = (
        Conversation.objects.select_related("last_message").in_bulk(conversation_ids)
        if conversation_ids
        else {}
    )
    messages = Message.objects.in_bulk(message_ids) if message_ids else {}

    threads: dict[str, list[dict]] = {}
    rows: dict[UUID, dict] = {}  # by conversation, in the order of their last change
    headers: dict[UUID, int] = {}  # conversation -> newest version of a header change
    sessions: dict[str, list[dict]] = {}
    for change in wanted:
        if change.kind == Change.SESSION:
            sessions[change.groups[0]] = [{"type": "session.ended"}]
            continue
        if change.kind == Change.ACCOUNT:
            sessions[change.groups[0]] = [{"type": "session.check"}]
            continue
        conversation = conversations.get(change.conversation_id)
        message = messages.get(change.message_id) if change.message_id else None
        if conversation is None or (change.kind == Change.MESSAGE and message is None):
            continue
        thread = conversation_group(conversation.id)
        if message is not None and thread in listened:
            threads.setdefault(thread, []).append(bubble_event(message, version=change.version))
        if change.kind == Change.CONVERSATION and thread in listened:
            headers[conversation.id] = max(headers.get(conversation.id, 0), change.version)
        if AGENTS_GROUP in listened:
            row = rows.pop(conversation.id, {"version": 0, "to_top": False, "received": []})
            row["version"] = max(row["version"], change.version)
            row["to_top"] = row["to_top"] or (
                change.kind == Change.CONVERSATION or conversation.last_message_id == message.id
            )
            if message is not None and message.direction == "RECEIVED":
                row["received"].append(message.id)
            rows[conversation.id] = row

    out: dict[str, list[dict]] = {}
    for conversation_id, version in headers.items():
        header = header_event(conversations[conversation_id], version=version)
        if header["html"]:
            threads.setdefault(conversation_group(conversation_id), []).append(header)
    out.update(threads)
    if rows:
        out[AGENTS_GROUP] = [
            row_event(conversations[conversation_id], **row)
            for conversation_id, row in rows.items()
        ]
    out.update(sessions)
    return out


def _version() -> int:
    """Microseconds since the epoch (exact in a JavaScript number).

    Taken before the state is read, so a fragment never claims to be newer than what it shows.
    """
    return time.time_ns() // 1000


def row_event(
    conversation: Conversation, *, version: int, to_top: bool, received: Sequence[UUID] = ()
) -> dict:
    """The list-row message for the agents' group: both ways a consumer may apply it.

    `show` upserts the row (at the top of the list, or in place); `hide` removes it, for the
    sockets whose filter or search it does not match. A consumer sends exactly one of them.
    """
    dom_id = f"conversation-{conversation.id}"
    stamp = {"data-live-key": dom_id, "data-live-version": str(version)}
    delete = _element(dom_id, {"hx-swap-oob": "delete", **stamp})
    # An HTML comment is not swapped; the page counts each as a new received message.
    marker = "".join(f"<!--live:received {message_id}-->" for message_id in received)
    show = {}
    for language, row in _rendered("conversation-row", {"conversation": conversation}).items():
        if to_top:
            upsert = delete + _wrapper(
                {"hx-swap-oob": "afterbegin:#conversation-list", **stamp}, row
            )
        else:
            # In place: replaces the row where it is, and adds nothing if this page lacks it.
            upsert = _with_attributes(row, {"hx-swap-oob": "true", **stamp})
        show[language] = marker + upsert
    return {
        "type": "row.changed",
        "conversation_id": str(conversation.id),
        "status": conversation.status,
        "show": show,
        "hide": marker + delete,
    }


def _rendered(partial: str, context: dict) -> dict[str, str]:
    """A partial rendered once in each of the inbox's languages, keyed by language code.

    Rendered once per event, not per socket; each consumer forwards its agent's language.
    """
    rendered = {}
    for language, _name in settings.LANGUAGES:
        # In the server's zone, as a page with no `tz` cookie (the browser re-renders each
        # time in its own); a zone of ours, so a time at the calendar's edge cannot fail it.
        with translation.override(language), timezone.override(server_timezone()):
            rendered[language] = render_to_string(f"{TEMPLATE}#{partial}", context).strip()
    return rendered


def header_event(conversation: Conversation, *, version: int) -> dict:
    headers = _rendered("conversation-header", {"conversation": conversation})
    if any(_ROOT_ID.match(header) is None for header in headers.values()):
        # The header is swapped by its root element's id; without one it cannot be placed.
        logger.error("live: the conversation-header partial's root element has no id")
        return {"type": "fragment", "html": {}}
    stamp = {
        "data-live-key": f"header-{conversation.id}",
        "data-live-version": str(version),
        "hx-swap-oob": "true",
    }
    return {
        "type": "fragment",
        "html": {language: _with_attributes(h, stamp) for language, h in headers.items()},
    }


def bubble_event(message: Message, *, version: int) -> dict:
    """A message bubble, placed in timestamp order in the open thread."""
    dom_id = f"message-{message.id}"
    following = (
        Message.objects.filter(conversation_id=message.conversation_id)
        .filter(
            Q(timestamp__gt=message.timestamp) | Q(timestamp=message.timestamp, id__gt=message.id)
        )
        .order_by("timestamp", "id")
        .values_list("id", flat=True)
        .first()
    )
    stamp = {"data-live-key": dom_id, "data-live-version": str(version)}
    if following is None:
        placement = {"hx-swap-oob": "beforeend:#messages", **stamp}
    else:
        # Before the message that follows it; if this page does not have that one (yet), the
        # page appends it instead (live.js), which the later one will then follow.
        placement = {
            "hx-swap-oob": f"beforebegin:#message-{following}",
            "data-live-fallback": "#messages",
            **stamp,
        }
    delete = _element(dom_id, {"hx-swap-oob": "delete", **stamp})
    html = {
        language: delete + _wrapper(placement, bubble)
        for language, bubble in _rendered("message", {"message": message}).items()
    }
    return {"type": "fragment", "html": _fitting_a_frame(html)}


def _fitting_a_frame(html: dict[str, str]) -> dict[str, str]:
    """The fragments, or the refetch marker in their place when one would not fit a frame
    (MAX_FRAME_BYTES): the viewers stay connected and get the message by refetching."""
    if all(len(fragment.encode()) <= MAX_FRAME_BYTES for fragment in html.values()):
        return html
    return dict.fromkeys(html, REFETCH_MARKER)


def _attributes(attrs: dict[str, str]) -> str:
    return "".join(f' {name}="{escape(value)}"' for name, value in attrs.items())


def _element(dom_id: str, attrs: dict[str, str]) -> str:
    return f'<div id="{escape(dom_id)}"{_attributes(attrs)}></div>'


def _wrapper(attrs: dict[str, str], inner: str) -> str:
    # A non-outerHTML out-of-band swap inserts the wrapper's children, never the wrapper.
    return f"<div{_attributes(attrs)}>{inner}</div>"


def _with_attributes(fragment: str, attrs: dict[str, str]) -> str:
    """Add attributes to a fragment's root element, whose markup is the page's business."""
    return _ROOT_TAG.sub(lambda m: m.group(0) + _attributes(attrs), fragment, count=1)


def _listened(layer: BaseChannelLayer, groups: list[str]) -> set[str]:
    """The groups with a socket in them, asked from sync code (the sender asks it async)."""
    return async_to_sync(sender.listened)(layer, groups)


_sender = sender.Sender(render)
