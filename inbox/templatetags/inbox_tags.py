"""Template filters for the inbox's times, in the active (the agent's) time zone.

Fragments are rendered both per request and once at push time for every agent, so these
only give a readable first rendering; the page's script re-renders each `<time>` in the
browser's own zone and language from its exact `datetime` attribute.
"""

from datetime import datetime, timedelta

from django import template
from django.conf import settings
from django.shortcuts import resolve_url
from django.utils import formats, timezone
from django.utils.translation import gettext

from inbox import phones

register = template.Library()


@register.filter
def short_time(value: datetime | None) -> str:
    """A list row's time: the hour today, the day otherwise."""
    if value is None:
        return ""
    local = timezone.localtime(value)
    if local.date() == timezone.localdate():
        return formats.time_format(local, "H:i")
    if local.year == timezone.localdate().year:
        return formats.date_format(local, "j M")
    return formats.date_format(local, "SHORT_DATE_FORMAT")


@register.simple_tag
def waited(since: datetime) -> dict[str, object]:
    """How long a customer has waited, in whole minutes, and whether past
    WAITING_WARN_MINUTES (the row turns amber). As of rendering: a pushed row is rendered
    when it changes, and a page load renders it again."""
    minutes = max(0, int((timezone.now() - since).total_seconds() // 60))
    return {"minutes": minutes, "warn": minutes >= settings.WAITING_WARN_MINUTES}


@register.filter
def day_label(value: datetime) -> str:
    """A thread's day separator: Today, Yesterday or the date."""
    day = timezone.localtime(value).date()
    today = timezone.localdate()
    if day == today:
        return gettext("Today")
    if day == today - timedelta(days=1):
        return gettext("Yesterday")
    return formats.date_format(day, "DATE_FORMAT")


@register.filter
def local_day(value: datetime) -> str:
    """The day, in the active zone, as a key for the thread's separators."""
    return timezone.localtime(value).date().isoformat()


@register.filter
def short_id(value: object) -> str:
    """The first block of a UUID: enough to tell conversations apart at a glance."""
    return str(value).split("-", 1)[0]


@register.filter
def phone_display(value: str | None) -> str:
    """A contact's E.164 phone as people write it (`+55 11 91234-5678`)."""
    return phones.phone_display(value) if value else ""


@register.filter
def initials(conversation: object) -> str:
    """The avatar's letters: the contact's initials (first and last word), else the short id's
    first two characters."""
    contact = getattr(conversation, "contact", None)
    words = [w for w in (contact.name if contact else "").split() if w[:1].isalnum()]
    if words:
        letters = words[0][0] + (words[-1][0] if len(words) > 1 else "")
        return letters.upper()
    return short_id(getattr(conversation, "id", conversation))[:2]


# Full class names, so Tailwind (which scans this file) builds each of them.
AVATAR_TONES = [
    "bg-rose-100 text-rose-800",
    "bg-amber-100 text-amber-800",
    "bg-lime-100 text-lime-800",
    "bg-sky-100 text-sky-800",
    "bg-violet-100 text-violet-800",
    "bg-teal-100 text-teal-800",
    "bg-orange-100 text-orange-800",
    "bg-fuchsia-100 text-fuchsia-800",
]


@register.filter
def avatar_tone(value: object) -> str:
    """A stable colour per conversation, so an agent recognises a row when it moves."""
    return AVATAR_TONES[int(str(value)[:2], 16) % len(AVATAR_TONES)]


@register.simple_tag
def login_url() -> str:
    """The login form's path, from settings.LOGIN_URL (a path or a URL pattern's name), for
    the page's script: the only code that sends an agent there without a request."""
    return resolve_url(settings.LOGIN_URL)
