"""Triage (README, "Triage"): contacts.

Every column added to inbox_conversation is nullable with no default, so SQLite adds it in
place: a table rebuild would drop the triggers that keep the tab counts
(0004_conversation_counts).
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


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
    ]
