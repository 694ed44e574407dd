"""The page django-axes answers with when a username is locked out from an address.

Set as AXES_LOCKOUT_CALLABLE (project/settings.py), so the admin's login form and ours say
the same thing, in the agent's language, with the limit and the wait from the settings.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

# The status django-axes answers a lockout with: Too Many Requests.
LOCKED_OUT = 429


def lockout_response(
    request: HttpRequest, original_response: object = None, credentials: object = None
) -> HttpResponse:
    """Axes calls this with (request, response, credentials), or from its async middleware
    with (request, credentials): neither is needed to say what happened."""
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    context = {"failure_limit": settings.AXES_FAILURE_LIMIT, "lockout_minutes": minutes}
    return render(request, "registration/locked_out.html", context, status=LOCKED_OUT)
