"""Held rows store domain commands (`inbox.commands.command_dump`), not the generic
provider's wire events: the services that apply them no longer know any wire format.

The conversion is plain dict work, on purpose: a migration must not import the provider
schema (which changes) nor validate (a row held years ago was valid when it was held).
"""

from django.db import migrations


def wire_to_command(payload: dict) -> dict:
    """A held wire event as the command it stands for; a command is left as it is."""
    if "command" in payload:
        return payload
    data = payload["data"]
    if payload["type"] == "NEW_MESSAGE":
        return {
            "command": "AddMessage",
            "message_id": data["id"],
            "conversation_id": data["conversation_id"],
            "direction": data["direction"],
            "content": data["content"],
            "timestamp": payload["timestamp"],
        }
    return {
        "command": "CloseConversation",
        "conversation_id": data["id"],
        "timestamp": payload["timestamp"],
    }


def command_to_wire(payload: dict) -> dict:
    if "command" not in payload:
        return payload
    if payload["command"] == "AddMessage":
        return {
            "type": "NEW_MESSAGE",
            "timestamp": payload["timestamp"],
            "data": {
                "id": payload["message_id"],
                "direction": payload["direction"],
                "content": payload["content"],
                "conversation_id": payload["conversation_id"],
            },
        }
    return {
        "type": "CLOSE_CONVERSATION",
        "timestamp": payload["timestamp"],
        "data": {"id": payload["conversation_id"]},
    }


def _convert(convert):
    def run(apps, schema_editor):
        HeldEvent = apps.get_model("inbox", "HeldEvent")
        for row in HeldEvent.objects.only("id", "payload").iterator(chunk_size=500):
            converted = convert(row.payload)
            if converted != row.payload:
                HeldEvent.objects.filter(pk=row.pk).update(payload=converted)

    return run


class Migration(migrations.Migration):
    dependencies = [("inbox", "0004_conversation_counts")]

    operations = [
        migrations.RunPython(_convert(wire_to_command), _convert(command_to_wire)),
    ]
