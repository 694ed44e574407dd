"""Triage (README, "Triage"): contacts, waiting.

Every column added to inbox_conversation is nullable with no default, so SQLite adds it in
place: a table rebuild would drop the triggers that keep the tab counts
(0004_conversation_counts).
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

# Conversations already stored: waiting since the customer's first message after our last,
# when the newest is theirs.
BACKFILL_WAITING = """
UPDATE inbox_conversation SET waiting_since = (
    SELECT MIN(m.timestamp) FROM inbox_message AS m
    WHERE m.conversation_id = inbox_conversation.id AND m.direction = 'RECEIVED'
    AND NOT EXISTS (
        SELECT 1 FROM inbox_message AS s
        WHERE s.conversation_id = inbox_conversation.id AND s.direction = 'SENT'
        AND s.timestamp >= m.timestamp
    )
)
WHERE last_message_id IN (SELECT id FROM inbox_message WHERE direction = 'RECEIVED')
"""


class Migration(migrations.Migration):

    dependencies = [
        ('inbox', '0007_message_provider_id'),
    ]

    operations = [
        migrations.CreateModel(
            name='Contact',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(blank=True, max_length=200)),
                ('phone', models.CharField(blank=True, max_length=16, null=True, unique=True)),
                ('name_folded', models.CharField(blank=True, editable=False, max_length=200)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
        ),
        migrations.AddField(
            model_name='conversation',
            name='contact',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='conversations', to='inbox.contact'),
        ),
        migrations.AddField(
            model_name='conversation',
            name='waiting_since',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name='conversation',
            index=models.Index(condition=models.Q(('status', 'OPEN'), ('waiting_since__isnull', False)), fields=['waiting_since', 'id'], name='conversation_waiting'),
        ),
        migrations.RunSQL(BACKFILL_WAITING, migrations.RunSQL.noop),
    ]
