from datetime import timedelta

from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.utils import timezone

from inbox.models import (
    Assignment,
    Contact,
    Conversation,
    HeldEvent,
    Message,
    Note,
    OutboundAttempt,
    WebhookDelivery,
    WhatsAppTemplate,
)
from inbox.services.contacts import name_fold


class ReadOnlyAdmin(admin.ModelAdmin):
    """Logs an operator reads but never edits, so they stay what the provider sent."""

    def get_readonly_fields(self, request: object, obj: object = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "status",
        "contact",
        "assignee",
        "waiting_since",
        "created_at",
        "closed_at",
        "last_activity_at",
        "message_count",
    ]
    list_filter = ["status"]
    search_fields = ["id", "contact__name", "contact__phone"]
    raw_id_fields = ["last_message", "contact"]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    """Who the customers are: an operator may correct a name (README, "Triage"). The phone
    is read-only here: it is the contact's identity, in E.164, as the webhook stored it."""

    list_display = ["name", "phone", "created_at"]
    search_fields = ["name", "phone"]
    readonly_fields = ["phone", "name_folded", "created_at"]

    def save_model(self, request: object, obj: Contact, form: object, change: bool) -> None:
        # The search box finds contacts by the folded name: keep it with the name.
        obj.name_folded = name_fold(obj.name)
        super().save_model(request, obj, form, change)


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    """Every change of a conversation's assignee (who, by whom, when): read-only, so the
    record stays what happened."""

    list_display = ["at", "conversation", "assignee", "assigned_by"]
    list_filter = ["assignee"]
    search_fields = ["conversation__id", "assignee__username", "assigned_by__username"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "direction", "timestamp", "delivery", "sent_by"]
    list_filter = ["direction", "delivery"]
    search_fields = ["id", "conversation__id"]
    raw_id_fields = ["conversation"]


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    """Agents' internal notes (README, "Triage"), for an operator to find or remove one."""

    list_display = ["created_at", "conversation", "author"]
    search_fields = ["conversation__id", "author__username", "content"]
    raw_id_fields = ["conversation"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """The provider's deliveries exactly as received: read-only, so the log stays true."""

    list_display = [
        "received_at",
        "event_type",
        "event_id",
        "item_count",
        "status_code",
        "outcome",
    ]
    list_filter = ["event_type", "status_code", "outcome"]
    search_fields = ["event_id"]


@admin.register(OutboundAttempt)
class OutboundAttemptAdmin(ReadOnlyAdmin):
    """Every try at handing a reply to the provider, the outbound twin of the webhook's log:
    read-only, so it says what really happened (README, "Replies")."""

    list_display = ["attempted_at", "message", "status_code", "outcome", "duration_ms", "error"]
    list_filter = ["outcome", "status_code"]
    search_fields = ["message__id"]
    raw_id_fields = ["message"]


class HeldWaitingFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: object, model_admin: object) -> list[tuple[str, str]]:
        return [("waiting", "Waiting for its conversation or message"), ("applied", "Applied")]

    def queryset(self, request: object, queryset: QuerySet) -> QuerySet:
        if self.value() == "waiting":
            return queryset.filter(applied_at__isnull=True)
        if self.value() == "applied":
            return queryset.filter(applied_at__isnull=False)
        return queryset


@admin.register(HeldEvent)
class HeldEventAdmin(ReadOnlyAdmin):
    """Events that arrived before their conversation; never deleted, so nothing is lost."""

    list_display = [
        "received_at",
        "event_type",
        "event_id",
        "conversation_id",
        "message_id",
        "timestamp",
        "applied_at",
        "outcome",
        "overdue",
    ]
    list_filter = [HeldWaitingFilter, "event_type", "outcome"]
    search_fields = ["event_id", "conversation_id", "message_id"]

    @admin.display(boolean=True, description="overdue")
    def overdue(self, obj: HeldEvent) -> bool:
        window = timedelta(seconds=settings.WEBHOOK_REORDER_WINDOW)
        return obj.applied_at is None and obj.received_at < timezone.now() - window


@admin.register(WhatsAppTemplate)
class WhatsAppTemplateAdmin(admin.ModelAdmin):
    """The templates the composer offers once WhatsApp's 24-hour window has closed: each
    as approved in WhatsApp Manager (name, language), its body's parameters one a line."""

    list_display = ["name", "language", "body"]
    search_fields = ["name", "body"]
