"""The agents' WebSocket, `/ws/inbox/`: join groups, forward fragments; nothing else.

The page says what it is viewing in the query string (`status`, `q`, `conversation`), with the
same meaning as the inbox URL's, so a row is shown or removed by what that page lists.
"""

import json
from urllib.parse import parse_qs
from uuid import UUID

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.http import HttpRequest
from django.utils import translation

from inbox import live, selectors

# The inbox's `?status=` values, and the conversation states each one lists.
STATUS_FILTERS = {"open": {"OPEN"}, "closed": {"CLOSED"}, "all": {"OPEN", "CLOSED"}}
DEFAULT_STATUS = "open"
# The channel layer's messages live.py sends: a frame to the page, or the end of the socket.
PUSHED = {"row.changed", "fragment", "session.ended"}
# The close code for a session that logged out: the page goes to the login form rather
# than reconnecting (4000-4999 are the application's own codes).
SESSION_ENDED = 4401


class InboxConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Closing before accept refuses the handshake (HTTP 403): no data ever flows.
            await self.close()
            return
        self.language = _language(self.scope)
        params = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.joined: list[str] = []
        # Not a view's group: kept whatever the page views, until the socket closes.
        session_key = self.scope["session"].session_key
        self.session_group = live.session_group(session_key) if session_key else None
        if self.session_group:
            await self.channel_layer.group_add(self.session_group, self.channel_name)
        await self._follow(
            status=params.get("status", [DEFAULT_STATUS])[0],
            query=params.get("q", [""])[0],
            conversation=params.get("conversation", [""])[0],
        )
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        if getattr(self, "session_group", None):
            await self.channel_layer.group_discard(self.session_group, self.channel_name)

    async def dispatch(self, message: dict) -> None:
        """Channels closes stale database connections before handling any message, through
        the one thread that also runs every sync view: with 200 sockets, one push queued 200
        trips to it behind the webhooks (profiled: the largest part of a fan-out). A push
        touches the database only through database_sync_to_async, which does that itself."""
        if message.get("type") in PUSHED:
            await getattr(self, get_handler_name(message))(message)
            return
        await super().dispatch(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The page says what it views now: htmx navigates without reloading, so the socket,
        opened for the first view, follows the agent to the next tab, search or thread."""
        try:
            view = json.loads(text_data or "")
        except ValueError:
            return
        if not isinstance(view, dict) or view.get("type") != "view":
            return
        await self._follow(
            status=str(view.get("status") or DEFAULT_STATUS),
            query=str(view.get("q") or ""),
            conversation=str(view.get("conversation") or ""),
        )

    async def _follow(self, *, status: str, query: str, conversation: str) -> None:
        self.statuses = STATUS_FILTERS.get(status.lower(), STATUS_FILTERS[DEFAULT_STATUS])
        self.query = query.strip()
        groups = [live.AGENTS_GROUP]
        viewing = _uuid(conversation)
        if viewing is not None:
            groups.append(live.conversation_group(viewing))
        for group in set(self.joined) - set(groups):
            await self.channel_layer.group_discard(group, self.channel_name)
        for group in set(groups) - set(self.joined):
            await self.channel_layer.group_add(group, self.channel_name)
        self.joined = groups

    async def row_changed(self, event: dict) -> None:
        shown = event["status"] in self.statuses and (
            not self.query or await _matches(UUID(event["conversation_id"]), self.query)
        )
        await self.send(text_data=event["show"][self.language] if shown else event["hide"])

    async def fragment(self, event: dict) -> None:
        await self.send(text_data=event["html"][self.language])

    async def session_ended(self, event: dict) -> None:
        await self.close(code=SESSION_ENDED)


@database_sync_to_async
def _matches(conversation_id: UUID, query: str) -> bool:
    return selectors.conversation_matches(conversation_id=conversation_id, q=query)


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
