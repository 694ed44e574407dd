"""`manage.py worker`: runs the replies' delivery jobs (README, "Replies", "The worker").

django-tasks-db's worker, which claims each job with `SELECT ... FOR UPDATE SKIP LOCKED` on
PostgreSQL (so several workers never run one job twice), plus the one thing it lacks: a
worker killed in the middle of a job (SIGKILL, a lost machine) leaves that job RUNNING for
ever. Every `--recover-every` seconds each worker puts delivery jobs RUNNING for longer
than any attempt can last back in the queue, so the reply is still delivered (at least
once: the provider dedupes on its Idempotency-Key). And the live ticks without Redis: with
the in-process channel layer the worker's pushes would reach no socket, so it tells the
server at WORKER_NOTIFY_URL (inbox/live/notify.py).
"""

import logging
import os
import socket
import threading
import time
from datetime import timedelta
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections, connection
from django.utils import timezone
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from inbox import db
from inbox.live import notify
from inbox.tasks import attempt_stale_after, reply_deliver

logger = logging.getLogger("inbox.worker")


def stale_jobs_requeue() -> int:
    """Put back in the queue the delivery jobs whose worker died; how many there were."""
    cutoff = timezone.now() - timedelta(seconds=attempt_stale_after())
    # One UPDATE, atomic by itself: two workers recovering at once requeue each job once.
    with db.write(atomic=False):
        count = DBTaskResult.objects.filter(
            task_path=reply_deliver.module_path,
            status=TaskResultStatus.RUNNING,
            started_at__lt=cutoff,
        ).update(status=TaskResultStatus.READY, started_at=None)
    if count:
        logger.warning("requeued %d delivery job(s) whose worker stopped mid-attempt", count)
    return count


def draining_worker(*, worker_id: str) -> Worker:
    """django-tasks-db's worker on the default queue, set to drain the ready jobs and return
    (`run()`), so the caller decides how to wait between drains."""
    return Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id=worker_id,
        excluded_queue_names=[],
    )


class Command(BaseCommand):
    help = "Run the delivery jobs of agents' replies (one worker; run several on PostgreSQL)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--interval",
            type=float,
            default=0.2,
            help="seconds between polls of an empty queue (default: %(default)s)",
        )
        parser.add_argument(
            "--recover-every",
            type=float,
            default=5.0,
            help="seconds between looks for jobs of dead workers (default: %(default)s)",
        )

    def handle(self, *args: Any, interval: float, recover_every: float, **options: Any) -> None:
        stop = threading.Event()

        def recover() -> None:
            while not stop.wait(recover_every):
                try:
                    stale_jobs_requeue()
                except Exception:
                    logger.exception("recovering stale delivery jobs failed; trying again")
                finally:
                    connection.close()

        self._live_setup()
        stale_jobs_requeue()
        threading.Thread(target=recover, name="stale-jobs", daemon=True).start()
        worker = draining_worker(worker_id=f"{socket.gethostname()}-{os.getpid()}"[:64])
        # Its "starting"/"no more tasks" lines come with every drain; failures still show.
        logging.getLogger("django_tasks_db").setLevel(logging.WARNING)
        worker.configure_signals()
        logger.info("worker %s started", worker.worker_id)
        ready = DBTaskResult.objects.ready().filter(backend_name="default", queue_name="default")
        try:
            while worker.running:
                # A plain read while the queue is empty: django-tasks-db's own poll claims
                # in an exclusive transaction, which on SQLite would take the write lock
                # from the webhook several times a second for nothing.
                if ready.exists():
                    worker.run()
                else:
                    time.sleep(interval)
                close_old_connections()
        finally:
            stop.set()

    def _live_setup(self) -> None:
        if not isinstance(get_channel_layer(), InMemoryChannelLayer):
            return  # channels-redis: the worker publishes to every server like one of them
        if settings.WORKER_NOTIFY_URL:
            notify.worker_notify(settings.WORKER_NOTIFY_URL)
            logger.info("delivery changes are told to the server at %s", settings.WORKER_NOTIFY_URL)
        else:
            logger.warning(
                "neither REDIS_URL nor WORKER_NOTIFY_URL is set: open pages see delivery "
                "changes on reload only"
            )
