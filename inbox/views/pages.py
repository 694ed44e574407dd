"""The agents' pages: the inbox list and a conversation's thread. Parse the request (the list's
state through inbox/listing.py), read through the selectors, render.

Every page is a full page on a plain load; htmx asks for the pane it swaps (by `HX-Target`)
and gets just that fragment of templates/inbox/index.html, with the address bar set to the
URL that reloads the same view (`HX-Push-Url`), so back, forward, reload and a pasted link
all land on what the agent saw.
"""

from dataclasses import replace
from urllib.parse import urlsplit
from uuid import UUID

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext, pgettext
from django.views.decorators.http import require_GET

from inbox import selectors
from inbox.listing import ASSIGNEE_TABS, STATUS_FILTERS, ListState
from inbox.models import Conversation

TEMPLATE = "inbox/index.html"
# WhatsApp's limit on a text message (README "Replies"); the services refuse longer ones.
REPLY_LIMIT = 4096


def conversation_id_or_404(conversation_id: str) -> UUID:
    """The id in a conversation's URL; a malformed one names no conversation."""
    try:
        return UUID(conversation_id)
    except ValueError:
        raise Http404("no such conversation") from None


def render_page(
    request: HttpRequest, template: str, context: dict, **kwargs: object
) -> HttpResponse:
    response = render(request, template, context, **kwargs)
    # One URL answers a page or a fragment: caches and the back button must tell them apart.
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


def _list_context(request: HttpRequest, state: ListState) -> dict[str, object]:
    """The list pane: the first page of rows and the tabs with their counts."""
    listed = selectors.conversation_list_counted(
        status=state.conversation_status,
        q=state.q,
        sort=state.sort,
        assignee=state.assignee_username(request.user.get_username()),
        agent_id=request.user.pk,
    )
    labels = {
        "open": pgettext("filter tab", "Open"),
        "closed": pgettext("filter tab", "Closed"),
        "all": pgettext("filter tab", "All"),
        "mine": pgettext("filter tab", "Mine"),
        "unassigned": pgettext("filter tab", "Unassigned"),
    }
    tabs = [
        {
            "value": value,
            "label": labels[value],
            "count": listed.counts.label(value),
            "current": value == state.tab,
            "query": state.with_tab(value).query,
        }
        for value in [*STATUS_FILTERS, *ASSIGNEE_TABS]
    ]
    # The Open tab says how many of its customers wait for us (README, "Triage").
    waiting = listed.counts.waiting if state.status == "open" else None
    return {**_rows_context(state, listed.page), "tabs": tabs, "waiting": waiting}


def _rows_context(state: ListState, page: selectors.Page) -> dict[str, object]:
    return {
        "list_state": state,
        "status": state.status,
        "q": state.q,
        "list_query": state.query,
        "sort_waiting_query": replace(state, sort="waiting", status="open").query,
        "sort_activity_query": replace(state, sort="activity").query,
        "conversations": page.conversations,
        "next_cursor": page.next_cursor,
    }


def _pane_request(request: HttpRequest, target: str) -> bool:
    """htmx asks for one pane (a history restore always gets the whole page)."""
    return bool(
        request.htmx and not request.htmx.history_restore_request and request.htmx.target == target
    )


@require_GET
@login_required
def index(request: HttpRequest) -> HttpResponse:
    state = ListState.parse(request.GET)
    cursor = request.GET.get("cursor")
    if cursor:
        # The next page of rows, as the agent scrolls (or a plain "More" link without JS).
        try:
            page = selectors.conversation_list(
                status=state.conversation_status,
                cursor=cursor,
                q=state.q,
                sort=state.sort,
                assignee=state.assignee_username(request.user.get_username()),
            )
        except selectors.InvalidCursor:
            return render_page(request, "inbox/bad_request.html", {}, status=400)
        context = _rows_context(state, page)
        if request.htmx:
            return render_page(request, f"{TEMPLATE}#list-rows", context)
        return render_page(
            request, TEMPLATE, {**context, "tabs": _list_context(request, state)["tabs"]}
        )

    context = _list_context(request, state)
    if _pane_request(request, "list-results"):
        response = render_page(request, f"{TEMPLATE}#list-results", context)
        # Filtering keeps the open thread: the address is the page the agent is on. Typing a
        # search replaces the address rather than adding a history entry per pause.
        header = "HX-Replace-Url" if request.htmx.trigger == "list-filters" else "HX-Push-Url"
        response[header] = state.url(_current_inbox_path(request))
        return response
    return render_page(request, TEMPLATE, context)


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


def _conversation_or_404(conversation_id: str) -> Conversation:
    conversation = selectors.conversation_get(
        conversation_id=conversation_id_or_404(conversation_id)
    )
    if conversation is None:
        raise Http404("no such conversation")
    return conversation


def composer_context(
    conversation: Conversation, *, content: str = "", error: str = ""
) -> dict[str, object]:
    """The reply box: its draft, a refusal's reason, and why it is off, if it is."""
    blocked = ""
    if not settings.PROVIDER_URL:
        blocked = gettext("Replies are off: no messaging provider is configured.")
    elif conversation.status == Conversation.Status.CLOSED:
        blocked = gettext("Reopen to reply")
    return {
        "conversation": conversation,
        "reply_content": content,
        "reply_error": error,
        "reply_blocked": blocked,
        "reply_provider": bool(settings.PROVIDER_URL),
        "reply_limit": REPLY_LIMIT,
    }


@login_required
def conversation_page(request: HttpRequest, conversation_id: str) -> HttpResponse:
    return thread_response(request, _conversation_or_404(conversation_id))


def thread_response(
    request: HttpRequest,
    conversation: Conversation,
    *,
    composer: dict[str, object] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The thread page (or its pane for htmx), its composer as given (a refused draft)."""
    before = request.GET.get("before")
    try:
        thread = selectors.thread_page(conversation_id=conversation.id, before=before)
    except selectors.InvalidCursor:
        return render_page(request, "inbox/bad_request.html", {}, status=400)
    thread_context = {
        **(composer or composer_context(conversation)),
        "conversation": conversation,
        # The assign form's choices: the active agents (README, "Triage").
        "agents": get_user_model().objects.filter(is_active=True).order_by("username"),
        "messages": thread.messages,
        "earlier_cursor": thread.earlier_cursor,
    }
    if before and request.htmx:
        # Earlier messages, as the agent scrolls up the thread.
        return render_page(request, f"{TEMPLATE}#message-chunk", thread_context)
    state = ListState.parse(request.GET)
    if _pane_request(request, "thread-pane"):
        response = render_page(request, f"{TEMPLATE}#thread-pane", thread_context, status=status)
        response["HX-Push-Url"] = state.url(request.path)
        return response
    return render_page(
        request, TEMPLATE, {**_list_context(request, state), **thread_context}, status=status
    )
