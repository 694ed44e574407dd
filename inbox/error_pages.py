"""The product's own 404 and 500 pages under DEBUG too (README, "The inbox").

With DEBUG on (`make run`), Django answers a 404 with its technical page, listing the URL
patterns, and an exception with its yellow traceback page: a newcomer who follows a stale
link sees the framework, not the inbox. Production already renders templates/404.html and
500.html; this middleware makes development do the same. The traceback still reaches the
console, logged by `django.request` as in production.
"""

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.loader import render_to_string

logger = logging.getLogger("django.request")


class ProductErrorPagesMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            settings.DEBUG
            and response.status_code == 404
            and response.get("Content-Type", "").startswith("text/html")
        ):
            # Django's technical 404, or any HTML 404: the page the product shows. A JSON
            # 404 (the API's) is left as it is.
            return HttpResponse(render_to_string("404.html", request=request), status=404)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        # Http404 and PermissionDenied keep Django's handling (the 404 is replaced above).
        if not settings.DEBUG or isinstance(exception, Http404 | PermissionDenied):
            return None
        logger.error(
            "Internal Server Error: %s",
            request.path,
            exc_info=exception,
            extra={"request": request},
        )
        # Without the request's context: what failed may be a context processor.
        return HttpResponse(render_to_string("500.html"), status=500)
