"""The WebSocket's origin check: a socket opens only from the inbox's own pages.

Channels' AllowedHostsOriginValidator compares the Origin's host name with ALLOWED_HOSTS and
ignores its scheme and port, so a page on another port of the same host (another app, a
dev server) or on plain http could open an agent's socket with the agent's cookie. This
applies the rule Django's CSRF check applies to a form's POST: the Origin must be exactly
the socket's own scheme, host and port (`https` for `wss`, or when TRUST_X_FORWARDED_PROTO
trusts the proxy's `X-Forwarded-Proto: https`), or be in CSRF_TRUSTED_ORIGINS. No Origin,
or a Host not in ALLOWED_HOSTS, is refused too.
"""

from channels.security.websocket import WebsocketDenier
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware


class _Handshake(HttpRequest):
    """The socket's opening request, as Django's request object sees one."""

    def __init__(self, scope: dict) -> None:
        super().__init__()
        self.socket_scheme = "https" if scope.get("scheme") == "wss" else "http"
        for name, value in scope.get("headers", []):
            key = name.decode("latin-1").upper().replace("-", "_")
            self.META[f"HTTP_{key}"] = value.decode("latin-1")
        server = scope.get("server") or (None, None)
        self.META["SERVER_NAME"], self.META["SERVER_PORT"] = server[0] or "", server[1] or ""

    def _get_scheme(self) -> str:
        return self.socket_scheme


class SameOriginValidator:
    """ASGI middleware: refuses (HTTP 403) a socket whose Origin is not the inbox's own."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] == "websocket" and not self.allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)

    def allowed(self, scope: dict) -> bool:
        handshake = _Handshake(scope)
        if "HTTP_ORIGIN" not in handshake.META:
            return False
        # Django's own origin check, the one that guards forms, with its reading of
        # CSRF_TRUSTED_ORIGINS (cached per instance, so one per handshake); it runs no view.
        return CsrfViewMiddleware(lambda request: None)._origin_verified(handshake)
