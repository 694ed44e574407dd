from django.db import migrations

from inbox.migrations._sql import run_for_vendor

# How many conversations each state holds, kept by the database itself: the inbox's filter
# tabs show these counts on every page, and counting 100,000 rows for each page costs
# 10-15 ms of a 50 ms budget. Triggers on inbox_conversation keep the table exact in the
# same transaction as the change, whichever code makes it (services, admin, seed, a flush
# between tests). It is not a Django model on purpose: `flush` empties the conversations,
# and the triggers then bring the counts to zero themselves.
SQLITE_FORWARD = [
    """CREATE TABLE inbox_conversation_count (
        status varchar(6) NOT NULL PRIMARY KEY, n integer NOT NULL)""",
    """INSERT INTO inbox_conversation_count (status, n)
        SELECT status, count(*) FROM inbox_conversation GROUP BY status""",
    """CREATE TRIGGER inbox_conversation_count_insert AFTER INSERT ON inbox_conversation BEGIN
        INSERT INTO inbox_conversation_count (status, n) VALUES (new.status, 1)
            ON CONFLICT (status) DO UPDATE SET n = n + 1;
    END""",
    """CREATE TRIGGER inbox_conversation_count_delete AFTER DELETE ON inbox_conversation BEGIN
        UPDATE inbox_conversation_count SET n = n - 1 WHERE status = old.status;
    END""",
    """CREATE TRIGGER inbox_conversation_count_update AFTER UPDATE OF status ON inbox_conversation
        WHEN old.status <> new.status BEGIN
        UPDATE inbox_conversation_count SET n = n - 1 WHERE status = old.status;
        INSERT INTO inbox_conversation_count (status, n) VALUES (new.status, 1)
            ON CONFLICT (status) DO UPDATE SET n = n + 1;
    END""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS inbox_conversation_count_update",
    "DROP TRIGGER IF EXISTS inbox_conversation_count_delete",
    "DROP TRIGGER IF EXISTS inbox_conversation_count_insert",
    "DROP TABLE IF EXISTS inbox_conversation_count",
]

# PostgreSQL: statement-level triggers over the transition tables, so a COPY of 100,000
# conversations (seed) is one update of the counts, not 100,000 updates of the same row.
# An UPDATE that leaves every state as it was (each new message updates its conversation)
# writes nothing: the HAVING drops zero changes, so messages never queue on this row.
# (PostgreSQL allows no `UPDATE OF status` column list on a trigger with transition
# tables, so it runs for every UPDATE: one small aggregate over the rows it changed.)
POSTGRESQL_FORWARD = [
    """CREATE TABLE IF NOT EXISTS inbox_conversation_count (
        status varchar(6) NOT NULL PRIMARY KEY, n bigint NOT NULL)""",
    """INSERT INTO inbox_conversation_count (status, n)
        SELECT status, count(*) FROM inbox_conversation GROUP BY status
        ON CONFLICT (status) DO UPDATE SET n = excluded.n""",
    """CREATE OR REPLACE FUNCTION inbox_conversation_count_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
    BEGIN
        -- Each branch names only the transition tables its operation has.
        IF TG_OP = 'TRUNCATE' THEN
            DELETE FROM inbox_conversation_count;
        ELSIF TG_OP = 'INSERT' THEN
            INSERT INTO inbox_conversation_count AS counted (status, n)
                SELECT status, count(*) FROM new_rows GROUP BY status
                ON CONFLICT (status) DO UPDATE SET n = counted.n + excluded.n;
        ELSIF TG_OP = 'DELETE' THEN
            UPDATE inbox_conversation_count AS counted SET n = counted.n - gone.n
                FROM (SELECT status, count(*) AS n FROM old_rows GROUP BY status) AS gone
                WHERE counted.status = gone.status;
        ELSE
            INSERT INTO inbox_conversation_count AS counted (status, n)
                SELECT status, sum(delta) FROM (
                    SELECT status, 1 AS delta FROM new_rows
                    UNION ALL SELECT status, -1 FROM old_rows
                ) AS changes GROUP BY status HAVING sum(delta) <> 0
                ON CONFLICT (status) DO UPDATE SET n = counted.n + excluded.n;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER inbox_conversation_count_insert AFTER INSERT ON inbox_conversation
        REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION inbox_conversation_count_change()""",
    """CREATE TRIGGER inbox_conversation_count_delete AFTER DELETE ON inbox_conversation
        REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION inbox_conversation_count_change()""",
    """CREATE TRIGGER inbox_conversation_count_update AFTER UPDATE ON inbox_conversation
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION inbox_conversation_count_change()""",
    """CREATE TRIGGER inbox_conversation_count_truncate AFTER TRUNCATE ON inbox_conversation
        FOR EACH STATEMENT EXECUTE FUNCTION inbox_conversation_count_change()""",
]
POSTGRESQL_BACKWARD = [
    "DROP TRIGGER IF EXISTS inbox_conversation_count_truncate ON inbox_conversation",
    "DROP TRIGGER IF EXISTS inbox_conversation_count_update ON inbox_conversation",
    "DROP TRIGGER IF EXISTS inbox_conversation_count_delete ON inbox_conversation",
    "DROP TRIGGER IF EXISTS inbox_conversation_count_insert ON inbox_conversation",
    "DROP FUNCTION IF EXISTS inbox_conversation_count_change()",
    "DROP TABLE IF EXISTS inbox_conversation_count",
]


class Migration(migrations.Migration):
    dependencies = [("inbox", "0003_search_vector")]

    operations = [
        migrations.RunPython(
            run_for_vendor({"sqlite": SQLITE_FORWARD, "postgresql": POSTGRESQL_FORWARD}),
            run_for_vendor({"sqlite": SQLITE_BACKWARD, "postgresql": POSTGRESQL_BACKWARD}),
        )
    ]
