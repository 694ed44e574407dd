"""`migrate`, one process at a time across every container that shares the database.

Each app container migrates as it starts (bin/start). Two replicas starting together would
otherwise both apply the same migration and one would fail on "relation already exists";
a PostgreSQL advisory lock makes them take turns, and the second finds nothing left to do.
"""

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections

# Any fixed 64-bit number, the same in every container: the lock's name.
MIGRATE_LOCK_ID = 0x1A7B0C5_0001


class Command(BaseCommand):
    help = "Apply migrations while holding a database-wide lock (PostgreSQL), like `migrate`."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args: object, database: str, **options: object) -> None:
        connection = connections[database]
        migrate = {
            "database": database,
            "interactive": False,
            "verbosity": options["verbosity"],
            # The system checks ran before this; migrate adds the database's own.
            "skip_checks": options["skip_checks"],
            "stdout": self.stdout,
            "stderr": self.stderr,
        }
        if connection.vendor != "postgresql":
            # SQLite serves one host, and its own write lock already serialises migrations.
            call_command("migrate", **migrate)
            return
        # A session lock on the connection migrate then uses; it is released when the
        # session ends, so a container that dies mid-migration does not block the others.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATE_LOCK_ID])
        try:
            call_command("migrate", **migrate)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATE_LOCK_ID])
