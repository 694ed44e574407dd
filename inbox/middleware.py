"""Times in the agent's own time zone.

The browser knows its zone (`Intl.DateTimeFormat().resolvedOptions().timeZone`); the
inbox's script stores it in the `tz` cookie, and this middleware activates it for the
request, so every time the server renders is in the agent's zone. No cookie, or a name that
is not a zone: the server's TIME_ZONE.
"""

import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

TIMEZONE_COOKIE = "tz"


class DisplayZone(zoneinfo.ZoneInfo):
    """A zone to show times in, which shows in UTC a time it cannot represent.

    A time near the calendar's edge (year 1 in a zone west of UTC, year 9999 east of it)
    has no local date: Python's conversion raises OverflowError, and every page, pushed
    fragment and admin list that showed it would answer 500. The webhook refuses such
    times now, but a stored row (older data, the admin, a script) must not take the inbox
    down: the same instant is shown in UTC instead.
    """

    def fromutc(self, dt: datetime) -> datetime:
        try:
            return super().fromutc(dt)
        except OverflowError:
            return dt.replace(tzinfo=UTC)


def display_zone(name: str) -> DisplayZone | None:
    """The zone of that name, safe to show any time in; None when there is no such zone."""
    if not name or len(name) > 64:
        return None
    try:
        return DisplayZone(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None


def agent_timezone(request: HttpRequest) -> zoneinfo.ZoneInfo | None:
    return display_zone(request.COOKIES.get(TIMEZONE_COOKIE, ""))


def server_timezone() -> zoneinfo.ZoneInfo:
    """TIME_ZONE, safe to show any time in (Django's own default zone is a plain one)."""
    return display_zone(settings.TIME_ZONE) or DisplayZone("UTC")


class AgentTimezoneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Always a zone of ours, never Django's default: see DisplayZone.
        timezone.activate(agent_timezone(request) or server_timezone())
        return self.get_response(request)
