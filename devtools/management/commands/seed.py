"""Fill the database with realistic conversations, fast, for scale tests and benchmarks."""

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from devtools.seeding import seed


class Command(BaseCommand):
    help = (
        "Add N conversations holding M messages in all (bulk inserts: minutes, not hours, "
        "for 100,000 / 1,000,000), with exact counters and last-message fields."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--conversations", type=int, default=1000)
        parser.add_argument("--messages", type=int, default=10000)
        parser.add_argument(
            "--largest-thread",
            type=int,
            default=0,
            help="give the first conversation this many messages (a long thread to measure)",
        )
        parser.add_argument(
            "--open-ratio", type=float, default=0.3, help="the share left OPEN; the rest closed"
        )
        parser.add_argument(
            "--seed", dest="random_seed", type=int, default=0, help="the random seed"
        )

    def handle(
        self,
        *args: object,
        conversations: int,
        messages: int,
        largest_thread: int,
        open_ratio: float,
        random_seed: int,
        **options: object,
    ) -> None:
        if not 0 <= open_ratio <= 1:
            raise CommandError("--open-ratio must be between 0 and 1")
        started = time.monotonic()
        verbosity = int(options.get("verbosity", 1))

        def progress(done_conversations: int, done_messages: int) -> None:
            if verbosity >= 1:
                self.stdout.write(
                    f"  {done_conversations:,} conversations, {done_messages:,} messages "
                    f"({time.monotonic() - started:.0f} s)"
                )

        try:
            report = seed(
                conversations=conversations,
                messages=messages,
                largest_thread=largest_thread,
                open_ratio=open_ratio,
                random_seed=random_seed,
                progress=progress,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        elapsed = time.monotonic() - started
        largest = (
            f"; the largest thread is {report.largest_thread}" if report.largest_thread else ""
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"seeded {report.conversations:,} conversations and {report.messages:,} "
                f"messages in {elapsed:.1f} s{largest}"
            )
        )
