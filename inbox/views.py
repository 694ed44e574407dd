"""The agents' pages. Thin: parse the request, call a selector, render."""

from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from inbox import api, health, selectors


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process answers. No database: this is the ceiling the benchmarks compare against."""
    return JsonResponse({"status": "ok"})


@require_GET
async def readyz(request: HttpRequest) -> JsonResponse:
    """The database and the channel layer answer: 200, or 503 naming what is down.

    Unauthenticated, for load balancers and the container's health check.
    """
    checks = await health.readiness()
    down = [name for name, ok in checks.items() if not ok]
    body: dict[str, object] = {
        "status": "unavailable" if down else "ok",
        "checks": {name: "ok" if ok else "unreachable" for name, ok in checks.items()},
    }
    if down:
        body["detail"] = f"unreachable: {', '.join(down)}"
    response = JsonResponse(body, status=503 if down else 200)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@login_required
def index(request: HttpRequest) -> HttpResponse:
    page = selectors.conversation_list()
    return render(request, "inbox/index.html", {"conversations": page.conversations})


@require_GET
def conversation_detail(request: HttpRequest, conversation_id: str) -> HttpResponse:
    # One URL: the thread for a browser, the conversation's JSON for a script.
    if request.get_preferred_type(["text/html", "application/json"]) == "application/json":
        return api.conversation_detail(request, conversation_id)
    return conversation_page(request, conversation_id)


@login_required
def conversation_page(request: HttpRequest, conversation_id: str) -> HttpResponse:
    try:
        ident = UUID(conversation_id)
    except ValueError:
        raise Http404("no such conversation") from None
    conversation = selectors.conversation_get(conversation_id=ident)
    if conversation is None:
        raise Http404("no such conversation")
    return render(
        request,
        "inbox/index.html",
        {
            "conversations": selectors.conversation_list().conversations,
            "conversation": conversation,
            "messages": selectors.thread_messages(conversation_id=ident),
        },
    )
