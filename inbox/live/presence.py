"""Who else has a thread open, and who is typing in it (README, "Triage", Presence).

Ephemeral: nothing is stored, nothing is numbered. Each socket viewing a thread keeps its own
`Presence` of the other sockets in that thread's group, from what they say through the
channel layer (the consumer sends and receives; this module only keeps the state):

- `presence.here`: a socket is viewing the thread. Sent when it starts (`ask`: the others
  answer with their own `here`, straight to its channel, so it learns who was already
  there) and again every `ANNOUNCE_EVERY` seconds.
- `presence.gone`: it left the thread or its socket closed.
- `presence.typing`: its agent is typing a reply (`typing` false: stopped, or sent it).

A socket not heard from for `FORGET_AFTER` seconds is forgotten (its process crashed, or its
`gone` was lost), and a typist after `TYPING_FOR` seconds without a new `typing`. Times are
each receiver's own monotonic clock, never a sender's: processes' clocks need not agree.
"""

from dataclasses import dataclass

# Seconds between a viewing socket's announcements, and without one after which it is
# forgotten: two lost announcements in a row are not enough to drop a viewer.
ANNOUNCE_EVERY = 20.0
FORGET_AFTER = 60.0
# Seconds a typist shows without a new `typing`; the page sends one at most every
# TYPING_EVERY seconds while the agent types (static/inbox/live.js), the server forwards at
# most one renewal per socket every TYPING_MIN_INTERVAL (a little less, for the network's
# jitter). Starts and stops (typing, sending, typing again) pass at once, up to TYPING_BURST
# in a row, then one per TYPING_MIN_INTERVAL.
TYPING_FOR = 6.0
TYPING_EVERY = 3.0
TYPING_MIN_INTERVAL = 2.0
TYPING_BURST = 4
# The channel layer's message types.
HERE = "presence.here"
GONE = "presence.gone"
TYPING = "presence.typing"
TYPES = frozenset({HERE, GONE, TYPING})


@dataclass
class Viewer:
    agent: int
    username: str
    name: str
    heard_at: float
    typing_until: float = 0.0


@dataclass(frozen=True)
class Agent:
    """One agent as a presence line shows them: tabs of the same agent are one."""

    username: str
    name: str


class Presence:
    """The other sockets viewing one thread, as one socket has heard of them."""

    def __init__(self, *, me: int) -> None:
        self.me = me
        self.viewers: dict[str, Viewer] = {}

    def here(self, event: dict, *, now: float) -> None:
        channel = event["channel"]
        known = self.viewers.get(channel)
        self.viewers[channel] = Viewer(
            agent=event["agent"],
            username=event["username"],
            name=event["name"],
            heard_at=now,
            typing_until=known.typing_until if known else 0.0,
        )

    def gone(self, event: dict) -> None:
        self.viewers.pop(event["channel"], None)

    def typing(self, event: dict, *, now: float) -> None:
        """A typist is a viewer too: its `here` may have been lost or not arrived yet."""
        if event["channel"] not in self.viewers:
            self.here(event, now=now)
        viewer = self.viewers[event["channel"]]
        viewer.heard_at = now
        viewer.typing_until = now + TYPING_FOR if event.get("typing", True) else 0.0

    def forget(self, *, now: float) -> None:
        """Drops the sockets not heard from for FORGET_AFTER seconds."""
        for channel, viewer in list(self.viewers.items()):
            if now - viewer.heard_at >= FORGET_AFTER:
                del self.viewers[channel]

    def next_change(self, *, now: float) -> float | None:
        """When, without any new message, what `seen` answers changes next."""
        times = [viewer.heard_at + FORGET_AFTER for viewer in self.viewers.values()]
        times += [v.typing_until for v in self.viewers.values() if v.typing_until > now]
        return min(times, default=None)

    def seen(self, *, now: float) -> tuple[list[Agent], list[Agent]]:
        """The other agents viewing, and those of them typing, each once, by username."""
        viewing: dict[str, Agent] = {}
        typing: dict[str, Agent] = {}
        for viewer in self.viewers.values():
            if viewer.agent == self.me or now - viewer.heard_at >= FORGET_AFTER:
                continue
            agent = Agent(username=viewer.username, name=viewer.name)
            viewing.setdefault(viewer.username, agent)
            if viewer.typing_until > now:
                typing.setdefault(viewer.username, agent)
        return _sorted(viewing), _sorted(typing)


def _sorted(agents: dict[str, Agent]) -> list[Agent]:
    return [agents[username] for username in sorted(agents)]


def is_event(event: dict) -> bool:
    """Whether a channel layer message is a well-formed presence message (they come from
    other processes, maybe of another version: a malformed one is dropped, never raised on)."""
    return (
        event.get("type") in TYPES
        and isinstance(event.get("group"), str)
        and isinstance(event.get("channel"), str)
        and isinstance(event.get("agent"), int)
        and isinstance(event.get("username"), str)
        and isinstance(event.get("name"), str)
    )
