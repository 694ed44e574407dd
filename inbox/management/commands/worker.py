"""`manage.py worker`: runs the replies' delivery jobs (README, "Replies", "The worker").

django-tasks-db's worker, which claims each job with `SELECT ... FOR UPDATE SKIP LOCKED` on
PostgreSQL (so several workers never run one job twice), plus what it lacks:

- Concurrency. An attempt mostly waits for the provider's answer, so one attempt at a time
  caps a worker at 1 / (the provider's time) replies a second (20/s at 50 ms). The command
  runs `--concurrency` threads (WORKER_CONCURRENCY), each django-tasks-db's worker with its
  own connection and id, claiming jobs as separate workers would (SKIP LOCKED on
  PostgreSQL; on SQLite each claim is one short exclusive transaction). The main thread
  polls the queue with a plain read and wakes as many idle threads as there are ready jobs.
- Recovery. A worker killed in the middle of a job (SIGKILL, a lost machine) leaves that
  job RUNNING for ever. Every `--recover-every` seconds each worker puts delivery jobs
  RUNNING for longer than any attempt can last back in the queue, so the reply is still
  delivered (at least once: the provider dedupes on its Idempotency-Key).
- The live ticks without Redis: with the in-process channel layer the worker's pushes
  would reach no socket, so it tells the server at WORKER_NOTIFY_URL (inbox/live/notify.py).
"""

import logging
import os
import signal
import socket
import sys
import threading
from datetime import timedelta
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
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


class _Wakeups:
    """The main thread's polls handing ready jobs to idle threads: a poll that saw n ready
    jobs wakes at most n threads, so an idle pool does not race for one job."""

    def __init__(self) -> None:
        self._due = 0
        self._changed = threading.Condition()

    def give(self, count: int) -> None:
        with self._changed:
            self._due = max(self._due, count)
            self._changed.notify(count)

    def take(self, timeout: float) -> bool:
        with self._changed:
            if not self._changed.wait_for(lambda: self._due > 0, timeout):
                return False
            self._due -= 1
            return True


class Command(BaseCommand):
    help = "Run the delivery jobs of agents' replies (one worker; run several on PostgreSQL)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrency",
            type=int,
            default=None,
            help="delivery attempts run at once, in threads (default: WORKER_CONCURRENCY, "
            f"{settings.WORKER_CONCURRENCY})",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=0.05,
            help="seconds between polls of an empty queue (default: %(default)s)",
        )
        parser.add_argument(
            "--recover-every",
            type=float,
            default=5.0,
            help="seconds between looks for jobs of dead workers (default: %(default)s)",
        )

    def handle(
        self,
        *args: Any,
        concurrency: int | None,
        interval: float,
        recover_every: float,
        **options: Any,
    ) -> None:
        concurrency = settings.WORKER_CONCURRENCY if concurrency is None else concurrency
        if not 1 <= concurrency <= 64:
            raise CommandError(f"--concurrency must be 1 to 64, not {concurrency}")
        if interval <= 0:
            raise CommandError(f"--interval must be more than 0 s, not {interval}")
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
        # Its "starting"/"no more tasks" lines come with every drain; failures still show.
        logging.getLogger("django_tasks_db").setLevel(logging.WARNING)
        host = socket.gethostname()[:40]
        workers = [
            draining_worker(worker_id=f"{host}-{os.getpid()}-{n}") for n in range(concurrency)
        ]
        wakeups = _Wakeups()

        def drain(worker: Worker) -> None:
            try:
                while not stop.is_set():
                    if wakeups.take(timeout=1.0):
                        worker.run()
            except Exception:
                logger.exception("worker thread %s failed; stopping", worker.worker_id)
                stop.set()
            finally:
                connection.close()

        def shutdown(signum: int, frame: object) -> None:
            if stop.is_set():
                logger.warning("%s again: stopping now", signal.strsignal(signum))
                sys.exit(1)
            logger.info(
                "%s: finishing the attempts in flight (again to stop now)",
                signal.strsignal(signum),
            )
            for worker in workers:
                worker.running = False  # it returns after its attempt in flight
            stop.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, shutdown)
        threads = [
            threading.Thread(target=drain, args=(w,), name=f"delivery-{n}", daemon=True)
            for n, w in enumerate(workers)
        ]
        for thread in threads:
            thread.start()
        logger.info("worker %s-%s started, %d at once", host, os.getpid(), concurrency)
        try:
            while not stop.is_set():
                # A plain read while the queue is empty: django-tasks-db's own poll claims
                # in an exclusive transaction, which on SQLite would take the write lock
                # from the webhook many times a second for nothing. Built anew each time:
                # ready() fixes "now" when it is called, and a queryset kept from the start
                # never saw a retry (a job due later) come due.
                ready = DBTaskResult.objects.ready().filter(
                    backend_name="default", queue_name="default"
                )
                count = len(ready.values_list("pk", flat=True)[:concurrency])
                if count:
                    wakeups.give(count)
                close_old_connections()
                stop.wait(interval)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
            connection.close()

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
