from django.contrib import admin

from inbox.models import Conversation, Delivery, Message


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "created_at", "closed_at", "last_activity_at", "message_count"]
    list_filter = ["status"]
    search_fields = ["id"]
    raw_id_fields = ["last_message"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "direction", "timestamp"]
    list_filter = ["direction"]
    search_fields = ["id", "conversation__id"]
    raw_id_fields = ["conversation"]


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """The provider's deliveries exactly as received: read-only, so the log stays true."""

    list_display = ["received_at", "event_type", "event_id", "status_code", "outcome"]
    list_filter = ["event_type", "status_code", "outcome"]
    search_fields = ["event_id"]
    readonly_fields = [f.name for f in Delivery._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
