"""The agents' pages. Thin: parse the request, call a service or a selector, render.

Every page is a full page on a plain load; htmx asks for the pane it swaps (by `HX-Target`)
and gets just that fragment of templates/inbox/index.html, with the address bar set to the
URL that reloads the same view (`HX-Push-Url`), so back, forward, reload and a pasted link
all land on what the agent saw.
"""

from urllib.parse import urlsplit
from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.translation import pgettext
from django.views.decorators.http import require_GET, require_POST

from inbox import api, health, selectors, services
from inbox.listing import STATUS_FILTERS, ListState
from inbox.models import Conversation

TEMPLATE = "inbox/index.html"


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process answers. No database: this is the ceiling the benchmarks compare against."""
    return JsonResponse({"status": "ok"})


def _list_context(state: ListState) -> dict[str, object]:
    """The list pane: the first page of rows and the tabs with their counts."""
    listed = selectors.conversation_list_counted(status=state.conversation_status, q=state.q)
    labels = {
        "open": pgettext("filter tab", "Open"),
        "closed": pgettext("filter tab", "Closed"),
        "all": pgettext("filter tab", "All"),
    }
    tabs = [
        {
            "value": value,
            "label": labels[value],
            "count": listed.counts.label(value),
            "current": value == state.status,
            "query": state.with_status(value).query,
        }
        for value in STATUS_FILTERS
    ]
    return {
        **_rows_context(state, listed.page),
        "tabs": tabs,
    }


def _rows_context(state: ListState, page: selectors.Page) -> dict[str, object]:
    return {
        "list_state": state,
        "status": state.status,
        "q": state.q,
        "list_query": state.query,
        "conversations": page.conversations,
        "next_cursor": page.next_cursor,
    }


def _pane_request(request: HttpRequest, target: str) -> bool:
    """htmx asks for one pane (a history restore always gets the whole page)."""
    return bool(
        request.htmx and not request.htmx.history_restore_request and request.htmx.target == target
    )


def _render(request: HttpRequest, template: str, context: dict, **kwargs: object) -> HttpResponse:
    response = render(request, template, context, **kwargs)
    # One URL answers a page or a fragment: caches and the back button must tell them apart.
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


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
    state = ListState.parse(request.GET)
    cursor = request.GET.get("cursor")
    if cursor:
        # The next page of rows, as the agent scrolls (or a plain "More" link without JS).
        try:
            page = selectors.conversation_list(
                status=state.conversation_status, cursor=cursor, q=state.q
            )
        except selectors.InvalidCursor:
            return _render(request, "inbox/bad_request.html", {}, status=400)
        context = _rows_context(state, page)
        if request.htmx:
            return _render(request, f"{TEMPLATE}#list-rows", context)
        return _render(request, TEMPLATE, {**context, "tabs": _list_context(state)["tabs"]})

    context = _list_context(state)
    if _pane_request(request, "list-results"):
        response = _render(request, f"{TEMPLATE}#list-results", context)
        # Filtering keeps the open thread: the address is the page the agent is on. Typing a
        # search replaces the address rather than adding a history entry per pause.
        header = "HX-Replace-Url" if request.htmx.trigger == "list-filters" else "HX-Push-Url"
        response[header] = state.url(_current_inbox_path(request))
        return response
    return _render(request, TEMPLATE, context)


def _current_inbox_path(request: HttpRequest) -> str:
    """The inbox page htmx is on (from HX-Current-URL), or the list when it is anything else."""
    path = urlsplit(request.htmx.current_url or "").path
    prefix = reverse("inbox:conversations")
    if path.startswith(prefix) and path.count("/") == 3 and path.endswith("/"):
        try:
            UUID(path[len(prefix) : -1])
        except ValueError:
            return prefix
        return path
    return prefix


@require_GET
def conversation_detail(request: HttpRequest, conversation_id: str) -> HttpResponse:
    # One URL: the thread for a browser, the conversation's JSON for a script.
    if request.get_preferred_type(["text/html", "application/json"]) == "application/json":
        return api.conversation_detail(request, conversation_id)
    return conversation_page(request, conversation_id)


def _conversation_or_404(conversation_id: str) -> Conversation:
    try:
        ident = UUID(conversation_id)
    except ValueError:
        raise Http404("no such conversation") from None
    conversation = selectors.conversation_get(conversation_id=ident)
    if conversation is None:
        raise Http404("no such conversation")
    return conversation


@login_required
def conversation_page(request: HttpRequest, conversation_id: str) -> HttpResponse:
    conversation = _conversation_or_404(conversation_id)
    before = request.GET.get("before")
    try:
        thread = selectors.thread_page(conversation_id=conversation.id, before=before)
    except selectors.InvalidCursor:
        return _render(request, "inbox/bad_request.html", {}, status=400)
    thread_context = {
        "conversation": conversation,
        "messages": thread.messages,
        "earlier_cursor": thread.earlier_cursor,
    }
    if before and request.htmx:
        # Earlier messages, as the agent scrolls up the thread.
        return _render(request, f"{TEMPLATE}#message-chunk", thread_context)
    state = ListState.parse(request.GET)
    if _pane_request(request, "thread-pane"):
        response = _render(request, f"{TEMPLATE}#thread-pane", thread_context)
        response["HX-Push-Url"] = state.url(request.path)
        return response
    return _render(request, TEMPLATE, {**_list_context(state), **thread_context})


def _status_changed(request: HttpRequest, conversation: Conversation) -> HttpResponse:
    conversation = selectors.conversation_get(conversation_id=conversation.id)
    if request.htmx:
        # The new header, and the row's new badge out of band.
        return _render(request, f"{TEMPLATE}#status-changed", {"conversation": conversation})
    return redirect(reverse("inbox:conversation", args=[conversation.id]), permanent=False)


@require_POST
@login_required
def conversation_close(request: HttpRequest, conversation_id: str) -> HttpResponse:
    conversation = _conversation_or_404(conversation_id)
    services.conversation_close_by_agent(conversation_id=conversation.id, agent=request.user)
    return _status_changed(request, conversation)


@require_POST
@login_required
def conversation_reopen(request: HttpRequest, conversation_id: str) -> HttpResponse:
    conversation = _conversation_or_404(conversation_id)
    services.conversation_reopen(conversation_id=conversation.id, agent=request.user)
    return _status_changed(request, conversation)
