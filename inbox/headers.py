"""The headers that keep a browser from doing more with the inbox than it needs.

README "Headers and content security policy": a strict Content-Security-Policy (settings'
CONTENT_SECURITY_POLICY, plus this page's socket origins), a Permissions-Policy that turns
off every powerful feature, and `Cache-Control: no-store` on every answer but the probes
(and static files, which WhiteNoise answers before these middlewares run).
"""

from collections.abc import Callable

from csp.middleware import CSPMiddleware, PolicyParts
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import patch_cache_control

# Features the inbox never uses, denied to the page and to anything it could ever embed.
# Only names Chromium knows: an unknown one is an error in the console.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "picture-in-picture",
        "publickey-credentials-get",
        "screen-wake-lock",
        "sync-xhr",
        "usb",
        "xr-spatial-tracking",
    )
)

# Probes answer load balancers, never a person; /readyz sets no-store itself.
CACHEABLE_PATHS = frozenset({"/healthz", "/readyz"})


def csp_nonce(request: HttpRequest) -> dict[str, object]:
    """The request's nonce as `csp_nonce`, the name django-htmx's `{% htmx_script %}` reads
    (and Django 6.0's own CSP context processor uses). Lazy: a page that renders no script
    gets no nonce in its policy."""
    return {"csp_nonce": getattr(request, "csp_nonce", None)}


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with the page's own socket origins in connect-src.

    CSP level 3 lets 'self' match ws: and wss: on the page's host, but browsers that
    predate it (Safari before 15.4) do not: the host's ws:// and wss:// are named. The host
    is the one Django validated against ALLOWED_HOSTS (and its syntax), so nothing a client
    sends can add a source of its own.
    """

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        try:
            host = request.get_host()
        except DisallowedHost:
            return parts
        update = dict(parts.update or {})
        update["connect-src"] = [
            *update.get("connect-src", ()),
            f"ws://{host}",
            f"wss://{host}",
        ]
        parts.update = update
        return parts


class PrivateResponseMiddleware:
    """Permissions-Policy on every answer; `Cache-Control: no-store` on all but the probes.

    Logged-in pages, htmx fragments, the API and the login form carry conversations or
    tokens: no browser history cache or shared proxy may keep a copy after the agent leaves.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if request.path_info not in CACHEABLE_PATHS:
            patch_cache_control(response, no_store=True)
        return response
