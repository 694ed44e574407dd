from django.urls import path

from inbox import api, intake, views

app_name = "inbox"

urlpatterns = [
    path("", views.index, name="index"),
    path("conversations/", views.index, name="conversations"),
    path("conversations/<str:conversation_id>/", views.conversation_detail, name="conversation"),
    path(
        "conversations/<str:conversation_id>/close/",
        views.conversation_close,
        name="conversation-close",
    ),
    path(
        "conversations/<str:conversation_id>/reopen/",
        views.conversation_reopen,
        name="conversation-reopen",
    ),
    path("webhook/", intake.webhook, name="webhook"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("api/conversations/", api.conversation_list, name="api-conversations"),
    path(
        "api/conversations/<str:conversation_id>/",
        api.conversation_detail,
        name="api-conversation",
    ),
]
