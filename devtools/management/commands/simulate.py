"""Play realistic conversations against a running server's webhook, like a provider would."""

import hashlib
import hmac
import http.client
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from devtools import whatsapp
from devtools.simulator import DemoProvider, StandIn, conversation_events


class _Webhook:
    """One kept-alive HTTP connection to the webhook, reopened when the server drops it."""

    def __init__(self, url: str, secret: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise CommandError(f"--url must be http(s)://host[:port], not {url!r}")
        self.url = url
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        self.base = parts.path.rstrip("/")
        self.secret = secret
        self.timeout = timeout
        self.connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=self.timeout)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if body is not None and self.secret:
            digest = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Hub-Signature-256"] = f"sha256={digest}"
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = self._connect()
            try:
                self.connection.request(method, self.base + path, body=body, headers=headers)
                response = self.connection.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException):
                # A kept-alive connection the server closed: one fresh retry, then give up.
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def post_event(self, event: dict) -> tuple[int, bytes]:
        return self.request("POST", "/webhook/", json.dumps(event).encode())

    def post_envelope(self, body: dict) -> tuple[int, bytes]:
        return self.request("POST", "/webhook/whatsapp/", json.dumps(body).encode())

    def wait_until_up(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise CommandError(f"no server answered /healthz in {seconds:g} s")
            self.connection = None
            time.sleep(0.2)


def _local(url: str) -> str:
    return url if urlsplit(url).hostname in {"127.0.0.1", "localhost", "::1"} else ""


def _local_provider_url() -> str:
    """PROVIDER_URL when it names this machine (the demo's): the simulator serves it then."""
    provider_url = settings.PROVIDER_URL
    if urlsplit(provider_url).hostname in {"127.0.0.1", "localhost", "::1"}:
        return provider_url
    return ""


class Command(BaseCommand):
    help = (
        "Play realistic conversations (Portuguese and English) against a server's webhook: "
        "customers write, the business answers, conversations close. Signed with "
        "WEBHOOK_SECRET when it is set."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server's base URL")
        parser.add_argument("--conversations", type=int, default=20, help="how many to play")
        parser.add_argument(
            "--rate", type=float, default=2.0, help="events per second; 0 sends as fast as possible"
        )
        parser.add_argument(
            "--concurrency", type=int, default=5, help="conversations in progress at the same time"
        )
        parser.add_argument(
            "--close-ratio", type=float, default=0.8, help="the share of conversations that close"
        )
        parser.add_argument("--seed", type=int, default=None, help="reproduce the same traffic")
        parser.add_argument(
            "--secret", default=None, help="signing secret (default: the WEBHOOK_SECRET setting)"
        )
        parser.add_argument(
            "--wait", type=float, default=0.0, help="seconds to wait for the server to come up"
        )
        parser.add_argument(
            "--provider",
            default=None,
            help="serve this URL as the provider the server sends replies to (default: "
            "PROVIDER_URL when it is on this machine; '' for none), then keep serving it",
        )
        parser.add_argument(
            "--channel",
            choices=["generic", "whatsapp"],
            default="generic",
            help="generic: the README's webhook events; whatsapp: Meta's envelopes to "
            "/webhook/whatsapp/ signed with WHATSAPP_APP_SECRET, with a stand-in Graph API "
            "served at WHATSAPP_GRAPH_URL when it is on this machine",
        )
        parser.add_argument(
            "--provider-secret",
            default=None,
            help="the replies' signing secret (default: the PROVIDER_SECRET setting)",
        )

    def handle(
        self,
        *args: object,
        url: str,
        conversations: int,
        rate: float,
        concurrency: int,
        close_ratio: float,
        seed: int | None,
        secret: str | None,
        wait: float,
        provider: str | None,
        provider_secret: str | None,
        channel: str = "generic",
        **options: object,
    ) -> None:
        if conversations < 0 or rate < 0 or concurrency < 1 or not 0 <= close_ratio <= 1:
            raise CommandError(
                "--conversations and --rate must be >= 0, --concurrency >= 1, "
                "--close-ratio between 0 and 1"
            )
        self.verbosity = int(options.get("verbosity", 1))
        if channel == "whatsapp":
            return self._whatsapp(url, conversations, rate, secret, wait, seed)
        secret = settings.WEBHOOK_SECRET if secret is None else secret
        webhook = _Webhook(url, secret)
        serving = self._provider(
            url,
            secret,
            _local_provider_url() if provider is None else provider,
            settings.PROVIDER_SECRET if provider_secret is None else provider_secret,
            seed,
        )
        statuses = self._played(
            webhook,
            wait,
            serving,
            lambda: self._play(
                webhook,
                random.Random(seed),  # noqa: S311 - test traffic, not secrets
                conversations,
                rate,
                concurrency,
                close_ratio,
            ),
        )
        if statuses is None:
            return
        summary = ", ".join(f"{count} x {status}" for status, count in sorted(statuses.items()))
        refused = sum(count for status, count in statuses.items() if status >= 300)
        if refused:
            raise CommandError(f"the webhook refused {refused} events ({summary})")
        self.stdout.write(
            self.style.SUCCESS(f"played {conversations} conversations: {summary or 'no events'}")
        )
        if serving:
            self._keep_serving(serving)

    def _provider(
        self, url: str, secret: str, provider_url: str, provider_secret: str, seed: int | None
    ) -> DemoProvider | None:
        """The demo's provider on `provider_url` (none when empty), reporting to the webhook."""
        if not provider_url:
            return None
        reporter = _Webhook(url, secret)
        lock = threading.Lock()

        def deliver(event: dict) -> int:
            # Timer threads share the one connection.
            with lock:
                status, body = reporter.post_event(event)
            if status >= 300:
                self.stderr.write(f"{event['type']} -> {status}: {body.decode(errors='replace')}")
            elif self.verbosity >= 2:
                self.stdout.write(f"provider: {event['type']} {event['data']['id']} -> {status}")
            return status

        try:
            serving = DemoProvider(
                url=provider_url,
                secret=provider_secret,
                deliver=deliver,
                rng=random.Random(seed),  # noqa: S311 - test traffic, not secrets
            )
            serving.start()
        except (ValueError, OSError) as exc:
            raise CommandError(f"cannot serve the provider at {provider_url}: {exc}") from exc
        self.stdout.write(f"serving the provider at {provider_url}: agents' replies get answers")
        return serving

    def _played(
        self,
        webhook: _Webhook,
        wait: float,
        stand_in: StandIn | None,
        play: Callable[[], Counter[int]],
    ) -> Counter[int] | None:
        """`play()`'s statuses once the server is up (waiting `wait` seconds for it); None when
        stopped with Ctrl-C. The stand-in stops then, or when the server does not answer."""
        try:
            if wait:
                webhook.wait_until_up(wait)
            return play()
        except KeyboardInterrupt:
            self.stdout.write("\nstopped")
            if stand_in:
                stand_in.stop()
            return None
        except OSError as exc:
            if stand_in:
                stand_in.stop()
            raise CommandError(f"the server at {webhook.url} did not answer: {exc}") from exc

    def _keep_serving(self, serving: "DemoProvider | whatsapp.DemoGraph") -> None:
        self.stdout.write("still the provider for the agents' replies; Ctrl-C stops")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            self.stdout.write("\nstopped")
        finally:
            serving.stop()

    def _play(
        self,
        webhook: _Webhook,
        rng: random.Random,
        conversations: int,
        rate: float,
        concurrency: int,
        close_ratio: float,
    ) -> Counter[int]:
        """Interleave `concurrency` conversations at `rate` events per second, in order within each.

        Each event is stamped when it is sent, so the inbox shows it as happening now.
        """
        statuses: Counter[int] = Counter()
        started = 0
        in_flight: list[list[dict]] = []
        last_sent: dict[str, datetime] = {}
        interval = 1.0 / rate if rate else 0.0
        next_at = time.monotonic()
        while started < conversations or in_flight:
            while started < conversations and len(in_flight) < concurrency:
                events = conversation_events(
                    rng, start=datetime.now(UTC), close=rng.random() < close_ratio
                )
                in_flight.append(events)
                started += 1
            index = rng.randrange(len(in_flight))
            events = in_flight[index]
            event = events.pop(0)
            if not events:
                del in_flight[index]
            conversation_id = event["data"].get("conversation_id") or event["data"]["id"]
            now = datetime.now(UTC)
            previous = last_sent.get(conversation_id)
            if previous is not None and now <= previous:
                now = previous + timedelta(microseconds=1)
            last_sent[conversation_id] = now
            event["timestamp"] = now.isoformat()
            if interval:
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                next_at = max(next_at + interval, time.monotonic() - interval)
            status, body = webhook.post_event(event)
            statuses[status] += 1
            if status >= 300:
                self.stderr.write(f"{event['type']} -> {status}: {body.decode(errors='replace')}")
            elif self.verbosity >= 2:
                self.stdout.write(f"{event['type']} {conversation_id} -> {status}")
            if event["type"] == "CLOSE_CONVERSATION" or not events:
                last_sent.pop(conversation_id, None)
        return statuses

    def _whatsapp(
        self,
        url: str,
        customers: int,
        rate: float,
        secret: str | None,
        wait: float,
        seed: int | None,
    ) -> None:
        """WhatsApp-shaped traffic (README, "Connect WhatsApp"): customers' envelopes, and
        the stand-in Graph API answering the agents' replies."""
        secret = settings.WHATSAPP_APP_SECRET if secret is None else secret
        if not secret:
            raise CommandError("--channel whatsapp needs WHATSAPP_APP_SECRET (or --secret)")
        webhook = _Webhook(url, secret)
        reporter = _Webhook(url, secret)
        lock = threading.Lock()

        def deliver(body: dict) -> int:
            with lock:
                status, answer = reporter.post_envelope(body)
            if status >= 300:
                self.stderr.write(
                    f"whatsapp envelope -> {status}: {answer.decode(errors='replace')}"
                )
            return status

        graph = None
        graph_url = _local(settings.WHATSAPP_GRAPH_URL)
        if graph_url:
            try:
                graph = whatsapp.DemoGraph(
                    url=graph_url,
                    token=settings.WHATSAPP_ACCESS_TOKEN,
                    deliver=deliver,
                    rng=random.Random(seed),  # noqa: S311 - test traffic, not secrets
                )
                graph.start()
            except (ValueError, OSError) as exc:
                raise CommandError(f"cannot serve the Graph API at {graph_url}: {exc}") from exc
            self.stdout.write(f"serving a stand-in Graph API at {graph_url}")
        rng = random.Random(seed)  # noqa: S311 - test traffic, not secrets
        queues = whatsapp.customer_bodies(rng, count=customers)
        interval = 1.0 / rate if rate else 0.0

        def play() -> Counter[int]:
            statuses: Counter[int] = Counter()
            while queues:
                index = rng.randrange(len(queues))
                body = queues[index].pop(0)
                if not queues[index]:
                    del queues[index]
                status, answer = webhook.post_envelope(body)
                statuses[status] += 1
                if status >= 300:
                    self.stderr.write(f"envelope -> {status}: {answer.decode(errors='replace')}")
                if interval:
                    time.sleep(interval)
            return statuses

        statuses = self._played(webhook, wait, graph, play)
        if statuses is None:
            return
        summary = ", ".join(f"{count} x {status}" for status, count in sorted(statuses.items()))
        self.stdout.write(
            self.style.SUCCESS(f"played {customers} WhatsApp customers: {summary or 'nothing'}")
        )
        if graph:
            self._keep_serving(graph)
