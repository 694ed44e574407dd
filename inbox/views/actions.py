"""What agents do to a conversation from its page: close it, reopen it, reply, write a note,
retry a reply, name its contact, assign it, mark it unread.

Parse the id, call the service (which finds and locks the conversation itself, so a view
does not look it up first), render the new state: the header, and the row's badge out of
band, for htmx; a redirect to the thread without JavaScript.
"""

import time
from collections.abc import Callable
from uuid import UUID

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from inbox import selectors, services
from inbox.models import Message
from inbox.views.pages import (
    TEMPLATE,
    composer_context,
    conversation_id_or_404,
    render_page,
    thread_response,
)


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
def message_reply(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """An agent's reply (README "Replies"): stored and queued by the service, or refused
    with its reason in the composer, the draft kept and nothing stored."""
    ident = conversation_id_or_404(conversation_id)
    # A browser sends a textarea's line breaks as CRLF; the customer gets one per line, and
    # the limit counts what they get.
    content = request.POST.get("content", "").replace("\r\n", "\n")
    # Taken before the write, so this answer's bubble never claims to be newer than a push
    # of a later state (live.js keeps the newest; README "Live updates").
    version = time.time_ns() // 1000
    if request.POST.get("mode") == "note":
        # The composer's Note toggle (README, "Triage"): the same box, never sent.
        return _note_answer(request, ident, version, content)
    return _reply_answer(
        request,
        ident,
        version,
        lambda: services.message_reply(conversation_id=ident, content=content, agent=request.user),
        draft=content,
    )


@require_POST
@login_required
def message_template(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """Send one of the business's WhatsApp templates (README, "Connect WhatsApp"): the
    way to reach a customer once the 24-hour window has closed. Answered like a reply."""
    ident = conversation_id_or_404(conversation_id)
    chosen = request.POST.get("template", "")
    version = time.time_ns() // 1000

    def send() -> Message:
        if not chosen.isdigit():
            raise services.ReplyRefused("Choose a template to send.", 400)
        template_id = int(chosen)
        parameters = []
        n = 1
        while f"t{template_id}_p{n}" in request.POST:
            parameters.append(request.POST[f"t{template_id}_p{n}"])
            n += 1
        return services.message_template_send(
            conversation_id=ident,
            template_id=template_id,
            parameters=parameters,
            agent=request.user,
        )

    return _reply_answer(request, ident, version, send)


def _reply_answer(
    request: HttpRequest,
    ident: UUID,
    version: int,
    send: Callable[[], Message],
    *,
    draft: str = "",
) -> HttpResponse:
    """Store a reply (typed or a template) through `send` and answer as the composer does:
    a refusal's reason in the composer with the draft kept, else the new bubble (htmx) or
    the thread (a plain form)."""
    try:
        message = send()
    except services.ReplyRefused as refused:
        return _refused(request, ident, refused, draft=draft)
    return _stored(
        request,
        ident,
        "reply-sent",
        message=message,
        live_key=f"message-{message.id}",
        live_version=version,
        # A reply is the newest message of its thread.
        placement="beforeend:#messages",
        fallback="",
    )


def _stored(
    request: HttpRequest, ident: UUID, partial: str, *, on_note: bool = False, **entry: object
) -> HttpResponse:
    """The composer's answer once what it sent is stored: the thread again for a plain form;
    for htmx the emptied box (still on Note after a note) and the new `entry` in `partial`."""
    if not request.htmx:
        return redirect(reverse("inbox:conversation", args=[ident]), permanent=False)
    conversation = selectors.conversation_get(conversation_id=ident)
    context = {**composer_context(conversation, note=on_note), **entry}
    return render_page(request, f"{TEMPLATE}#{partial}", context)


def _refused(
    request: HttpRequest,
    ident: UUID,
    refused: services.ReplyRefused,
    *,
    draft: str,
    on_note: bool = False,
) -> HttpResponse:
    """The composer again with the refusal's reason and the draft kept: swapped in place for
    htmx, or the whole thread for a plain form; 404 when there is no such conversation."""
    conversation = selectors.conversation_get(conversation_id=ident)
    if conversation is None:
        raise Http404("no such conversation") from None
    composer = composer_context(
        conversation, content=draft, error=str(refused.reason), note=on_note
    )
    if request.htmx:
        return render_page(request, f"{TEMPLATE}#composer", composer, status=refused.status)
    return thread_response(request, conversation, composer=composer, status=refused.status)


def _note_answer(request: HttpRequest, ident: UUID, version: int, content: str) -> HttpResponse:
    """Store an internal note and answer as the composer does for a reply: a refusal's
    reason with the draft kept, else the note in the thread and the box, still on Note."""
    try:
        note = services.note_add(conversation_id=ident, content=content, agent=request.user)
    except services.ReplyRefused as refused:
        return _refused(request, ident, refused, draft=content, on_note=True)
    return _stored(
        request,
        ident,
        "note-added",
        on_note=True,
        note=note,
        live_key=f"note-{note.id}",
        live_version=version,
    )


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
def message_retry(request: HttpRequest, conversation_id: str, message_id: str) -> HttpResponse:
    """Send a FAILED reply again (same id); its bubble changes live, as every delivery state
    does, so htmx needs nothing back but the status."""
    ident = conversation_id_or_404(conversation_id)
    try:
        message = UUID(message_id)
    except ValueError:
        raise Http404("no such message") from None
    try:
        services.message_retry(message_id=message, agent=request.user)
    except services.ReplyRefused as refused:
        if request.htmx:
            return HttpResponse(str(refused.reason), status=refused.status)
        conversation = selectors.conversation_get(conversation_id=ident)
        if conversation is None:
            raise Http404("no such conversation") from None
        composer = composer_context(conversation, error=str(refused.reason))
        return thread_response(request, conversation, composer=composer, status=refused.status)
    if not request.htmx:
        return redirect(reverse("inbox:conversation", args=[ident]), permanent=False)
    return HttpResponse(status=204)


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


@require_POST
@login_required
def conversation_mark_unread(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """ "Mark as unread": back to the list, where the row is bold again for this agent alone
    (an agent still looking at the thread would read it again at the next message)."""
    ident = conversation_id_or_404(conversation_id)
    if not services.conversation_mark_unread(conversation_id=ident, agent_id=request.user.pk):
        raise Http404("no such conversation")
    return redirect(reverse("inbox:index"), permanent=False)
