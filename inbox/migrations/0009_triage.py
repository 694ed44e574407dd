"""Triage (README, "Triage"): contacts, waiting, assignment.

Every column added to inbox_conversation is nullable with no default, so SQLite adds it in
place: a table rebuild would drop the triggers that keep the tab counts
(0004_conversation_counts).
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from inbox.migrations._sql import run_for_vendor

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



# Open conversations per assignee (0: nobody), for the Mine and Unassigned tabs: kept by
# triggers in the same transaction as every change, as 0004_conversation_counts keeps the
# states' counts, and for the same reasons (not a model; `flush` empties it by trigger).
SQLITE_ASSIGNEE_FORWARD = [
    """CREATE TABLE inbox_assignee_count (
        assignee_id integer NOT NULL PRIMARY KEY, n integer NOT NULL)""",
    """INSERT INTO inbox_assignee_count (assignee_id, n)
        SELECT coalesce(assignee_id, 0), count(*) FROM inbox_conversation
        WHERE status = 'OPEN' GROUP BY coalesce(assignee_id, 0)""",
    """CREATE TRIGGER inbox_assignee_count_insert AFTER INSERT ON inbox_conversation
        WHEN new.status = 'OPEN' BEGIN
        INSERT INTO inbox_assignee_count (assignee_id, n) VALUES (coalesce(new.assignee_id, 0), 1)
            ON CONFLICT (assignee_id) DO UPDATE SET n = n + 1;
    END""",
    """CREATE TRIGGER inbox_assignee_count_delete AFTER DELETE ON inbox_conversation
        WHEN old.status = 'OPEN' BEGIN
        UPDATE inbox_assignee_count SET n = n - 1 WHERE assignee_id = coalesce(old.assignee_id, 0);
    END""",
    """CREATE TRIGGER inbox_assignee_count_update AFTER UPDATE OF status, assignee_id
        ON inbox_conversation
        WHEN old.status <> new.status
            OR coalesce(old.assignee_id, 0) <> coalesce(new.assignee_id, 0) BEGIN
        UPDATE inbox_assignee_count SET n = n - 1
            WHERE old.status = 'OPEN' AND assignee_id = coalesce(old.assignee_id, 0);
        INSERT INTO inbox_assignee_count (assignee_id, n)
            SELECT coalesce(new.assignee_id, 0), 1 WHERE new.status = 'OPEN'
            ON CONFLICT (assignee_id) DO UPDATE SET n = n + 1;
    END""",
]
SQLITE_ASSIGNEE_BACKWARD = [
    "DROP TRIGGER IF EXISTS inbox_assignee_count_update",
    "DROP TRIGGER IF EXISTS inbox_assignee_count_delete",
    "DROP TRIGGER IF EXISTS inbox_assignee_count_insert",
    "DROP TABLE IF EXISTS inbox_assignee_count",
]
# Statement-level over the transition tables, as in 0004: an UPDATE that changes no open
# conversation's assignee (every new message) writes nothing.
POSTGRESQL_ASSIGNEE_FORWARD = [
    """CREATE TABLE IF NOT EXISTS inbox_assignee_count (
        assignee_id integer NOT NULL PRIMARY KEY, n bigint NOT NULL)""",
    """INSERT INTO inbox_assignee_count (assignee_id, n)
        SELECT coalesce(assignee_id, 0), count(*) FROM inbox_conversation
        WHERE status = 'OPEN' GROUP BY coalesce(assignee_id, 0)
        ON CONFLICT (assignee_id) DO UPDATE SET n = excluded.n""",
    """CREATE OR REPLACE FUNCTION inbox_assignee_count_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            DELETE FROM inbox_assignee_count;
        ELSIF TG_OP = 'INSERT' THEN
            INSERT INTO inbox_assignee_count AS counted (assignee_id, n)
                SELECT coalesce(assignee_id, 0), count(*) FROM new_rows
                WHERE status = 'OPEN' GROUP BY coalesce(assignee_id, 0)
                ON CONFLICT (assignee_id) DO UPDATE SET n = counted.n + excluded.n;
        ELSIF TG_OP = 'DELETE' THEN
            UPDATE inbox_assignee_count AS counted SET n = counted.n - gone.n
                FROM (SELECT coalesce(assignee_id, 0) AS assignee_id, count(*) AS n
                      FROM old_rows WHERE status = 'OPEN'
                      GROUP BY coalesce(assignee_id, 0)) AS gone
                WHERE counted.assignee_id = gone.assignee_id;
        ELSE
            INSERT INTO inbox_assignee_count AS counted (assignee_id, n)
                SELECT assignee_id, sum(delta) FROM (
                    SELECT coalesce(assignee_id, 0) AS assignee_id, 1 AS delta
                        FROM new_rows WHERE status = 'OPEN'
                    UNION ALL SELECT coalesce(assignee_id, 0), -1
                        FROM old_rows WHERE status = 'OPEN'
                ) AS changes GROUP BY assignee_id HAVING sum(delta) <> 0
                ON CONFLICT (assignee_id) DO UPDATE SET n = counted.n + excluded.n;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER inbox_assignee_count_insert AFTER INSERT ON inbox_conversation
        REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION inbox_assignee_count_change()""",
    """CREATE TRIGGER inbox_assignee_count_delete AFTER DELETE ON inbox_conversation
        REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION inbox_assignee_count_change()""",
    """CREATE TRIGGER inbox_assignee_count_update AFTER UPDATE ON inbox_conversation
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION inbox_assignee_count_change()""",
    """CREATE TRIGGER inbox_assignee_count_truncate AFTER TRUNCATE ON inbox_conversation
        FOR EACH STATEMENT EXECUTE FUNCTION inbox_assignee_count_change()""",
]
POSTGRESQL_ASSIGNEE_BACKWARD = [
    "DROP TRIGGER IF EXISTS inbox_assignee_count_truncate ON inbox_conversation",
    "DROP TRIGGER IF EXISTS inbox_assignee_count_update ON inbox_conversation",
    "DROP TRIGGER IF EXISTS inbox_assignee_count_delete ON inbox_conversation",
    "DROP TRIGGER IF EXISTS inbox_assignee_count_insert ON inbox_conversation",
    "DROP FUNCTION IF EXISTS inbox_assignee_count_change()",
    "DROP TABLE IF EXISTS inbox_assignee_count",
]


class Migration(migrations.Migration):

    dependencies = [
        ('inbox', '0008_replies'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
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
        migrations.CreateModel(
            name='Assignment',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
        ),
        migrations.AddField(
            model_name='conversation',
            name='assigned_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='conversation',
            name='assignee',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddIndex(
            model_name='conversation',
            index=models.Index(fields=['assignee', 'status', '-last_activity_at', '-id'], name='conversation_assignee'),
        ),
        migrations.AddField(
            model_name='assignment',
            name='assigned_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='assignment',
            name='assignee',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='assignment',
            name='conversation',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='assignments', to='inbox.conversation'),
        ),
        migrations.AddIndex(
            model_name='assignment',
            index=models.Index(fields=['conversation', 'at'], name='assignment_conversation'),
        ),
        migrations.RunPython(
            run_for_vendor(
                {"sqlite": SQLITE_ASSIGNEE_FORWARD, "postgresql": POSTGRESQL_ASSIGNEE_FORWARD}
            ),
            run_for_vendor(
                {"sqlite": SQLITE_ASSIGNEE_BACKWARD, "postgresql": POSTGRESQL_ASSIGNEE_BACKWARD}
            ),
        ),
    ]
