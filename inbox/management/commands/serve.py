"""Serve the app with daphne, and make SIGTERM a routine restart instead of a crash.

`manage.py serve [daphne's own arguments]`, e.g. `manage.py serve -b 0.0.0.0 -p 8000`.

Why not plain `daphne`: on SIGTERM daphne stops its event loop at once. It cancels the ASGI
tasks, but a sync view (the webhook) keeps running in its worker thread and then waits,
through `async_to_sync`, on a loop that no longer runs. The request is cut off unanswered,
and at exit the interpreter joins that thread forever (a hang) or, while finalising, pulls
module state out from under it (a crash, the segmentation fault seen with sockets open).
Agents' sockets are dropped without a close frame (1006).

Here SIGTERM (or SIGINT) instead:
1. stops accepting connections;
2. closes every WebSocket with 1012 (service restart), which the pages reconnect on;
3. waits for every request in flight, and every socket's disconnect handler, to finish, up
   to `SHUTDOWN_TIMEOUT` seconds;
4. then stops. A second signal stops at once. If work is still stuck past the timeout, the
   process exits without joining the stuck threads rather than hang.
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


def _graceful_server_class() -> type:
    # daphne.server installs the asyncio reactor on import: import it only when serving.
    from daphne.server import Server
    from daphne.ws_protocol import WebSocketProtocol
    from twisted.internet import reactor

    class GracefulServer(Server):
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs["signal_handlers"] = False
            super().__init__(*args, **kwargs)
            self.listening_ports: list = []
            self.stopping = False
            self.deadline = 0.0
            self.clean = True

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
            requests = [p for p in self._busy() if not isinstance(p, WebSocketProtocol)]
            logger.info(
                "serve: %s: stopped accepting; closing %d sockets with %d; %d requests in flight",
                reason,
                sockets,
                SERVICE_RESTART,
                len(requests),
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
            if busy and time.monotonic() < self.deadline:
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
