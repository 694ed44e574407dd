"""daphne's HTTP protocol, guarded against slow, huge and form bodies, and drainable.

daphne builds Twisted's `HTTPChannel`, which has none of these (README, "Connections,
limits and shutdown"):

- **Header timeout.** Twisted's only timer is an idle one (12 h) that every byte resets, so
  a client trickling one header byte a second holds its connection, and a descriptor,
  forever. Here a request's headers must be complete within `HTTP_HEADER_TIMEOUT` of the
  connection opening or the previous response ending (408 then, or a silent close for a
  keep-alive connection that sent nothing).
- **Body rate.** After that same grace, a body must keep arriving at `HTTP_BODY_MIN_RATE`
  bytes a second on average (408).
- **Body size.** A body over `WEBHOOK_MAX_BYTES` (the largest any view takes) is refused with
  a JSON 413 as soon as its `Content-Length` or its chunks so far say so, before the rest is
  read: daphne would otherwise hand the whole body to the application in memory.
- **Descriptors.** When a new connection's descriptor is near the open-file limit, the
  connection that has waited longest for its headers is closed, so a crowd of slow clients
  cannot keep a probe or a webhook from being served.
- **No form parsing.** Twisted parses every urlencoded and multipart POST body into
  `request.args` in the event loop, before the application sees it (a 1 MiB body of
  20,000 empty parts held every other request for 0.4 s). daphne never reads `args`;
  Django parses the forms it needs (the login form) itself, in the view's thread.
- **Drain.** On SIGTERM, keep-alive connections that are idle close at once, and every other
  one closes after its current request, whose answer says `Connection: close`.

Refusals are written straight to the transport, and the connection is closed: at once for a
slow client, after a short linger that reads and drops the rest of a body too large.
"""

import contextlib
import json
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

from daphne.http_protocol import HTTPFactory, WebRequest
from twisted.internet import reactor, tcp
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.web import http

# How long a refused connection keeps reading and dropping the client's bytes so that it
# can read the answer, before the connection is cut.
LINGER_SECONDS = 5.0
# How often the timeouts are checked: the deadlines hold to within this much.
SWEEP_SECONDS = 0.25


@dataclass
class Limits:
    header_timeout: float
    body_min_rate: float
    max_body: int
    # Accepting a connection whose descriptor number reaches this sheds a slow one.
    descriptor_watermark: int


def descriptor_watermark(open_file_limit: int) -> int:
    """Leave an eighth of the descriptors (at least 64) to the database, Redis and files."""
    return open_file_limit - max(64, open_file_limit // 8)


@dataclass
class Guard:
    """The state of every guarded connection of one server, and the timers over them."""

    limits: Limits
    on_shed: Callable[[], None] | None = None  # each time a slow connection is shed
    on_accept: Callable[[], None] | None = None  # each time a connection is accepted
    draining: bool = False
    # Waiting for a request's headers, oldest first: channel -> when the wait began.
    waiting: dict = field(default_factory=dict)
    # Receiving a body: channel -> when the headers were complete.
    bodies: dict = field(default_factory=dict)
    channels: weakref.WeakSet = field(default_factory=weakref.WeakSet)
    _sweeping: bool = False

    def start(self) -> None:
        if not self._sweeping:
            self._sweeping = True
            reactor.callLater(SWEEP_SECONDS, self._sweep)

    def _sweep(self) -> None:
        now = time.monotonic()
        limits = self.limits
        expired = []
        for channel, since in self.waiting.items():
            if now - since < limits.header_timeout:
                break  # oldest first: the rest are younger
            expired.append(channel)
        for channel in expired:
            channel.headers_timed_out()
        for channel, since in list(self.bodies.items()):
            elapsed = now - since
            if elapsed > limits.header_timeout + channel.body_received / limits.body_min_rate:
                channel.refuse(
                    HTTPStatus.REQUEST_TIMEOUT,
                    "request_timeout",
                    f"the body arrived slower than HTTP_BODY_MIN_RATE "
                    f"({limits.body_min_rate:g} bytes/s)",
                )
        reactor.callLater(SWEEP_SECONDS, self._sweep)

    def wait(self, channel: "GuardedChannel") -> None:
        self.bodies.pop(channel, None)
        self.waiting.pop(channel, None)
        self.waiting[channel] = time.monotonic()

    def body(self, channel: "GuardedChannel") -> None:
        self.waiting.pop(channel, None)
        self.bodies[channel] = time.monotonic()

    def forget(self, channel: "GuardedChannel") -> None:
        self.waiting.pop(channel, None)
        self.bodies.pop(channel, None)

    def opened(self, channel: "GuardedChannel", descriptor: int | None) -> None:
        self.channels.add(channel)
        self.wait(channel)
        if self.on_accept:
            self.on_accept()
        # The kernel hands out the lowest free descriptor, so every number below this one is
        # in use: reaching the watermark means at least that many are open.
        if descriptor is not None and descriptor >= self.limits.descriptor_watermark:
            self._shed(channel)

    def _shed(self, newcomer: "GuardedChannel") -> None:
        for channel in self.waiting:
            if channel is not newcomer:
                break
        else:
            return
        if self.on_shed:
            self.on_shed()
        channel.headers_timed_out(
            "closed while the server is short of file descriptors: its headers were the "
            "slowest to arrive"
        )

    def receiving(self) -> int:
        """How many requests are partly received: started headers, or a body under way."""
        return sum(1 for channel in self.waiting if channel.started) + len(self.bodies)

    def flushing(self) -> int:
        """How many connections still hold answer bytes not yet handed to the kernel."""
        return sum(1 for channel in list(self.channels) if channel.flushing())

    def drain(self) -> None:
        """Close idle keep-alive connections; every other one closes after its request."""
        self.draining = True
        for channel in list(self.channels):
            channel.drain()


class GuardedChannel(http.HTTPChannel):
    def __init__(self, guard: Guard) -> None:
        super().__init__()
        self.guard = guard
        self.started = False  # a byte of the next request has arrived
        self.refused = False
        self.body_received = 0
        self._linger = None

    # The connection.

    def connectionMade(self) -> None:
        super().connectionMade()
        try:
            descriptor = self.transport.getHandle().fileno()
        except AttributeError:
            descriptor = None
        self.guard.opened(self, descriptor)

    def connectionLost(self, reason: object) -> None:
        self.guard.forget(self)
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        super().connectionLost(reason)

    def dataReceived(self, data: bytes) -> None:
        if self.refused:
            return  # lingering: dropped unread
        if not self.started and self in self.guard.waiting:
            self.started = True
        super().dataReceived(data)

    # A request's progress through Twisted's parser.

    def allHeadersReceived(self) -> None:
        limits = self.guard.limits
        if self.length is not None and self.length > limits.max_body:
            self.refuse(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "payload_too_large",
                f"the body is larger than WEBHOOK_MAX_BYTES ({limits.max_body} bytes)",
                linger=True,
            )
            return
        self.body_received = 0
        super().allHeadersReceived()
        if self.length == 0:
            self.guard.forget(self)
        else:
            self.guard.body(self)

    def rawDataReceived(self, data: bytes) -> None:
        if not self.refused:
            super().rawDataReceived(data)

    def allContentReceived(self) -> None:
        if self.refused:
            return
        self.guard.forget(self)
        self.started = False
        super().allContentReceived()

    def checkPersistence(self, request: http.Request, version: bytes) -> bool:
        if self.guard.draining:
            request.responseHeaders.setRawHeaders(b"Connection", [b"close"])
            return False
        return super().checkPersistence(request, version)

    def requestDone(self, request: http.Request) -> None:
        if self.persistent:
            # The next request's headers are due within the timeout from now; Twisted may
            # replay bytes the client pipelined, which start it at once.
            self.guard.wait(self)
        super().requestDone(request)

    # Refusing and draining.

    def headers_timed_out(self, detail: str | None = None) -> None:
        if not self.started:
            # An idle keep-alive connection: a 408 here could be read as the answer to a
            # request the client is sending at this moment, so close without a word.
            self.cut()
            return
        self.refuse(
            HTTPStatus.REQUEST_TIMEOUT,
            "request_timeout",
            detail
            or f"the request's headers did not arrive within HTTP_HEADER_TIMEOUT "
            f"({self.guard.limits.header_timeout:g} s)",
        )

    def refuse(self, status: HTTPStatus, error: str, detail: str, *, linger: bool = False) -> None:
        """Answer `status` with a JSON error, read no more of the request, and close.

        `linger` when the client may still be sending a body it means to send whole: the
        connection then stays open a little, reading and dropping, so that the client reads
        this answer instead of a reset (closing with unread data resets the connection).
        A slow client gets no linger: its descriptor is what it was taking.
        """
        if self.refused or self.transport is None:
            return
        self.refused = True
        self.guard.forget(self)
        body = json.dumps({"error": error, "detail": detail}).encode()
        answer = (
            b"HTTP/1.1 %d %s\r\n" % (status.value, status.phrase.encode())
            + b"Content-Type: application/json\r\n"
            + b"Content-Length: %d\r\n" % len(body)
            + b"Connection: close\r\n\r\n"
            + body
        )
        if not linger:
            self.cut(answer)
            return
        self.transport.write(answer)
        self._networkProducer.resumeProducing()
        self.transport.loseWriteConnection()
        self._linger = reactor.callLater(LINGER_SECONDS, self.transport.abortConnection)

    def cut(self, answer: bytes = b"") -> None:
        """Send a short `answer` and close the connection now, in this reactor step.

        Twisted's own close waits for the next step, and its accept loop can take hundreds
        of connections in one: a connection shed to free a descriptor must free it at once.
        """
        self.refused = True
        self.guard.forget(self)
        transport = self.transport
        if not isinstance(transport, tcp.Connection):
            transport.write(answer)
            transport.loseConnection()
            return
        # Into an empty send buffer: a few hundred bytes always fit. An error: the client
        # is gone already.
        with contextlib.suppress(OSError):
            transport.getHandle().send(answer)
        transport.connectionLost(Failure(ConnectionDone()))

    def flushing(self) -> bool:
        transport = self.transport
        if transport is None or not getattr(transport, "connected", False):
            return False
        # Twisted's FileDescriptor keeps unsent bytes in these two until doWrite runs.
        return bool(
            getattr(transport, "dataBuffer", b"") or getattr(transport, "_tempDataBuffer", [])
        )

    def drain(self) -> None:
        if self.refused or self.transport is None:
            return
        if self in self.guard.waiting and not self.started:
            self.cut()
            return
        self.persistent = False
        for request in self.requests:
            if not request.startedWriting:
                request.responseHeaders.setRawHeaders(b"Connection", [b"close"])


class GuardedRequest(WebRequest):
    def __init__(self, *args: object, **kwargs: object) -> None:
        # Django parses the forms it needs, in the view's thread; Twisted would parse every
        # form body in the event loop, holding every other connection meanwhile.
        kwargs["parsePOSTFormSubmission"] = False
        super().__init__(*args, **kwargs)

    def handleContentChunk(self, data: bytes) -> None:
        channel = self.channel
        if channel.refused:
            return
        channel.body_received += len(data)
        limit = channel.guard.limits.max_body
        if channel.body_received > limit:
            # A chunked body, which declared no length: stop at the first byte too many.
            channel.refuse(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "payload_too_large",
                f"the body is larger than WEBHOOK_MAX_BYTES ({limit} bytes)",
                linger=True,
            )
            return
        super().handleContentChunk(data)


class GuardedHTTPFactory(HTTPFactory):
    """daphne's factory, building guarded channels and requests."""

    def __init__(self, server: object, guard: Guard) -> None:
        super().__init__(server)
        self.guard = guard

    def protocol(self) -> http._GenericHTTPChannelProtocol:
        # What Twisted's own HTTPFactory.protocol builds, around a guarded channel.
        return http._GenericHTTPChannelProtocol(GuardedChannel(self.guard))

    def buildProtocol(self, addr: object) -> object:
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = GuardedRequest
        return protocol

    def startFactory(self) -> None:
        super().startFactory()
        self.guard.start()
