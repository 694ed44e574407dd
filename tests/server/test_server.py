"""The guarded HTTP protocol of `manage.py serve` (inbox/server), against a real server.

- Slow clients: headers within HTTP_HEADER_TIMEOUT, bodies at HTTP_BODY_MIN_RATE, or 408; a
  crowd of them under a 1,024 open-file limit leaves /healthz and the webhook answering;
  connections refused for want of descriptors are logged once, then counted.
"""

import hashlib
import hmac
import http.client
import json
import resource
import socket
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import WAIT_LIMIT, Server, new_conversation, set_server_password

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "a-webhook-secret-of-at-least-32-characters"


def open_file_limit(soft: int, hard: int | None = None) -> Callable[[], None]:
    """A preexec_fn that gives the server process this RLIMIT_NOFILE."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard or soft))

    return apply


def need_descriptors(count: int) -> None:
    """This test process opens `count` sockets: raise its own soft limit for them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count:
        if hard != resource.RLIM_INFINITY and hard < count:
            pytest.skip(f"this test opens {count} sockets; the hard open-file limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, hard))


def timed_request(server: Server, method: str, path: str, body: bytes = b"", headers=None):
    """(status, seconds) of one request on a fresh connection."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_LIMIT)
    try:
        conn.request(method, path, body, headers or {})
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    finally:
        conn.close()


def signed_webhook(server: Server) -> tuple[int, float]:
    body = json.dumps(new_conversation(uuid.uuid4())).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
    return timed_request(server, "POST", "/webhook/", body, headers)


def read_until_closed(sock: socket.socket, deadline: float) -> bytes | None:
    """Everything the server sends until it closes; None if it is still open at `deadline`."""
    received = b""
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return None
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


class Trickler:
    """Sockets that each send one more byte every `interval` seconds, from one thread."""

    def __init__(self, interval: float = 0.5) -> None:
        self.sockets: list[socket.socket] = []
        self.interval = interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            for sock in list(self.sockets):
                try:
                    sock.send(b"a")
                except OSError:
                    self.sockets.remove(sock)  # the server closed it

    def __enter__(self) -> "Trickler":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()


def test_headers_and_bodies_that_trickle_are_answered_408(serve):
    server = serve(HTTP_HEADER_TIMEOUT="2", HTTP_BODY_MIN_RATE="1024")
    headers = socket.create_connection(("127.0.0.1", server.port))
    headers.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    body = socket.create_connection(("127.0.0.1", server.port))
    body.sendall(
        b"POST /webhook/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )
    idle = socket.create_connection(("127.0.0.1", server.port))
    idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert idle.recv(65536).startswith(b"HTTP/1.1 200")

    with Trickler(interval=0.3) as trickler:
        trickler.sockets += [headers, body]
        deadline = time.monotonic() + WAIT_LIMIT
        answers = [read_until_closed(sock, deadline) for sock in (headers, body, idle)]

    for answer in answers[:2]:
        assert answer is not None, "a trickling client was never cut off"
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b"Connection: close" in answer
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "request_timeout"
    # An idle keep-alive connection is closed after as long, without an answer it could
    # mistake for one to a request it is sending.
    assert answers[2] == b""
    assert server.process.poll() is None


def test_a_crowd_of_slow_clients_leaves_health_and_the_webhook_answering(serve):
    """1,100 connections trickling header bytes against 1,024 descriptors (issue #17's case).

    Without the guards every descriptor stays held and every new connection is reset. With
    them the slowest are shed as descriptors run short, and the rest time out.
    """
    attackers, header_timeout = 1100, 4.0
    need_descriptors(attackers + 200)
    server = serve(
        preexec_fn=open_file_limit(1024),
        HTTP_HEADER_TIMEOUT=str(header_timeout),
        WEBHOOK_SECRET=SECRET,
    )
    with Trickler() as trickler:
        crowd = []
        for _ in range(attackers):
            try:
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=2)
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            except OSError:
                continue  # refused or reset at once: not holding anything
            crowd.append(sock)
            trickler.sockets.append(sock)
        opened = time.monotonic()

        probes = []
        for _ in range(5):
            probes.append(("healthz", *timed_request(server, "GET", "/healthz")))
            probes.append(("webhook", *signed_webhook(server)))
        assert time.monotonic() - opened < header_timeout, "too slow to probe during the attack"

        deadline = opened + header_timeout + WAIT_LIMIT
        endings = [read_until_closed(sock, deadline) for sock in crowd]

    assert [status for _, status, _ in probes] == [200, 201] * 5, probes
    for name in ("healthz", "webhook"):
        latency = statistics.median(seconds for n, _, seconds in probes if n == name)
        assert latency < 0.1, f"{name}: median {latency:.3f} s under the attack"
    assert all(ending is not None for ending in endings), "slow clients kept their connections"
    assert any(ending.startswith(b"HTTP/1.1 408 ") for ending in endings)
    output = server.output()
    assert output.count("short of file descriptors") == 1, output[-3000:]
    for sock in crowd:
        sock.close()


def test_connections_refused_for_want_of_descriptors_are_logged_once_then_counted(serve):
    server = serve(
        preexec_fn=open_file_limit(128),
        HTTP_HEADER_TIMEOUT="30",
        HTTP_BODY_MIN_RATE="0.001",  # bodies under way hold their descriptors: none is shed
    )
    holders = []
    for _ in range(200):
        try:
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=2)
            sock.sendall(
                b"POST /webhook/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n{"
            )
        except OSError:
            continue
        holders.append(sock)
        # One at a time, so each is under way (not sheddable) before the next arrives.
        time.sleep(0.005)
    time.sleep(0.5)  # let the server's accept loop meet the limit
    for sock in holders:
        sock.close()

    deadline = time.monotonic() + WAIT_LIMIT
    while True:
        try:
            assert timed_request(server, "GET", "/healthz")[0] == 200
            break
        except OSError:
            assert time.monotonic() < deadline, "never recovered"
            time.sleep(0.2)
    output = server.output()
    assert output.count("out of file descriptors (limit 128)") == 1, output[-3000:]
    assert output.count("more connections for want of file descriptors before recovering") == 1


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="reads Linux's /proc")
def test_the_open_file_limit_is_raised_to_the_hard_limit(serve):
    server = serve(preexec_fn=open_file_limit(256, 4096))
    limits = Path(f"/proc/{server.process.pid}/limits").read_text()
    line = next(line for line in limits.splitlines() if line.startswith("Max open files"))
    assert line.split()[3:5] == ["4096", "4096"]


def peak_memory_kib(pid: int) -> int:
    """The process's peak resident set (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def read_answer(sock: socket.socket) -> tuple[int, dict, bytes]:
    """One HTTP answer from a raw socket: status, headers, body."""
    sock.settimeout(WAIT_LIMIT)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed without an answer: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    while len(body) < int(headers.get("Content-Length", 0)):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), headers, body


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_an_oversize_body_is_refused_before_it_is_read(serve, framing):
    """300 MB streamed at the webhook: a JSON 413 long before the end, memory unmoved."""
    server = serve()
    total = 300 * 2**20
    peak_before = peak_memory_kib(server.process.pid)
    length = (
        f"Content-Length: {total}"
        if framing == "content-length"
        else ("Transfer-Encoding: chunked")
    )
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(
        f"POST /webhook/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"{length}\r\n\r\n".encode()
    )
    piece = b"\0" * 65536
    if framing == "chunked":
        piece = b"%x\r\n" % len(piece) + piece + b"\r\n"
    sent = [0]
    answered = threading.Event()

    def stream() -> None:
        while not answered.is_set() and sent[0] < total:
            try:
                sock.sendall(piece)
            except OSError:
                return  # the server closed after its answer
            sent[0] += len(piece)

    sender = threading.Thread(target=stream)
    sender.start()
    try:
        status, headers, body = read_answer(sock)
        sent_by_then = sent[0]
    finally:
        answered.set()
        sender.join(WAIT_LIMIT)
        sock.close()

    assert status == 413
    assert sent_by_then < total // 4, f"answered only after {sent_by_then} bytes"
    growth = peak_memory_kib(server.process.pid) - peak_before
    assert growth < 64 * 1024, f"the server's peak memory grew by {growth} KiB"
    assert headers["Connection"] == "close"
    assert json.loads(body)["error"] == "payload_too_large"


def test_a_body_of_exactly_the_limit_passes_and_one_byte_more_is_refused(serve):
    server = serve(WEBHOOK_MAX_BYTES="1000")
    for size, chunked, expected in [
        (1000, False, 400),  # read, and refused by the webhook as the bad JSON it is
        (1001, False, 413),
        (1000, True, 400),
        (1001, True, 413),
    ]:
        body = b"x" * size
        sock = socket.create_connection(("127.0.0.1", server.port))
        framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % size
        if chunked:
            body = b"%x\r\n%s\r\n0\r\n\r\n" % (size, body)
        head = b"POST /webhook/ HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n\r\n" % framing
        sock.sendall(head + body)
        status, _, answer = read_answer(sock)
        sock.close()
        assert (size, chunked, status) == (size, chunked, expected), answer
        assert json.loads(answer)["error"] in {"invalid_event", "payload_too_large"}


def many_empty_parts(size: int) -> tuple[bytes, str]:
    """A multipart body of empty parts, as costly to parse per byte as one can be."""
    part = b"--b\r\n\r\n\r\n"
    return part * ((size - 7) // len(part)) + b"--b--\r\n", "multipart/form-data; boundary=b"


def test_a_form_body_is_not_parsed_in_the_event_loop_and_the_webhook_names_its_type(serve):
    """Twisted parsed every form body in the event loop, before the app saw it.

    About a second of parsing per MiB of empty parts here, while no other request (or push)
    moved. The limit is raised for this server so that the stall, were it back, would be
    several seconds against a /healthz bound of one.
    """
    limit = 4 * 2**20
    server = serve(WEBHOOK_MAX_BYTES=str(limit))
    body, content_type = many_empty_parts(limit)
    answer: list[tuple[int, bytes]] = []

    def post_form() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_LIMIT)
        conn.request("POST", "/webhook/", body, {"Content-Type": content_type})
        response = conn.getresponse()
        answer.append((response.status, response.read()))

    poster = threading.Thread(target=post_form)
    latencies = []
    poster.start()
    while poster.is_alive() or len(latencies) < 3:
        latencies.append(timed_request(server, "GET", "/healthz")[1])
    poster.join()

    status, raw = answer[0]
    assert status == 400, raw
    error = json.loads(raw)
    assert error["error"] == "unsupported_content_type"
    assert "multipart/form-data" in error["detail"]
    assert max(latencies) < 1.0, f"/healthz waited {max(latencies):.2f} s behind the form"


def test_the_login_form_still_logs_in_through_the_server(serve, agent):
    set_server_password(agent, "s3cret-pass-word")
    server = serve()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_LIMIT)
    conn.request("GET", "/accounts/login/")
    page = conn.getresponse()
    html = page.read().decode()
    cookie = page.getheader("Set-Cookie").split(";", 1)[0]
    token = html.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    form = f"csrfmiddlewaretoken={token}&username=ana&password=s3cret-pass-word"
    conn.request(
        "POST",
        "/accounts/login/",
        form,
        {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
    )
    response = conn.getresponse()
    response.read()
    assert response.status == 302, response.status
    assert "sessionid=" in (response.getheader("Set-Cookie") or "")
