"""Times in the agent's own time zone.

The browser knows its zone (`Intl.DateTimeFormat().resolvedOptions().timeZone`); the
inbox's script stores it in the `tz` cookie, and this middleware activates it for the
request, so every time the server renders is in the agent's zone. No cookie, or a name that
is not a zone: the server's TIME_ZONE.
"""

import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

TIMEZONE_COOKIE = "tz"


def agent_timezone(request: HttpRequest) -> zoneinfo.ZoneInfo | None:
    name = request.COOKIES.get(TIMEZONE_COOKIE, "")
    if not name or len(name) > 64:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None


class AgentTimezoneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        zone = agent_timezone(request)
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        return self.get_response(request)
