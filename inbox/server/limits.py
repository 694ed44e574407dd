"""File descriptors: raise the process's limit, and say when connections are refused.

Every connection is a file descriptor. A container's soft limit is often 1,024 while its hard
limit is far higher; the soft one is the process's to raise, so `serve` raises it at start.
When the limit is reached anyway, the kernel refuses `accept()` with EMFILE: Twisted then
closes the waiting connections (it keeps one descriptor in reserve for that) and writes
about it to its own log, which daphne sends nowhere. `RefusedConnections` brings those
events to ours: the first one as an ERROR, then one count per interval, never a line per
connection (an attack would flood the log).
"""

import logging
import resource
from collections.abc import Callable

logger = logging.getLogger("inbox.serve")

# Twisted's accept loop logs these (twisted.internet.tcp._accept): one "Closed socket"
# per connection refused while out of descriptors, one "Could not accept" per failed try.
_REFUSED = {
    "EMFILE recovery: Closed socket from {address}",
    "Could not accept new connection ({acceptError})",
}


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (OSError, ValueError):
            logger.warning("serve: could not raise the open-file limit from %d to %d", soft, hard)
    return soft


class EpisodeLog:
    """Log the first of a run of events, then how many more came, once per `interval`.

    A run ends at an interval with none, or when `recovered()` says the condition is over;
    the next event then logs its first line again.
    """

    def __init__(
        self,
        call_later: Callable[..., object],
        first: str,
        more: str,
        *,
        interval: float = 10.0,
        level: int = logging.ERROR,
    ) -> None:
        self.call_later, self.first, self.more = call_later, first, more
        self.interval, self.level = interval, level
        self.active = False
        self.count = 0
        self.timer: object = None

    def hit(self, *args: object) -> None:
        if self.active:
            self.count += 1
            return
        self.active = True
        logger.log(self.level, self.first, *args)
        self.timer = self.call_later(self.interval, self._tick)

    def _tick(self) -> None:
        self.timer = None
        if not self._report(f"in the last {self.interval:g} s"):
            self.active = False
            return
        self.timer = self.call_later(self.interval, self._tick)

    def recovered(self) -> None:
        if not self.active:
            return
        self._report("before recovering")
        self.active = False
        if self.timer is not None:
            self.timer.cancel()  # type: ignore[attr-defined]
            self.timer = None

    def _report(self, when: str) -> bool:
        count, self.count = self.count, 0
        if count:
            logger.log(self.level, self.more, count, when)
        return bool(count)


class RefusedConnections:
    """A Twisted log observer that turns refused accepts into an EpisodeLog."""

    def __init__(self, call_later: Callable[..., object], limit: int) -> None:
        self.log = EpisodeLog(
            call_later,
            "serve: out of file descriptors (limit %d): refusing new connections",
            "serve: refused %d more connections for want of file descriptors %s",
        )
        self.limit = limit

    def __call__(self, event: dict) -> None:
        # Runs inside Twisted's logging: must not raise, and must not open a descriptor.
        if event.get("log_format") in _REFUSED:
            self.log.hit(self.limit)

    def accepted(self) -> None:
        """A connection was accepted: descriptors are available again."""
        self.log.recovered()
