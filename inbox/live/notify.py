"""The worker's pushes under the in-process channel layer (README, "Replies", "Live ticks").

With REDIS_URL the worker publishes through channels-redis like any server process. Without
it the channel layer lives inside the server process, where the agents' sockets are, and a
worker (another process) reaching its own empty layer would push to nobody: the ticks would
change only on reload. So a worker started with WORKER_NOTIFY_URL forwards each committed
transaction's changes (`publish.forward_to`) to the server over loopback HTTP,
`POST <WORKER_NOTIFY_URL>/internal/notify/`, and the server publishes them with the code the
webhook uses (`live.message_added`): rendered from the committed state, so the notice
carries ids, never content.

The notice is signed with an HMAC keyed from SECRET_KEY (Django's `salted_hmac`, salted for
this use only), which the worker and the server share and nothing else knows; it carries
its time, and one older than `MAX_AGE` is refused, so a captured notice cannot be replayed
later (a replay could only re-push the current state anyway).

A notice is a convenience, never the record: the delivery state is committed before it is
sent. A server that is down, restarting or slow costs the open pages that push, not the
state: the notice is dropped (logged once per outage, then counted), and a page shows the
state on its next reload or reconnect (it refetches on every reconnect).
"""

import json
import logging
import threading
import time
from collections import deque
from uuid import UUID

import httpx
from django.utils.crypto import constant_time_compare, salted_hmac

# By name from the module: the package's `publish` is the function, not this module.
from inbox.live.publish import Change, Job, conversation_changed, forward_to, message_added

logger = logging.getLogger(__name__)

PATH = "/internal/notify/"
SIGNATURE_HEADER = "X-Inbox-Notify-Signature"
_SALT = "inbox.live.notify"
MAX_AGE = 60.0  # seconds a notice stays valid (the worker's and the server's clocks agree)
TIMEOUT = 2.0  # seconds a notice may take: loopback, so only a hung server takes this long
TICK = 0.025  # seconds a notice gathers changes before it goes
QUEUE_SIZE = 10_000  # changes waiting; when full the oldest is dropped
LOG_INTERVAL = 60.0  # seconds between two lines that count failed notices

# The kinds a notice may carry, and what the server calls for each.
KINDS = {Change.MESSAGE, Change.CONVERSATION}


class InvalidNotice(ValueError):
    """A notice the server refuses; `status` is its HTTP answer (403 forged, 400 malformed)."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


def signature(body: bytes) -> str:
    """The notice's signature header value: HMAC-SHA256 of the body, keyed from SECRET_KEY."""
    return "sha256=" + salted_hmac(_SALT, body, algorithm="sha256").hexdigest()


def notice_body(changes: list[Change], *, now: float | None = None) -> bytes:
    """The bytes a worker posts (and signs): the changes' kinds and ids, and the time."""
    items: dict[tuple, dict] = {}  # once each: the server renders the latest state anyway
    for change in changes:
        if change.kind not in KINDS or change.conversation_id is None:
            continue  # a worker makes no session or account changes
        item = {"kind": change.kind, "conversation_id": str(change.conversation_id)}
        if change.message_id is not None:
            item["message_id"] = str(change.message_id)
        items[tuple(item.values())] = item
    sent_at = time.time() if now is None else now
    return json.dumps({"sent_at": sent_at, "changes": list(items.values())}).encode()


def notice_publish(body: bytes, signature_header: str) -> int:
    """Check a notice and publish its changes as this process's own; how many there were.

    Raises `InvalidNotice`: 403 unsigned, forged or too old; 400 not a notice.
    """
    if not signature_header or not constant_time_compare(signature_header, signature(body)):
        raise InvalidNotice(f"the {SIGNATURE_HEADER} signature is missing or wrong", 403)
    try:
        notice = json.loads(body)
        sent_at = float(notice["sent_at"])
        items = notice["changes"]
        if not isinstance(items, list):
            raise TypeError("changes is not a list")
        changes = [_change(item) for item in items]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidNotice(f"not a notice: {exc}", 400) from None
    if abs(time.time() - sent_at) > MAX_AGE:
        raise InvalidNotice(f"the notice is older than {MAX_AGE:.0f} s (or from the future)", 403)
    for kind, conversation_id, message_id in changes:
        if kind == Change.MESSAGE:
            message_added(message_id, conversation_id)
        else:
            conversation_changed(conversation_id)
    return len(changes)


def _change(item: dict) -> tuple[str, UUID, UUID | None]:
    kind = item["kind"]
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    conversation_id = UUID(item["conversation_id"])
    message_id = UUID(item["message_id"]) if kind == Change.MESSAGE else None
    return kind, conversation_id, message_id


class Notifier:
    """The worker's side: `forward(job)` from any thread (a transaction's on_commit); one
    daemon thread posts what a tick gathered, so a slow or absent server never holds a job."""

    def __init__(self, base_url: str) -> None:
        self.url = base_url.rstrip("/") + PATH
        self._queue: deque[Change] = deque(maxlen=QUEUE_SIZE)
        self._queued = threading.Condition()
        self._client = httpx.Client(timeout=TIMEOUT)
        self._failing = False
        self._failed = 0
        self._failed_since = 0.0
        self._thread = threading.Thread(target=self._run, name="inbox-notify", daemon=True)
        self._thread.start()

    def forward(self, job: Job) -> None:
        with self._queued:
            self._queue.extend(job)
            self._queued.notify()

    def _run(self) -> None:
        while True:
            with self._queued:
                self._queued.wait_for(lambda: self._queue)
            time.sleep(TICK)  # let the tick fill: one notice for what commits together
            with self._queued:
                changes = list(self._queue)
                self._queue.clear()
            self._send(changes)

    def _send(self, changes: list[Change]) -> None:
        body = notice_body(changes)
        try:
            response = self._client.post(
                self.url,
                content=body,
                headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature(body)},
            )
            if response.status_code != 202:
                raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
        except Exception as error:
            self._failure(len(changes), error)
            return
        if self._failing:
            logger.warning("notify: the server takes notices again (%d lost)", self._failed)
            self._failing, self._failed = False, 0

    def _failure(self, count: int, error: Exception) -> None:
        # The states are stored; only the open pages' live ticks are lost (they show on
        # reload). Logged once per outage, then a count a minute, not a line per reply.
        self._failed += count
        now = time.monotonic()
        if not self._failing:
            self._failing, self._failed_since = True, now
            logger.warning(
                "notify: could not tell the server at %s of delivery changes (%s); open "
                "pages show them on reload",
                self.url,
                error,
            )
        elif now - self._failed_since >= LOG_INTERVAL:
            logger.warning("notify: %d changes not told to the server: %s", self._failed, error)
            self._failed_since = now


def worker_notify(base_url: str) -> Notifier:
    """Forward this process's pushes to the server at `base_url` (a worker's start)."""
    notifier = Notifier(base_url)
    forward_to(notifier.forward)
    return notifier
