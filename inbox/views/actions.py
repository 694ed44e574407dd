"""What agents do to a conversation from its page: close it, reopen it, name its contact,
assign it.

Parse the id, call the service (which finds and locks the conversation itself, so a view
does not look it up first), render the new state: the header, and the row's badge out of
band, for htmx; a redirect to the thread without JavaScript.
"""

from uuid import UUID

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from inbox import selectors, services
from inbox.views.pages import TEMPLATE, conversation_id_or_404, render_page


def _status_changed(request: HttpRequest, outcome: services.Outcome, ident: UUID) -> HttpResponse:
    if outcome.result == services.Result.NOT_FOUND:
        raise Http404("no such conversation")
    if not request.htmx:
        return redirect(reverse("inbox:conversation", args=[ident]), permanent=False)
    conversation = selectors.conversation_get(conversation_id=ident)
    return render_page(request, f"{TEMPLATE}#status-changed", {"conversation": conversation})


@require_POST
@login_required
def conversation_close(request: HttpRequest, conversation_id: str) -> HttpResponse:
    ident = conversation_id_or_404(conversation_id)
    outcome = services.conversation_close_by_agent(conversation_id=ident, agent=request.user)
    return _status_changed(request, outcome, ident)


@require_POST
@login_required
def conversation_reopen(request: HttpRequest, conversation_id: str) -> HttpResponse:
    ident = conversation_id_or_404(conversation_id)
    outcome = services.conversation_reopen(conversation_id=ident, agent=request.user)
    return _status_changed(request, outcome, ident)


@require_POST
@login_required
def contact_rename(request: HttpRequest, conversation_id: str) -> HttpResponse:
    ident = conversation_id_or_404(conversation_id)
    outcome = services.contact_rename(
        conversation_id=ident, name=request.POST.get("name", ""), agent=request.user
    )
    return _status_changed(request, outcome, ident)


@require_POST
@login_required
def conversation_assign(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """`assignee`: "me", an agent's username, or empty for nobody."""
    ident = conversation_id_or_404(conversation_id)
    wanted = request.POST.get("assignee", "").strip()
    assignee = None
    if wanted == "me":
        assignee = request.user
    elif wanted:
        assignee = get_user_model().objects.filter(username=wanted, is_active=True).first()
        if assignee is None:
            return HttpResponse(
                f"no active agent {wanted!r}", status=400, content_type="text/plain"
            )
    outcome = services.conversation_assign(
        conversation_id=ident, assignee=assignee, by=request.user
    )
    return _status_changed(request, outcome, ident)
