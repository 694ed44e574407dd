"""The WhatsApp channel (README, "Connect WhatsApp"): a conversation's channel and customer
(`wa_id`, their last WhatsApp profile name), a message's kind and attachment, the templates.

The NOT NULL columns with a constant default are added by hand, as 0007 does: Django's
SQLite backend would rebuild inbox_conversation and inbox_message to add them, and a rebuild
drops the triggers that keep the state counts (0004) and the FTS5 index (0002) in step, so
the tabs and search would silently go wrong. Both databases add such a column in place and
keep the default (the model's db_default). The nullable ones Django adds in place itself.
"""

from django.db import migrations, models

from inbox.migrations._sql import run_for_vendor

ADD = [
    "ALTER TABLE inbox_conversation ADD COLUMN channel varchar(16) DEFAULT 'generic' NOT NULL",
    "ALTER TABLE inbox_conversation ADD COLUMN wa_name varchar(200) DEFAULT '' NOT NULL",
    "ALTER TABLE inbox_message ADD COLUMN kind varchar(16) DEFAULT 'text' NOT NULL",
]
DROP = [
    "ALTER TABLE inbox_conversation DROP COLUMN channel",
    "ALTER TABLE inbox_conversation DROP COLUMN wa_name",
    "ALTER TABLE inbox_message DROP COLUMN kind",
]


class Migration(migrations.Migration):
    dependencies = [("inbox", "0009_triage")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="conversation",
                    name="channel",
                    field=models.CharField(db_default="generic", default="generic", max_length=16),
                ),
                migrations.AddField(
                    model_name="conversation",
                    name="wa_name",
                    field=models.CharField(blank=True, db_default="", default="", max_length=200),
                ),
                migrations.AddField(
                    model_name="message",
                    name="kind",
                    field=models.CharField(db_default="text", default="text", max_length=16),
                ),
            ],
            database_operations=[
                migrations.RunPython(
                    run_for_vendor({"sqlite": ADD, "postgresql": ADD}),
                    run_for_vendor({"sqlite": DROP, "postgresql": DROP}),
                ),
            ],
        ),
        migrations.AddField(
            model_name="conversation",
            name="wa_id",
            field=models.CharField(blank=True, max_length=32, null=True),
        ),
        migrations.AddField(
            model_name="message",
            name="attachment",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="conversation",
            index=models.Index(
                condition=models.Q(wa_id__isnull=False),
                fields=["wa_id", "status"],
                name="conversation_wa_id",
            ),
        ),
        migrations.CreateModel(
            name="WhatsAppTemplate",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=512)),
                ("language", models.CharField(default="en_US", max_length=16)),
                ("body", models.TextField(blank=True)),
                (
                    "parameters",
                    models.TextField(
                        blank=True,
                        help_text="One label a line, for the body's {{1}}, {{2}}, ... in order.",
                    ),
                ),
            ],
            options={
                "ordering": ["name", "language"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("name", "language"), name="whatsapp_template_once"
                    )
                ],
            },
        ),
    ]
