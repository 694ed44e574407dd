"""Wait until PostgreSQL and Redis answer, for at most STARTUP_WAIT_TIMEOUT seconds.

bin/start runs this before migrating. Compose's `depends_on: condition: service_healthy`
orders the start under `docker compose up`, but other runners ignore it (podman-compose on
podman < 4.6, an orchestrator starting every container at once, a restarted database): the
app would then race the database and exit on its first migration. Waiting here keeps the
image correct under any runner; a service still unreachable at the deadline stops the start
with its name, so a wrong URL fails loudly instead of hanging.

SQLite and the in-process channel layer need nothing: the command then returns at once.
"""

import logging
import math
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections

logger = logging.getLogger("inbox.startup")

# Seconds between attempts; each attempt is itself bounded by ATTEMPT_TIMEOUT.
RETRY_INTERVAL = 0.5
ATTEMPT_TIMEOUT = 2  # libpq's connect_timeout is whole seconds, at least 2


def _postgresql_check() -> tuple[str, Callable[[], None]] | None:
    wrapper = connections[DEFAULT_DB_ALIAS]
    if wrapper.vendor != "postgresql":
        return None
    database = wrapper.settings_dict
    where = f"{database['HOST'] or 'localhost'}:{database['PORT'] or 5432}"

    def check() -> None:
        # A connection of its own, not the pool's (which would retry in the background),
        # logged in to the app's database: "accepts TCP" is not yet "ready" while the
        # image's entrypoint is still creating the database.
        params = wrapper.get_connection_params()
        params["connect_timeout"] = ATTEMPT_TIMEOUT
        with wrapper.Database.connect(**params) as connection:
            connection.execute("SELECT 1")

    return where, check


def _redis_check() -> tuple[str, Callable[[], None]] | None:
    if not settings.REDIS_URL:
        return None
    url = urlsplit(settings.REDIS_URL)
    where = f"{url.hostname or 'localhost'}:{url.port or 6379}"  # never the password

    def check() -> None:
        client = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_connect_timeout=ATTEMPT_TIMEOUT,
            socket_timeout=ATTEMPT_TIMEOUT,
        )
        try:
            client.ping()
        finally:
            client.close()

    return where, check


class Command(BaseCommand):
    help = (
        "Wait until PostgreSQL and Redis (when configured) answer, up to "
        "STARTUP_WAIT_TIMEOUT seconds; exit 1 naming what is still unreachable."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--timeout",
            type=float,
            default=None,
            help="seconds to wait in all (default: the STARTUP_WAIT_TIMEOUT setting)",
        )

    def handle(self, *args: object, timeout: float | None, **options: object) -> None:
        timeout = settings.STARTUP_WAIT_TIMEOUT if timeout is None else timeout
        pending: dict[str, tuple[str, Callable[[], None]]] = {}
        for name, service in (("PostgreSQL", _postgresql_check()), ("Redis", _redis_check())):
            if service is not None:
                pending[name] = service
                logger.info(
                    "waiting for %s at %s (up to %g s, STARTUP_WAIT_TIMEOUT)",
                    name,
                    service[0],
                    timeout,
                )
        started = time.monotonic()
        errors: dict[str, str] = {}
        while True:
            for name, (where, check) in list(pending.items()):
                try:
                    check()
                except Exception as error:  # any failure means "not yet": keep trying
                    errors[name] = (str(error).strip().splitlines() or [repr(error)])[0]
                    continue
                del pending[name]
                logger.info(
                    "%s at %s is ready after %.1f s", name, where, time.monotonic() - started
                )
            if not pending:
                return
            elapsed = time.monotonic() - started
            if elapsed >= timeout:
                unreachable = "; ".join(
                    f"{name} at {where} ({errors[name]})" for name, (where, _) in pending.items()
                )
                logger.error("still unreachable after %.1f s: %s", elapsed, unreachable)
                raise CommandError(
                    f"gave up after {math.ceil(elapsed)} s (STARTUP_WAIT_TIMEOUT={timeout:g}): "
                    f"unreachable: {unreachable}"
                )
            time.sleep(min(RETRY_INTERVAL, timeout - elapsed))
