"""3. The inbox at scale: server time and query count of the list, search and thread views.

Run in-process, in its own process (`python -m bench.inbox_scale`, with DATABASE_URL set to
a seeded database): Django's test client calls the full stack (middleware, view, ORM,
template) without a network, and `CaptureQueriesContext` counts the queries. The time is
the server's own work per request, the part the inbox's goals are about.

A view this build does not have yet (a filter that is ignored, a search that matches
everything) is reported as not available rather than timed.
"""

import argparse
import json
import os
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

ROW_TAG = re.compile(r'<[^>]*\bid="conversation-[0-9a-f-]{36}"[^>]*>')
STATUS = re.compile(r'\bdata-status="(OPEN|CLOSED)"')
ROW_ID = re.compile(r'id="conversation-[0-9a-f-]{36}"')
MESSAGE = re.compile(r'id="message-[0-9a-f-]{36}"')
SEARCH_WORD = "premium"  # in the seeded texts in both languages
NO_MATCH = "zzqxjkvw"
ORDER_NUMBER = re.compile(r"\b\d{5}\b")  # seeded texts cite order numbers: rare words


@dataclass
class View:
    name: str
    path: str
    headers: dict
    # Returns a note when the answer shows the feature is missing from this build, else None.
    missing: Callable[[str], str | None]
    goal_ms: float | None = None


def _rows(html: str) -> list[str]:
    """The data-status of every conversation row, whatever the order of its attributes."""
    return [m[1] for tag in ROW_TAG.findall(html) if (m := STATUS.search(tag))]


def _filter_missing(state: str) -> Callable[[str], str | None]:
    def check(html: str) -> str | None:
        rows = _rows(html)
        if not rows:
            return "no rows carry data-status"
        if any(s != state for s in rows):
            return "the filter is not available in this build (other states listed)"
        return None

    return check


def _always(html: str) -> str | None:
    return None


def _assignee_missing(html: str) -> str | None:
    if "data-assignee=" not in html:
        return "assignment is not available in this build"
    return None if ROW_ID.search(html) else "no rows"


def _waiting_missing(html: str) -> str | None:
    if "data-waiting-since=" not in html:
        return "the waiting sort is not available in this build"
    return None if ROW_ID.search(html) else "no rows"


def _assign_some(agent: object) -> None:
    """Give the bench's agent one open conversation in a hundred, as a team of agents each
    would have, so that Mine lists rows (the database keeps the tabs' counts by trigger)."""
    from inbox.models import Conversation

    if not hasattr(Conversation, "assignee"):
        return
    if Conversation.objects.filter(assignee=agent).exists():
        return
    open_ids = Conversation.objects.filter(status="OPEN").values_list("id", flat=True)
    chosen = list(open_ids.order_by("id"))[::100]
    Conversation.objects.filter(id__in=chosen).update(assignee=agent)


def _views(big: str, cursor: str | None, search_ok: str | None, rare: str | None) -> list[View]:
    json_accept = {"HTTP_ACCEPT": "application/json"}
    views = [
        View(
            "list, first page",
            "/conversations/",
            {},
            lambda h: None if ROW_ID.search(h) else "no rows",
            50,
        ),
        View("list ?status=open", "/conversations/?status=open", {}, _filter_missing("OPEN"), 50),
        View(
            "list ?status=closed",
            "/conversations/?status=closed",
            {},
            _filter_missing("CLOSED"),
            50,
        ),
        View("list ?status=all", "/conversations/?status=all", {}, _always, 50),
        # Triage (README, "Triage"): the Mine and Unassigned tabs, the waiting sort.
        View("list Mine ?assignee=me", "/conversations/?assignee=me", {}, _assignee_missing, 50),
        View(
            "list Unassigned ?assignee=none",
            "/conversations/?assignee=none",
            {},
            _assignee_missing,
            50,
        ),
        View("list ?sort=waiting", "/conversations/?sort=waiting", {}, _waiting_missing, 50),
        View(
            f"search ?q={SEARCH_WORD}",
            f"/conversations/?status=all&q={SEARCH_WORD}",
            {},
            lambda h: search_ok,
            100,
        ),
        # The two plans of inbox/selectors/search.py: a common word walks the list, a rare one (or
        # one found nowhere) lists its matches.
        View(
            f"search, no match ?q={NO_MATCH}",
            f"/conversations/?status=all&q={NO_MATCH}",
            {},
            lambda h: search_ok,
            100,
        ),
        *(
            [
                View(
                    f"search, a rare word ?q={rare}",
                    f"/conversations/?status=all&q={rare}",
                    {},
                    lambda h: search_ok or (None if ROW_ID.search(h) else "no rows"),
                    100,
                )
            ]
            if rare
            else []
        ),
        View("thread of the largest conversation", f"/conversations/{big}/", {}, _always, 50),
        View("API list ?status=OPEN", "/api/conversations/?status=OPEN", json_accept, _always),
        View("API thread, whole (JSON)", f"/api/conversations/{big}/", json_accept, _always),
    ]
    if cursor:
        views.insert(
            len(views) - 1,  # before the whole thread
            View("API list, page 2", f"/api/conversations/?cursor={cursor}", json_accept, _always),
        )
    return views


def measure(*, budget_seconds: float, max_samples: int, count_only: bool) -> dict:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from inbox.models import Conversation, Message

    user_model = get_user_model()
    agent, _ = user_model.objects.get_or_create(username="bench-agent")
    client = Client()
    client.force_login(agent)
    _assign_some(agent)

    big = Conversation.objects.order_by("-message_count").values_list("id", "message_count").first()
    if big is None:
        raise SystemExit("the database is empty: seed it first")
    first = client.get("/api/conversations/", HTTP_ACCEPT="application/json")
    next_url = first.json().get("next") if first.status_code == 200 else None
    cursor = next_url.split("cursor=", 1)[1] if next_url and "cursor=" in next_url else None

    # The search is there if a word found nowhere lists no rows while a common one lists some.
    no_match = client.get(f"/conversations/?status=all&q={NO_MATCH}").content.decode()
    match = client.get(f"/conversations/?status=all&q={SEARCH_WORD}").content.decode()
    search_ok = None
    if ROW_ID.search(no_match) or not ROW_ID.search(match):
        search_ok = "search is not available in this build (?q= does not filter the list)"

    results = []
    # A word in a message or two: an order number from some message.
    sample = Message.objects.values_list("content", flat=True)[:2000]
    rare = next((m[0] for text in sample if (m := ORDER_NUMBER.search(text))), None)

    for view in _views(str(big[0]), cursor, search_ok, rare):
        response = client.get(view.path, **view.headers)
        body = response.content.decode(errors="replace")
        entry = {
            "name": view.name,
            "path": view.path,
            "status": response.status_code,
            "goal_ms": view.goal_ms,
        }
        note = None if response.status_code == 200 else f"HTTP {response.status_code}"
        note = note or view.missing(body)
        if note:
            entry.update(available=False, note=note)
            results.append(entry)
            continue
        with CaptureQueriesContext(connection) as queries:
            client.get(view.path, **view.headers)
        entry.update(
            available=True,
            queries=len(queries.captured_queries),
            rows=len(ROW_ID.findall(body)),
            messages=len(MESSAGE.findall(body)) or body.count('"direction"'),
        )
        if not count_only:
            samples = []
            deadline = time.perf_counter() + budget_seconds
            while len(samples) < max_samples and (
                len(samples) < 5 or time.perf_counter() < deadline
            ):
                started = time.perf_counter()
                client.get(view.path, **view.headers)
                samples.append((time.perf_counter() - started) * 1000)
            from bench.stats import summarize

            entry.update({f"{k}_ms" if k != "n" else k: v for k, v in summarize(samples).items()})
        results.append(entry)
    return {
        "database": connection.vendor,
        "conversations": Conversation.objects.count(),
        "messages": Message.objects.count(),
        "largest_thread_messages": big[1],
        "views": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--budget", type=float, default=3.0, help="seconds of samples per view")
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--count-only", action="store_true", help="query counts, no timing")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    # WhiteNoise warns that STATIC_ROOT is missing (no collectstatic): irrelevant here.
    warnings.filterwarnings("ignore", message="No directory at")
    result = measure(
        budget_seconds=args.budget, max_samples=args.samples, count_only=args.count_only
    )
    with open(args.out, "w") as out:
        json.dump(result, out, indent=2)


if __name__ == "__main__":
    main()
