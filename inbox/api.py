"""The JSON read API, for logged-in agents."""

from collections.abc import Callable
from functools import wraps
from uuid import UUID

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from inbox import selectors
from inbox.models import Conversation, Message, Note


def agent_required_json(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Like login_required, but an API caller gets a 401 JSON answer, not a redirect."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not request.user.is_authenticated:
            return JsonResponse(
                {"error": "authentication_required", "detail": "log in as an agent first"},
                status=401,
            )
        return view(request, *args, **kwargs)

    return wrapped


def conversation_summary(conversation: Conversation) -> dict[str, object]:
    return {
        "id": str(conversation.id),
        "status": conversation.status,
        "created_at": conversation.created_at.isoformat(),
        "closed_at": conversation.closed_at.isoformat() if conversation.closed_at else None,
        "last_activity_at": conversation.last_activity_at.isoformat(),
        "message_count": conversation.message_count,
    }


def message_json(message: Message) -> dict[str, object]:
    return {
        "id": str(message.id),
        "direction": message.direction,
        "content": message.content,
        "timestamp": message.timestamp.isoformat(),
        # README, "Replies": SENT for a provider's own SENT message that has no status yet.
        "delivery": message.delivery_state,
        "error": message.error,
        "sent_by": message.sent_by.get_username() if message.sent_by else None,
        # README, "Connect WhatsApp": text, or a WhatsApp kind with its media id, place, ...
        "kind": message.kind,
        "attachment": message.attachment,
    }


def note_json(note: Note) -> dict[str, object]:
    """An internal note (README, "Triage"): agents' only, so apart from the messages."""
    return {
        "id": str(note.id),
        "author": note.author.get_username() if note.author else None,
        "content": note.content,
        "created_at": note.created_at.isoformat(),
    }


def conversation_not_found(conversation_id: object) -> JsonResponse:
    return JsonResponse(
        {"error": "not_found", "detail": f"no conversation {conversation_id}"}, status=404
    )


def conversation_detail_json(conversation_id: str) -> JsonResponse:
    """One conversation with its whole thread; 404 for an unknown or malformed id."""
    try:
        ident = UUID(conversation_id)
    except ValueError:
        return conversation_not_found(conversation_id)
    conversation = selectors.conversation_get(conversation_id=ident)
    if conversation is None:
        return conversation_not_found(conversation_id)
    messages = selectors.thread_messages(conversation_id=ident)
    notes = selectors.thread_notes(conversation_id=ident)
    return JsonResponse(
        {
            **conversation_summary(conversation),
            "messages": [message_json(m) for m in messages],
            "notes": [note_json(n) for n in notes],
        }
    )


@require_GET
@agent_required_json
def conversation_detail(request: HttpRequest, conversation_id: str) -> JsonResponse:
    return conversation_detail_json(conversation_id)


@require_GET
@agent_required_json
def conversation_list(request: HttpRequest) -> JsonResponse:
    status = request.GET.get("status")
    if status is not None and status not in Conversation.Status.values:
        return JsonResponse(
            {
                "error": "invalid_status",
                "detail": f"status must be one of {', '.join(Conversation.Status.values)}",
            },
            status=400,
        )
    try:
        page = selectors.conversation_list(status=status, cursor=request.GET.get("cursor"))
    except selectors.InvalidCursor as exc:
        return JsonResponse({"error": "invalid_cursor", "detail": str(exc)}, status=400)
    next_url = None
    if page.next_cursor:
        query = {"status": status} if status else {}
        next_url = request.build_absolute_uri(
            reverse("inbox:api-conversations")
            + "?"
            + urlencode({**query, "cursor": page.next_cursor})
        )
    return JsonResponse(
        {"results": [conversation_summary(c) for c in page.conversations], "next": next_url}
    )
