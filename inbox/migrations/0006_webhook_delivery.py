"""Delivery becomes WebhookDelivery, the log of every provider's door, keeping its rows;
`item_count` makes room for batching providers (one row per request, N events)."""

from django.db import migrations, models


def _count_items(apps, schema_editor):
    # A row without an event id logged a body refused before any event could be read.
    WebhookDelivery = apps.get_model("inbox", "WebhookDelivery")
    WebhookDelivery.objects.filter(event_id__isnull=True).update(item_count=0)


class Migration(migrations.Migration):
    dependencies = [("inbox", "0005_held_event_commands")]

    operations = [
        migrations.RenameModel("Delivery", "WebhookDelivery"),
        migrations.AlterModelOptions(
            name="webhookdelivery",
            options={"ordering": ["-id"], "verbose_name_plural": "webhook deliveries"},
        ),
        migrations.AddField(
            model_name="webhookdelivery",
            name="item_count",
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.RunPython(_count_items, migrations.RunPython.noop),
    ]
