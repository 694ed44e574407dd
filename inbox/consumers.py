"""The agents' WebSocket, `/ws/inbox/`: join groups, forward fragments; nothing else.

The page says what it is viewing in the query string (`status`, `q`, `conversation`), with the
same meaning as the inbox URL's (inbox/listing.py parses both), so a row is shown or removed
by what that page lists.

Pushes arrive as numbered batches (inbox/live/publish.py). The consumer keeps the last number it
got from each origin in each group it is in; when one is missing (dropped by a sender that
could not send it, or by channels-redis over a channel's capacity) it tells the page to
refetch what it shows (`RESYNC`), so the page is never left behind without knowing it.

A socket lives no longer than its session's right to it (README Security, "Logins"): it
closes with SESSION_ENDED when told the session ended or the account changed and its
session no longer logs the agent in, and at the session's expiry, which it reads at
connect and keeps, so a push costs no query.
"""

import asyncio
import contextlib
import json
import logging
import time
from importlib import import_module
from uuid import UUID

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib import auth
from django.http import HttpRequest, QueryDict
from django.utils import translation

from inbox import live, selectors
from inbox.listing import STATUS_FILTERS, ListState

logger = logging.getLogger(__name__)

# The channel layer's messages the sender sends (inbox/live/publish.py), and the items a batch
# holds: a frame to the page, or the end of the socket.
PUSHED = {live.BATCH, live.SYNC}
ITEMS = {"row.changed", "counts.changed", "fragment", "session.ended", "session.check"}
# The frame that makes the page refetch its list and thread (static/inbox/live.js).
RESYNC = "<!--live:resync-->"
# Origins remembered per group: a process's count for a group starts over (a new origin)
# after it was idle for a while, so old ones are let go.
ORIGINS_KEPT = 32
# The close code for a session that no longer logs its agent in (logged out, deleted,
# expired, the account deactivated or its password changed): the page goes to the login
# form rather than reconnecting (4000-4999 are the application's own codes).
SESSION_ENDED = 4401
# Group memberships expire (the layer's group_expiry), so a member whose discard was lost
# goes away by itself; a socket that stays open renews its own this many times per expiry.
RENEWALS_PER_EXPIRY = 3
# Seconds before a socket whose session expired asks again, when the database did not answer.
EXPIRY_RETRY = 30.0
# Seconds between the attempts to leave a group; after the last, the expiry cleans up.
DISCARD_BACKOFF = (0.1, 0.5, 2.0)


class InboxConsumer(AsyncWebsocketConsumer):
    renewal: asyncio.Task | None = None
    expiry: asyncio.Task | None = None
    # Set once the socket closed itself for its session: what is still queued is dropped.
    ended = False

    async def __call__(self, scope: dict, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Also when a handler raised and disconnect() never ran: a renewal outliving
            # its socket would keep a dead member in the groups forever.
            for task in (self.renewal, self.expiry):
                if task is not None:
                    task.cancel()

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Closing before accept refuses the handshake (HTTP 403): no data ever flows.
            await self.close()
            return
        self.language = _language(self.scope)
        params = QueryDict(self.scope.get("query_string", b""))
        self.joined: list[str] = []
        # Per group: when this socket joined it, and the last number seen from each origin.
        self.joined_at: dict[str, float] = {}
        self.seen: dict[str, dict[str, int]] = {}
        # The session is checked again when it expires, not per push: until then a logout,
        # a deleted session or a changed account is pushed to these groups (inbox/apps.py).
        self.user_id = user.pk
        self.username = user.get_username()
        self.session_key = self.scope["session"].session_key
        self.expires_at = await _session_expiry(self.session_key, self.user_id)
        if self.expires_at is None:
            await self.close()
            return
        # Not a view's groups: kept whatever the page views, until the socket closes.
        self.session_group = live.session_group(self.session_key)
        self.user_group = live.user_group(self.user_id)
        for group in (self.session_group, self.user_group):
            await self._join(group)
        self.membership = asyncio.Lock()
        await self._follow(ListState.parse(params), conversation=params.get("conversation", ""))
        await self.accept()
        self.renewal = asyncio.create_task(self._renew_memberships())
        self.expiry = asyncio.create_task(self._close_at_expiry())

    async def disconnect(self, code: int) -> None:
        for task in (self.renewal, self.expiry):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        groups = [
            *getattr(self, "joined", []),
            getattr(self, "session_group", None),
            getattr(self, "user_group", None),
        ]
        await asyncio.gather(*(self._leave(group) for group in groups if group))

    async def _leave(self, group: str) -> None:
        """Leave a group, retrying: a lost discard would leave a dead member that every push
        to the group is still sent to until the membership expires. Never raises."""
        for delay in (*DISCARD_BACKOFF, None):
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
                return
            except Exception:
                if delay is None:
                    logger.warning("socket: could not leave %s; it expires", group, exc_info=True)
                    return
                await asyncio.sleep(delay)

    async def _renew_memberships(self) -> None:
        interval = getattr(self.channel_layer, "group_expiry", 86400) / RENEWALS_PER_EXPIRY
        while True:
            await asyncio.sleep(interval)
            async with self.membership:
                for group in [self.session_group, self.user_group, *self.joined]:
                    if not group:
                        continue
                    try:
                        await self.channel_layer.group_add(group, self.channel_name)
                    except Exception:
                        # The next renewal tries again, still well within the expiry.
                        logger.warning("socket: could not renew %s", group, exc_info=True)

    async def dispatch(self, message: dict) -> None:
        """Channels closes stale database connections before handling any message, through
        the one thread that also runs every sync view: with 200 sockets, one push queued 200
        trips to it behind the webhooks (profiled: the largest part of a fan-out). A push
        touches the database only through database_sync_to_async, which does that itself."""
        if message.get("type") in PUSHED:
            if self.ended or not await self._still_logged_in():
                return
            await getattr(self, get_handler_name(message))(message)
            return
        await super().dispatch(message)

    async def _still_logged_in(self, *, now: bool = False) -> bool:
        """Whether the socket's session still logs its agent in; if not, closes the socket
        (SESSION_ENDED). Asks the database only once the cached expiry has passed (the
        session may have been extended since), or when told to (`now`)."""
        if self.ended:
            return False
        if not now and time.time() < self.expires_at:
            return True
        expires_at = await _session_expiry(self.session_key, self.user_id)
        if expires_at is None:
            self.ended = True
            await self.close(code=SESSION_ENDED)
            return False
        self.expires_at = expires_at
        return True

    async def _close_at_expiry(self) -> None:
        """Closes the socket when its session expires, even if nothing is pushed to it."""
        while True:
            try:
                if not await self._still_logged_in():
                    return
            except Exception:
                # The database is out: the next push, frame or try asks again.
                logger.warning("socket: could not check the session's expiry", exc_info=True)
                await asyncio.sleep(EXPIRY_RETRY)
                continue
            await asyncio.sleep(max(0.0, self.expires_at - time.time()))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The page says what it views now: htmx navigates without reloading, so the socket,
        opened for the first view, follows the agent to the next tab, search or thread."""
        if not await self._still_logged_in():
            return
        try:
            view = json.loads(text_data or "")
        except ValueError:
            return
        if not isinstance(view, dict) or view.get("type") != "view":
            return
        await self._follow(ListState.parse(view), conversation=str(view.get("conversation") or ""))

    async def _follow(self, list_state: ListState, *, conversation: str) -> None:
        # Under the lock a renewal takes, so it never re-adds a group being left here.
        async with self.membership:
            await self._switch(list_state, conversation=conversation)

    async def _switch(self, list_state: ListState, *, conversation: str) -> None:
        self.list_state = list_state
        groups = [live.AGENTS_GROUP]
        viewing = _uuid(conversation)
        if viewing is not None:
            groups.append(live.conversation_group(viewing))
        for group in set(self.joined) - set(groups):
            await self.channel_layer.group_discard(group, self.channel_name)
            self.joined_at.pop(group, None)
            self.seen.pop(group, None)
        for group in set(groups) - set(self.joined):
            await self._join(group)
        self.joined = groups

    async def _join(self, group: str) -> None:
        # Taken before joining: a batch sent from then on may be one this socket should get.
        self.joined_at[group] = time.time()
        self.seen[group] = {}
        await self.channel_layer.group_add(group, self.channel_name)

    def _missed(self, event: dict, *, last: int, last_at: float, upto: int) -> bool:
        """Whether this socket missed a batch numbered `last` or lower from the event's origin;
        records that it has seen up to `upto`."""
        seen = self.seen[event["group"]]
        origin = event["origin"]
        previous = seen.pop(origin, None)
        if previous is None:
            # An origin not heard of yet: its batch `last` went out after this socket joined.
            missed = last > 0 and last_at >= self.joined_at[event["group"]]
            previous = 0
        else:
            missed = last > previous
        seen[origin] = max(previous, upto)
        while len(seen) > ORIGINS_KEPT:
            del seen[next(iter(seen))]
        return missed

    async def live_batch(self, event: dict) -> None:
        if event.get("group") not in self.seen:
            return  # for a group this socket has left since it was sent
        seq = event["seq"]
        if self._missed(event, last=seq - 1, last_at=event["prev_at"], upto=seq):
            # First, so the pushes that follow are applied again after the refetched state.
            await self.send(text_data=RESYNC)
        for item in event["items"]:
            if item.get("type") in ITEMS:
                await getattr(self, get_handler_name(item))(item)

    async def live_sync(self, event: dict) -> None:
        if event.get("group") not in self.seen:
            return
        seq = event["seq"]
        if self._missed(event, last=seq, last_at=event["at"], upto=seq):
            await self.send(text_data=RESYNC)

    async def row_changed(self, event: dict) -> None:
        shown = self.list_state.lists(
            event["status"],
            waiting=event.get("waiting", False),
            assignee=event.get("assignee", ""),
            me=self.username,
        ) and (
            not self.list_state.q
            or await _matches(UUID(event["conversation_id"]), self.list_state.q)
        )
        await self.send(text_data=event["show"][self.language] if shown else event["hide"])

    async def counts_changed(self, event: dict) -> None:
        """The tabs' counts: the pushed ones for a plain list; a searching page's tabs count
        its matches, read again for it (one query, capped like the page's)."""
        if not self.list_state.q:
            mine = event.get("mine", {}).get(str(self.user_id), 0)
            own = live.count_html("mine", mine, version=event["version"])
            await self.send(text_data=event["html"] + own)
            return
        await self.send(text_data=await _search_counts(self.list_state.q, event["version"]))

    async def fragment(self, event: dict) -> None:
        await self.send(text_data=event["html"][self.language])

    async def session_ended(self, event: dict) -> None:
        self.ended = True
        await self.close(code=SESSION_ENDED)

    async def session_check(self, event: dict) -> None:
        await self._still_logged_in(now=True)


@database_sync_to_async
def _session_expiry(session_key: str | None, user_id: object) -> float | None:
    """When the session stops logging the agent in (a Unix time), or None if it no longer
    does: deleted, expired, the account deactivated or its password changed. The checks an
    HTTP request's are (django.contrib.auth.get_user), in three queries."""
    if not session_key:
        return None
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = auth.get_user(request)
    if not user.is_authenticated or user.pk != user_id:
        return None
    store = request.session
    if hasattr(store, "get_model_class"):  # the database backends: the row's own expiry
        expire_date = (
            store.get_model_class()
            .objects.filter(session_key=session_key)
            .values_list("expire_date", flat=True)
            .first()
        )
        return expire_date.timestamp() if expire_date else None
    return store.get_expiry_date().timestamp()


@database_sync_to_async
def _matches(conversation_id: UUID, query: str) -> bool:
    return selectors.conversation_matches(conversation_id=conversation_id, q=query)


@database_sync_to_async
def _search_counts(query: str, version: int) -> str:
    # The states' tabs only: a search counts those, and leaves the others as the page has them.
    counts = selectors.conversation_counts(q=query)
    return live.counts_html(counts, version=version, tabs=STATUS_FILTERS)


def _language(scope: dict) -> str:
    """The agent's language, chosen as for a page: the switcher's cookie, else the browser's.

    Always one of the LANGUAGES codes the pushes are rendered in: Django hands back the
    cookie as it was set (`/i18n/setlang/` stores `PT-BR` as posted), and a code the
    pushes are not keyed by failed every push (KeyError: the socket closed with 1011).
    """
    request = HttpRequest()
    request.COOKIES = scope.get("cookies", {})
    request.META["HTTP_ACCEPT_LANGUAGE"] = (
        dict(scope.get("headers", [])).get(b"accept-language", b"").decode("latin-1")
    )
    code = translation.get_language_from_request(request).lower().replace("_", "-")
    try:
        code = translation.get_supported_language_variant(code)
    except LookupError:
        return settings.LANGUAGE_CODE
    return code if code in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE


def _uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None
