from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET

from inbox import api, health, intake
from inbox.views import actions, pages

app_name = "inbox"


@require_GET
def conversation(request: HttpRequest, conversation_id: str) -> HttpResponse:
    # One URL: the thread for a browser, the conversation's JSON for a script. Chosen here,
    # where both are wired, so the pages never reach into the API.
    if request.get_preferred_type(["text/html", "application/json"]) == "application/json":
        return api.conversation_detail(request, conversation_id)
    return pages.conversation_page(request, conversation_id)


urlpatterns = [
    path("", pages.index, name="index"),
    path("conversations/", pages.index, name="conversations"),
    path("conversations/<str:conversation_id>/", conversation, name="conversation"),
    path(
        "conversations/<str:conversation_id>/close/",
        actions.conversation_close,
        name="conversation-close",
    ),
    path(
        "conversations/<str:conversation_id>/reopen/",
        actions.conversation_reopen,
        name="conversation-reopen",
    ),
    path(
        "conversations/<str:conversation_id>/messages/",
        actions.message_reply,
        name="message-reply",
    ),
    path(
        "conversations/<str:conversation_id>/messages/<str:message_id>/retry/",
        actions.message_retry,
        name="message-retry",
    ),
    path(
        "conversations/<str:conversation_id>/contact/",
        actions.contact_rename,
        name="conversation-contact",
    ),
    path(
        "conversations/<str:conversation_id>/assign/",
        actions.conversation_assign,
        name="conversation-assign",
    ),
    path("webhook/", intake.webhook, name="webhook"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/conversations/", api.conversation_list, name="api-conversations"),
    path(
        "api/conversations/<str:conversation_id>/",
        api.conversation_detail,
        name="api-conversation",
    ),
]
