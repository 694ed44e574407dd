"""Messages keep a provider-side id beside our UUID (WhatsApp's wamids), unique per channel.

`channel` is added by hand: Django's SQLite backend rebuilds a table to add a NOT NULL
column, and rebuilding inbox_message drops the triggers that keep its FTS5 index in step
(0002_inbox_ui), so search would silently stop finding new messages. Both databases add a
column with a constant default in place, and keep the default (the model's db_default).
"""

from django.db import migrations, models

from inbox.migrations._sql import run_for_vendor

ADD_CHANNEL = "ALTER TABLE inbox_message ADD COLUMN channel varchar(16) DEFAULT 'generic' NOT NULL"
DROP_CHANNEL = "ALTER TABLE inbox_message DROP COLUMN channel"


class Migration(migrations.Migration):
    dependencies = [("inbox", "0006_webhook_delivery")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="message",
                    name="channel",
                    field=models.CharField(db_default="generic", default="generic", max_length=16),
                ),
            ],
            database_operations=[
                migrations.RunPython(
                    run_for_vendor({"sqlite": [ADD_CHANNEL], "postgresql": [ADD_CHANNEL]}),
                    run_for_vendor({"sqlite": [DROP_CHANNEL], "postgresql": [DROP_CHANNEL]}),
                ),
            ],
        ),
        migrations.AddField(
            model_name="message",
            name="provider_message_id",
            field=models.CharField(blank=True, max_length=128, null=True),
        ),
        migrations.AddConstraint(
            model_name="message",
            constraint=models.UniqueConstraint(
                condition=models.Q(provider_message_id__isnull=False),
                fields=("channel", "provider_message_id"),
                name="message_provider_id_once",
            ),
        ),
    ]
