"""Serve the app with daphne, and make SIGTERM a routine restart instead of a crash.

`manage.py serve [daphne's own arguments]`, e.g. `manage.py serve -b 0.0.0.0 -p 8000`.

Why not plain `daphne`: on SIGTERM daphne stops its event loop at once. It cancels the ASGI
tasks, but a sync view (the webhook) keeps running in its worker thread and then waits,
through `async_to_sync`, on a loop that no longer runs. The request is cut off unanswered,
and at exit the interpreter joins that thread forever (a hang) or, while finalising, pulls
module state out from under it (a crash, the segmentation fault seen with sockets open).
Agents' sockets are dropped without a close frame (1006).

Here SIGTERM (or SIGINT) instead drains, as a proxy does:
1. stops accepting connections;
2. closes every WebSocket with 1012 (service restart), which the pages reconnect on;
3. closes every idle keep-alive connection, and marks every other one to close after its
   current request, whose answer says `Connection: close`: a client that keeps its
   connection open cannot keep the server serving;
4. waits for every request in flight (and any partly received), every answer to leave
   Twisted's buffers, and every socket's disconnect handler, to finish, up to
   `SHUTDOWN_TIMEOUT` seconds;
5. then stops, with exit status 0. A second signal stops at once. If a request is still
   being handled past the timeout, the process exits 1 without joining the stuck threads
   rather than hang; one that was never completely received is simply dropped.

The HTTP protocol itself is guarded too (`inbox.server.guards`: read timeouts, the body
limit before the body is read, no form parsing in the event loop), the open-file limit is
raised to the hard limit, and the listening socket's backlog is `LISTEN_BACKLOG`.
"""

import logging
import os
import signal
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

logger = logging.getLogger("inbox.serve")

SERVICE_RESTART = 1012
# Connections the kernel queues while the server is busy accepting (Twisted's default is
# 50, which a burst of clients overflows into dropped SYNs and retries a second later).
LISTEN_BACKLOG = 1024


def _graceful_server_class() -> type:
    # daphne.server installs the asyncio reactor on import: import it only when serving.
    from daphne.server import Server
    from daphne.ws_protocol import WebSocketProtocol
    from twisted.internet import reactor
    from twisted.logger import globalLogPublisher

    from inbox.server.guards import Guard, GuardedHTTPFactory, Limits, descriptor_watermark
    from inbox.server.limits import EpisodeLog, RefusedConnections, raise_open_file_limit

    class GracefulServer(Server):
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs["signal_handlers"] = False
            super().__init__(*args, **kwargs)
            self.endpoints = [_with_backlog(endpoint) for endpoint in self.endpoints]
            self.listening_ports: list = []
            self.stopping = False
            self.deadline = 0.0
            self.clean = True
            open_files = raise_open_file_limit()
            refused = RefusedConnections(reactor.callLater, open_files)
            shed = EpisodeLog(
                reactor.callLater,
                "serve: short of file descriptors (limit %d): closing the connections "
                "slowest to send their headers",
                "serve: closed %d more slow connections for want of file descriptors %s",
                level=logging.WARNING,
            )
            globalLogPublisher.addObserver(refused)
            self.guard = Guard(
                Limits(
                    header_timeout=settings.HTTP_HEADER_TIMEOUT,
                    body_min_rate=settings.HTTP_BODY_MIN_RATE,
                    max_body=settings.WEBHOOK_MAX_BYTES,
                    descriptor_watermark=descriptor_watermark(open_files),
                ),
                on_shed=lambda: shed.hit(open_files),
                on_accept=refused.accepted,
            )
            logger.info(
                "serve: open-file limit %d; header timeout %g s; bodies at least %g bytes/s, "
                "at most %d bytes",
                open_files,
                settings.HTTP_HEADER_TIMEOUT,
                settings.HTTP_BODY_MIN_RATE,
                settings.WEBHOOK_MAX_BYTES,
            )

        # daphne's run() builds its HTTPFactory and listens on it at once: this is the one
        # place to put the guarded factory in its stead.
        @property
        def http_factory(self) -> GuardedHTTPFactory:
            return self._http_factory

        @http_factory.setter
        def http_factory(self, daphne_factory: object) -> None:
            self._http_factory = GuardedHTTPFactory(self, self.guard)

        def run(self) -> None:
            reactor.callWhenRunning(self._install_signal_handlers)
            super().run()

        def listen_success(self, port: object) -> None:
            self.listening_ports.append(port)
            super().listen_success(port)

        def _install_signal_handlers(self) -> None:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, self._on_signal)

        def _on_signal(self, signum: int, frame: object) -> None:
            reactor.callFromThread(self.shut_down, signal.Signals(signum).name)

        def shut_down(self, reason: str) -> None:
            if self.stopping:
                logger.warning("serve: %s again, stopping now", reason)
                self.clean = False
                self.stop()
                return
            self.stopping = True
            self.deadline = time.monotonic() + settings.SHUTDOWN_TIMEOUT
            for port in self.listening_ports:
                port.stopListening()
            sockets = self._close_sockets()
            self.guard.drain()
            requests = [p for p in self._busy() if not isinstance(p, WebSocketProtocol)]
            logger.info(
                "serve: %s: stopped accepting; closing %d sockets with %d and the idle "
                "connections; %d requests in flight, %d being received",
                reason,
                sockets,
                SERVICE_RESTART,
                len(requests),
                self.guard.receiving(),
            )
            self._stop_when_idle()

        def _close_sockets(self) -> int:
            closing = 0
            for protocol in list(self.connections):
                if not isinstance(protocol, WebSocketProtocol):
                    continue
                if protocol.state == protocol.STATE_OPEN:
                    # autobahn's sendClose() only takes 1000 and 3000-4999, the codes an
                    # application may use; 1012 is the server's to send.
                    protocol.sendCloseFrame(code=SERVICE_RESTART, isReply=False)
                    closing += 1
            return closing

        def _busy(self) -> list:
            return [
                protocol
                for protocol, details in self.connections.items()
                if details.get("application_instance") is not None
                and not details["application_instance"].done()
            ]

        def _stop_when_idle(self) -> None:
            # A socket whose handshake was under way at the signal is closed once it opens.
            self._close_sockets()
            busy = self._busy()
            # A request partly received is waited for (its headers and body are under their
            # own timeouts), but one never completely read is no harm to drop at the end.
            # An answer handed to Twisted is still in its buffer until the next reactor step
            # writes it, and stopping the reactor drops every buffer unsent: a webhook stored
            # and answered on our side but never on the provider's (seen in CI under load).
            if (
                busy or self.guard.receiving() or self.guard.flushing()
            ) and time.monotonic() < self.deadline:
                reactor.callLater(0.05, self._stop_when_idle)
                return
            if busy:
                self.clean = False
                logger.error(
                    "serve: still busy after SHUTDOWN_TIMEOUT: %s",
                    ", ".join(sorted({type(p).__name__ for p in busy})),
                )
            else:
                logger.info("serve: every request answered, every socket closed; stopping")
            self.stop()

    return GracefulServer


def _with_backlog(endpoint: str) -> str:
    """A Twisted endpoint description with LISTEN_BACKLOG, unless it names its own."""
    kind = endpoint.split(":", 1)[0]
    if kind in {"tcp", "tcp6", "ssl", "unix"} and "backlog=" not in endpoint:
        return f"{endpoint}:backlog={LISTEN_BACKLOG}"
    return endpoint


class Command(BaseCommand):
    help = "Serve HTTP and WebSockets with daphne; SIGTERM drains and closes sockets with 1012."

    def run_from_argv(self, argv: list[str]) -> None:
        # Every argument is daphne's own (see `daphne --help`); the application defaults to
        # this project's.
        from daphne.cli import CommandLineInterface

        class CLI(CommandLineInterface):
            server_class = _graceful_server_class()

        args = argv[2:]
        if not any(":" in arg and not arg.startswith("-") for arg in args):
            module, _, name = settings.ASGI_APPLICATION.rpartition(".")
            args.append(f"{module}:{name}")
        cli = CLI()
        cli.run(args)
        if cli.server is not None and not cli.server.clean:
            # Threads still stuck in a request would be joined forever at exit, or crash
            # the interpreter's finalisation: leave without finalising them.
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
