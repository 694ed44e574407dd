from django.db import migrations

from inbox.migrations._sql import run_for_vendor

# PostgreSQL: the searchable text of each message, stored once at insert in a generated
# column instead of recomputed from the content wherever the search reads a row. The broad
# search (inbox/selectors/search.py) checks the messages of each conversation it walks: with the
# expression index of 0002 each check recomputed to_tsvector(unaccent(content)), about
# 10 µs a message; the stored column makes it a comparison. The column's GIN index replaces
# the expression index. Adding the column rewrites inbox_message (about 20 s a million
# messages), once. A later migration changing the type of `content` must drop the column
# first (PostgreSQL refuses to alter a column a generated one reads), then add it back.
# SQLite's FTS5 table already holds what its search reads.
POSTGRESQL_FORWARD = [
    """ALTER TABLE inbox_message ADD COLUMN IF NOT EXISTS search_vector tsvector
        GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, inbox_unaccent(content))) STORED""",
    "CREATE INDEX IF NOT EXISTS message_search_vector ON inbox_message USING gin (search_vector)",
    "DROP INDEX IF EXISTS message_content_search",
]
POSTGRESQL_BACKWARD = [
    """CREATE INDEX IF NOT EXISTS message_content_search ON inbox_message
        USING gin (to_tsvector('simple'::regconfig, inbox_unaccent(content)))""",
    "DROP INDEX IF EXISTS message_search_vector",
    "ALTER TABLE inbox_message DROP COLUMN IF EXISTS search_vector",
]


class Migration(migrations.Migration):
    dependencies = [("inbox", "0002_inbox_ui")]

    operations = [
        migrations.RunPython(
            run_for_vendor({"postgresql": POSTGRESQL_FORWARD}),
            run_for_vendor({"postgresql": POSTGRESQL_BACKWARD}),
        )
    ]
