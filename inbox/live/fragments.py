"""The fragments a push carries: rendered from the page's own partials, once per language.

Every fragment is an out-of-band swap keyed by the contract's DOM ids, safe to apply twice:
an insert is always preceded by a delete of the same id. Each also carries `data-live-key`
and `data-live-version` (when its state was read) so the page drops a fragment older than
one it already applied, whatever order two processes' pushes arrive in.

All of that markup is the templates' (templates/inbox/_pushed.html, and the `oob` and
`live_version` flags of the partials in inbox/index.html); this module only chooses which
fragment and gives it its context. Nothing here sends anything (publish.py does).
"""

from collections.abc import Iterable, Mapping, Sequence
from uuid import UUID

from django.conf import settings
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone, translation

from inbox.listing import STATUS_FILTERS
from inbox.live.presence import Agent
from inbox.middleware import server_timezone
from inbox.models import Conversation, Message, Note
from inbox.selectors import TabCounts

TEMPLATE = "inbox/_pushed.html"

# The largest frame a push may be. daphne (autobahn) refuses to send a message over its
# websocket_max_message_size of 1 MiB, and then closes the socket with 1011; a bubble is
# HTML-escaped (`<` becomes `&lt;`), so a message well inside the webhook's 1 MiB can
# render past it. Half of that leaves room for whatever wraps a frame.
MAX_FRAME_BYTES = 512 * 1024
# Sent instead of a fragment too big for a frame: the page refetches what it shows
# (static/inbox/live.js), which brings the message over HTTP, where size is no limit.
REFETCH_MARKER = "<!--live:refetch-->"


def row_event(
    conversation: Conversation,
    *,
    version: int,
    to_top: bool,
    received: Sequence[UUID] = (),
    seen: Mapping[int, int] | None = None,
) -> dict:
    """The list-row message for the agents' group: both ways a consumer may apply it.

    `show` upserts the row (at the top of the list, or in place, where a page that lacks it
    adds nothing); `hide` removes it, for the sockets whose filter or search it does not
    match. A consumer sends exactly one of them.
    """
    context = {
        "conversation": conversation,
        "live_key": f"conversation-{conversation.id}",
        "live_version": version,
        "to_top": to_top,
    }
    # HTML comments are not swapped. `live:row` tells the page this frame moves the list
    # (held while the agent's pointer is on it, live.js); each `live:received` is a new
    # received message for the title's counter.
    marker = f"<!--live:row {conversation.id}-->" + "".join(
        f"<!--live:received {message_id}-->" for message_id in received
    )
    show = {language: marker + row for language, row in _rendered("row", context).items()}
    with translation.override(settings.LANGUAGE_CODE):
        removed = render_to_string(f"{TEMPLATE}#removed", context).strip()
    return {
        "type": "row.changed",
        "conversation_id": str(conversation.id),
        "status": conversation.status,
        "waiting": conversation.waiting_since is not None,
        "assignee": conversation.assignee.get_username() if conversation.assignee else "",
        # Each agent's unread is decided by their socket (row_for): how many messages the
        # conversation holds, and how many each agent who has looked at it has seen.
        "message_count": conversation.message_count,
        "seen": {str(agent): count for agent, count in (seen or {}).items()},
        "show": show,
        "hide": marker + removed,
    }


# The row as rendered for everyone: read. One attribute turns it unread for one agent, and
# the row's styles (bold, the dot) follow it, so a push is rendered once, not per agent.
_READ = 'data-unread="false"'
_UNREAD = 'data-unread="true"'


def row_for(show: str, *, unread: bool) -> str:
    """A pushed row as one agent sees it: with `data-unread="true"` if it is unread to them."""
    return show.replace(_READ, _UNREAD, 1) if unread else show


def row_unread(event: dict, *, agent_id: int) -> bool:
    """Whether a pushed row holds messages this agent has not seen."""
    return event.get("message_count", 0) > event.get("seen", {}).get(str(agent_id), 0)


# The tabs every agent sees the same, pushed as one fragment to all; Mine is each agent's
# own, added by their socket (count_html), and the Open tab's "N waiting" rides along.
SHARED_COUNTS = (*STATUS_FILTERS, "unassigned", "waiting")


def counts_html(counts: TabCounts, *, version: int, tabs: Iterable[str] = SHARED_COUNTS) -> str:
    """The filter tabs' counts, each swapped into its tab by id (`tab-count-<filter>`).

    Numbers only, the same in every language. Marked `live:counts` so the page holds them
    with the rows they count (live.js)."""
    context = {
        "tabs": [{"value": value, "count": counts.label(value)} for value in tabs],
        "live_version": version,
    }
    with translation.override(settings.LANGUAGE_CODE):
        return "<!--live:counts-->" + render_to_string(f"{TEMPLATE}#counts", context).strip()


def count_html(tab: str, count: int, *, version: int) -> str:
    """One tab's count alone (an agent's Mine), in the same form, joined to counts_html."""
    context = {"tabs": [{"value": tab, "count": str(count)}], "live_version": version}
    with translation.override(settings.LANGUAGE_CODE):
        return render_to_string(f"{TEMPLATE}#counts", context).strip()


def counts_event(counts: TabCounts, *, version: int) -> dict:
    """The tabs' counts of an unsearched list, from the tables the database keeps by trigger:
    pushed with every tick's rows, so the tabs follow every push (README, "What the page
    keeps true while events stream in"). `mine` is every agent's, by user id."""
    return {
        "type": "counts.changed",
        "version": version,
        "html": counts_html(counts, version=version),
        # Text keys: the Redis layer's msgpack and JSON alike keep them as they are.
        "mine": {str(agent): n for agent, n in counts.by_assignee.items()},
    }


def header_event(conversation: Conversation, *, version: int) -> dict:
    """The open thread's header, swapped in place by its id."""
    context = {"conversation": conversation, "live_version": version}
    return {"type": "fragment", "html": _rendered("header", context)}


def bubble_event(message: Message, *, version: int) -> dict:
    """A message bubble, placed in timestamp order in the open thread."""
    following = (
        Message.objects.filter(conversation_id=message.conversation_id)
        .filter(
            Q(timestamp__gt=message.timestamp) | Q(timestamp=message.timestamp, id__gt=message.id)
        )
        .order_by("timestamp", "id")
        .values_list("id", flat=True)
        .first()
    )
    context = {
        "message": message,
        "live_key": f"message-{message.id}",
        "live_version": version,
        # Before the message that follows it; if this page does not have that one (yet), the
        # page appends it instead (live.js, `data-live-fallback`), which the later one will
        # then follow.
        "placement": "beforeend:#messages"
        if following is None
        else f"beforebegin:#message-{following}",
        "fallback": "" if following is None else "#messages",
    }
    return {"type": "fragment", "html": _fitting_a_frame(_rendered("bubble", context))}


def note_event(note: Note, *, version: int) -> dict:
    """An internal note's bubble, at the end of the open thread: a note is written now, so
    it is the thread's newest (a page showing an older window is told to leave it out)."""
    context = {"note": note, "live_key": f"note-{note.id}", "live_version": version}
    return {"type": "fragment", "html": _fitting_a_frame(_rendered("note", context))}


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


def _fitting_a_frame(html: dict[str, str]) -> dict[str, str]:
    """The fragments, or the refetch marker in their place when one would not fit a frame
    (MAX_FRAME_BYTES): the viewers stay connected and get the message by refetching."""
    if all(len(fragment.encode()) <= MAX_FRAME_BYTES for fragment in html.values()):
        return html
    return dict.fromkeys(html, REFETCH_MARKER)


def presence_html(
    *, conversation_id: str, viewing: Sequence[Agent], typing: Sequence[Agent], language: str
) -> str:
    """The thread's presence line as one socket's agent sees it (inbox/live/presence.py): the
    other agents viewing and those of them typing. Rendered per socket, in its language: no
    two agents see the same line (neither sees themself)."""
    typists = {agent.username for agent in typing}
    watching = [agent for agent in viewing if agent.username not in typists]
    context = {
        "conversation_id": conversation_id,
        "viewer_usernames": ",".join(agent.username for agent in viewing),
        "typist_usernames": ",".join(agent.username for agent in typing),
        "watching": watching,
        "watching_names": ", ".join(agent.name for agent in watching),
        "typing": typing,
        "typing_names": ", ".join(agent.name for agent in typing),
    }
    with translation.override(language):
        return render_to_string(f"{TEMPLATE}#presence", context).strip()
