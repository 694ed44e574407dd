"""The live inbox in Debian's Chromium against a real server process, end to end.

The agent never reloads: webhook posts make rows and bubbles appear, a close flips the
header and takes the row out of the Open tab, and after the server is stopped and started
again the page reconnects by itself and shows what was stored while it was down.
"""

import json
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Page, expect

from tests import factories
from tests.conftest import (
    IN_CI,
    WAIT_LIMIT,
    close_conversation,
    free_port,
    new_conversation,
    new_message,
    service_reachable,
    set_server_password,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIVE = WAIT_LIMIT * 1000  # Playwright's expect() takes milliseconds


def post(base_url: str, event: dict) -> int:
    request = urllib.request.Request(  # noqa: S310
        f"{base_url}/webhook/", json.dumps(event).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=WAIT_LIMIT) as response:  # noqa: S310
        return response.status


# The page's sockets as a test sees them (live.js keeps its own to itself): each one made,
# in `window.liveSockets`, and the code of each close, in `window.closeCodes`.
RECORD_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.liveSockets = [];
  window.closeCodes = [];
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      window.liveSockets.push(this);
      this.addEventListener("close", (event) => window.closeCodes.push(event.code));
    }
  };
})();
"""
# The page's current socket.
LIVE_SOCKET = "window.liveSockets[window.liveSockets.length - 1]"


def log_in(page: Page, base_url: str, agent_client) -> None:
    page.context.add_cookies(
        [{"name": "sessionid", "value": agent_client.cookies["sessionid"].value, "url": base_url}]
    )


def test_the_inbox_stays_live_across_events_and_a_server_restart(
    page: Page, serve, agent_client, post_event
):
    server = serve()
    viewed, arriving, while_down = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    first_message, missed_message = uuid.uuid4(), uuid.uuid4()
    assert post(server.url, new_conversation(viewed, ts=0)) == 201
    log_in(page, server.url, agent_client)
    page.goto(f"{server.url}/conversations/{viewed}/")
    status = page.locator("#live-status")
    expect(status).to_have_attribute("data-state", "live", timeout=LIVE)

    # A new conversation appears at the top of the list, without a reload.
    assert post(server.url, new_conversation(arriving, ts=5)) == 201
    rows = page.locator("#conversation-list > [id^=conversation-]")
    expect(rows.first).to_have_id(f"conversation-{arriving}", timeout=LIVE)
    expect(page.locator(f"#conversation-{arriving}")).to_have_attribute("data-status", "OPEN")

    # A message drops into the open thread and moves its row back to the top.
    event = new_message(viewed, ts=10, message_id=first_message, content="Olá, quero ajuda")
    assert post(server.url, event) == 201
    bubble = page.locator(f"#messages #message-{first_message}")
    # The bubble's text (beside it: a screen-reader label and the time).
    expect(bubble.locator("p")).to_have_text("Olá, quero ajuda", timeout=LIVE)
    expect(bubble).to_have_attribute("data-direction", "RECEIVED")
    expect(rows.first).to_have_id(f"conversation-{viewed}", timeout=LIVE)
    expect(rows).to_have_count(2)

    # A restart: the page says it is reconnecting, and events stored meanwhile are not lost.
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(WAIT_LIMIT) == 0, server.output()
    expect(status).to_have_attribute("data-state", "reconnecting", timeout=LIVE)
    missed = new_message(viewed, ts=30, message_id=missed_message, content="Ainda aí?")
    # Stored by the test's own client, off the thread where Playwright runs its event loop.
    with ThreadPoolExecutor(1) as elsewhere:
        assert (
            elsewhere.submit(post_event, new_conversation(while_down, ts=20)).result().status_code
            == 201
        )
        assert elsewhere.submit(post_event, missed).result().status_code == 201
    serve(port=server.port)
    expect(status).to_have_attribute("data-state", "live", timeout=LIVE * 2)
    expect(page.locator(f"#conversation-{while_down}")).to_be_visible(timeout=LIVE)
    expect(page.locator(f"#messages #message-{missed_message} p")).to_have_text("Ainda aí?")
    expect(page.locator("#messages > [id^=message-]")).to_have_count(2)

    # Still live after the reconnect: a close flips the header and leaves the Open tab.
    assert post(server.url, close_conversation(viewed, ts=40)) == 200
    expect(page.locator("#conversation-status")).to_contain_text("closed", ignore_case=True)
    expect(page.locator(f"#conversation-{viewed}")).to_have_count(0, timeout=LIVE)
    expect(page.locator(f"#conversation-{arriving}")).to_be_visible()


def test_the_title_counts_received_messages_while_the_tab_is_hidden(
    page: Page, serve, agent_client
):
    server = serve()
    ident = uuid.uuid4()
    assert post(server.url, new_conversation(ident)) == 201
    log_in(page, server.url, agent_client)
    page.goto(f"{server.url}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE)
    title = page.title()
    # Headless Chromium is never hidden on its own: the page is told it is.
    page.evaluate(
        """() => {
            Object.defineProperty(document, "hidden", {value: true, configurable: true});
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    assert post(server.url, new_message(ident, ts=1, direction="RECEIVED")) == 201
    assert post(server.url, new_message(ident, ts=2, direction="SENT")) == 201
    assert post(server.url, new_message(ident, ts=3, direction="RECEIVED")) == 201
    expect(page).to_have_title(f"(2) {title}", timeout=LIVE)
    page.evaluate(
        """() => {
            Object.defineProperty(document, "hidden", {value: false, configurable: true});
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    expect(page).to_have_title(title)


def test_the_page_reconnects_after_any_close_even_a_normal_one(page: Page, serve, agent_client):
    # daphne closes a socket older than --websocket_timeout with 1000, a code htmx's ws
    # extension does not reconnect on; an inbox left open for a day meets exactly that.
    server = serve(args=("--websocket_timeout", "2"))
    ident = uuid.uuid4()
    log_in(page, server.url, agent_client)
    page.add_init_script(RECORD_SOCKETS)
    page.goto(f"{server.url}/")
    page.wait_for_function("() => window.closeCodes.includes(1000)", timeout=LIVE)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE)
    assert post(server.url, new_conversation(ident)) == 201
    expect(page.locator(f"#conversation-{ident}")).to_be_visible(timeout=LIVE)


def test_a_message_too_big_for_a_frame_still_reaches_the_threads_viewer(
    page: Page, serve, agent_client
):
    server = serve()
    ident, huge, after = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert post(server.url, new_conversation(ident)) == 201
    log_in(page, server.url, agent_client)
    page.goto(f"{server.url}/conversations/{ident}/")
    status = page.locator("#live-status")
    expect(status).to_have_attribute("data-state", "live", timeout=LIVE)
    # ~270 KB of `<`: over 1 MiB escaped, so pushed as a refetch rather than as its bubble.
    assert post(server.url, new_message(ident, ts=1, message_id=huge, content="<" * 270_000)) == 201
    expect(page.locator(f"#messages #message-{huge}")).to_have_count(1, timeout=LIVE)
    assert len(page.locator(f"#message-{huge} p").text_content()) == 270_000
    # Still connected: the next message comes as a push.
    assert post(server.url, new_message(ident, ts=2, message_id=after, content="depois")) == 201
    expect(page.locator(f"#messages #message-{after} p")).to_have_text("depois", timeout=LIVE)
    expect(status).to_have_attribute("data-state", "live")


def test_fragments_applied_twice_and_out_of_order_leave_the_newest_state(
    page: Page, serve, agent_client
):
    from inbox import live
    from inbox.models import Conversation

    server = serve()
    ident = uuid.uuid4()
    assert post(server.url, new_conversation(ident)) == 201
    assert post(server.url, new_message(ident, ts=1)) == 201
    log_in(page, server.url, agent_client)
    page.add_init_script(RECORD_SOCKETS)
    page.goto(f"{server.url}/?status=all")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE)

    conversation = Conversation.objects.select_related("last_message").get(pk=ident)
    older = live.row_event(conversation, version=1, to_top=True)["show"]["en"]
    conversation.status = Conversation.Status.CLOSED
    newer = live.row_event(conversation, version=2, to_top=True)["show"]["en"]
    # The newer twice (a redelivery), then the older, as if two server processes' pushes
    # crossed on the way.
    for fragment in (newer, newer, older):
        page.evaluate(
            f"(html) => {LIVE_SOCKET}.dispatchEvent(new MessageEvent('message', {{data: html}}))",
            fragment,
        )
    row = page.locator(f"#conversation-{ident}")
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-status", "CLOSED")


@pytest.fixture
def private_redis() -> Iterator[tuple[str, Callable[[], subprocess.Popen]]]:
    """A Redis server of this test's own, on a free port, that the test may stop and restart.

    Yields its URL and a function that starts it (again).
    """
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server is not installed"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: tests that need it must run)")
        pytest.skip(reason)
    port = free_port()
    running: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        process = subprocess.Popen(  # noqa: S603
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        running.append(process)
        deadline = time.monotonic() + WAIT_LIMIT
        while not service_reachable(f"redis://127.0.0.1:{port}", port):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        return process

    yield f"redis://127.0.0.1:{port}/0", start
    for process in running:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_page_recovers_when_redis_comes_back(page: Page, serve, agent_client, private_redis):
    redis_url, start_redis = private_redis
    redis = start_redis()
    server = serve(REDIS_URL=redis_url)
    ident = uuid.uuid4()
    log_in(page, server.url, agent_client)
    page.goto(f"{server.url}/")
    status = page.locator("#live-status")
    expect(status).to_have_attribute("data-state", "live", timeout=LIVE)

    redis.terminate()
    redis.wait(WAIT_LIMIT)
    expect(status).to_have_attribute("data-state", "reconnecting", timeout=LIVE)
    # The layer is down: the webhook still stores the event and answers.
    assert post(server.url, new_conversation(ident)) == 201

    start_redis()
    expect(status).to_have_attribute("data-state", "live", timeout=LIVE * 2)
    expect(page.locator(f"#conversation-{ident}")).to_be_visible(timeout=LIVE)


def test_the_socket_follows_the_agent_to_another_thread(page: Page, serve, agent_client):
    server = serve()
    first, second, message_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert post(server.url, new_conversation(first, ts=0)) == 201
    assert post(server.url, new_conversation(second, ts=1)) == 201
    log_in(page, server.url, agent_client)
    page.goto(f"{server.url}/conversations/{first}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE)

    # htmx opens the other thread without a reload; the socket must follow it there.
    page.locator(f"#conversation-{second} a").click()
    expect(page).to_have_url(f"{server.url}/conversations/{second}/", timeout=LIVE)
    expect(page.locator("#conversation-status")).to_be_visible()

    event = new_message(second, ts=5, message_id=message_id, content="Segue o pedido")
    assert post(server.url, event) == 201
    expect(page.locator(f"#messages #message-{message_id} p").first).to_have_text(
        "Segue o pedido", timeout=LIVE
    )


def test_a_held_message_appears_when_its_conversation_arrives(page: Page, serve, agent_client):
    server = serve()
    ident = uuid.uuid4()
    log_in(page, server.url, agent_client)
    page.goto(f"{server.url}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE)

    # The provider delivered the message before its conversation: held, not shown.
    assert post(server.url, new_message(ident, ts=5, content="Cheguei antes da conversa")) == 202
    row = page.locator(f"#conversation-{ident}")
    expect(row).to_have_count(0)

    assert post(server.url, new_conversation(ident, ts=0)) == 201
    expect(row).to_contain_text("Cheguei antes da conversa", timeout=LIVE)
    row.locator("a").click()
    expect(page.locator("#messages > [id^=message-]")).to_have_count(1, timeout=LIVE)


def test_logging_out_in_another_tab_sends_this_one_to_the_login_form(
    page: Page, serve, agent_client
):
    server = serve()
    log_in(page, server.url, agent_client)
    page.add_init_script(RECORD_SOCKETS)
    page.goto(f"{server.url}/?status=all")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE)
    other_tab = page.context.new_page()  # the same session, as another tab of this browser
    other_tab.goto(f"{server.url}/")
    other_tab.get_by_role("button", name="Log out").click()
    other_tab.wait_for_url("**/accounts/login/**", timeout=LIVE)
    # The first tab's socket is closed by the server and the page goes to log in again,
    # instead of reconnecting and receiving every conversation's pushes while logged out.
    page.wait_for_url("**/accounts/login/?next=%2F%3Fstatus%3Dall", timeout=LIVE)
    assert post(server.url, new_conversation(uuid.uuid4())) == 201
    expect(page.locator("form input[name=username]")).to_be_visible()


def test_the_live_inbox_runs_under_its_content_security_policy(
    page: Page, violations: list[str], serve, agent
):
    # Everything an agent does in a session, watched for anything the policy blocks (and
    # for script errors): log in, pushes, the keyboard, htmx swaps, back and forward, a
    # socket that closes and reconnects, a close. Development settings: the policy is the
    # same there as in production.
    set_server_password(agent, "s3cret-pass-word")
    server = serve()
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert post(server.url, new_conversation(first, ts=0)) == 201
    assert post(server.url, new_message(first, ts=1, content="Bom dia")) == 201
    page.add_init_script(RECORD_SOCKETS)
    page.goto(f"{server.url}/")
    page.fill("input[name=username]", "ana")
    page.fill("input[name=password]", "s3cret-pass-word")
    with page.expect_response(f"{server.url}/") as landing:
        page.click("button[type=submit]")
    assert "script-src 'self' 'nonce-" in landing.value.headers["content-security-policy"]
    status = page.locator("#live-status")
    expect(status).to_have_attribute("data-state", "live", timeout=LIVE)

    # A push, then the keyboard opens the conversation it did not bring.
    assert post(server.url, new_conversation(second, ts=5)) == 201
    rows = page.locator("#conversation-list > [id^=conversation-]")
    expect(rows.first).to_have_id(f"conversation-{second}", timeout=LIVE)
    for key in ("j", "j", "Enter"):
        page.keyboard.press(key)
    expect(page).to_have_url(f"{server.url}/conversations/{first}/", timeout=LIVE)
    bubble = uuid.uuid4()
    assert post(server.url, new_message(first, ts=10, message_id=bubble, content="Oi")) == 201
    expect(page.locator(f"#message-{bubble} p")).to_have_text("Oi", timeout=LIVE)

    # Another thread through htmx, then back and forward: the socket follows each view.
    page.locator(f"#conversation-{second} a").click()
    expect(page).to_have_url(f"{server.url}/conversations/{second}/", timeout=LIVE)
    page.go_back()
    expect(page.locator("#conversation-thread")).to_have_attribute(
        "data-conversation-id", str(first), timeout=LIVE
    )
    page.go_forward()
    expect(page.locator("#conversation-thread")).to_have_attribute(
        "data-conversation-id", str(second), timeout=LIVE
    )
    expect(status).to_have_attribute("data-state", "live", timeout=LIVE)
    bubble = uuid.uuid4()
    assert post(server.url, new_message(second, ts=15, message_id=bubble, content="Tudo")) == 201
    expect(page.locator(f"#message-{bubble} p")).to_have_text("Tudo", timeout=LIVE)

    # The socket closes under the page; it reconnects and catches up.
    page.evaluate(f"() => {LIVE_SOCKET}.close()")
    assert post(server.url, new_conversation(third, ts=20)) == 201
    expect(page.locator(f"#conversation-{third}")).to_be_visible(timeout=LIVE)
    expect(status).to_have_attribute("data-state", "live", timeout=LIVE)

    # An htmx post, a tab and a search.
    page.click("#conversation-header button:has-text('Close')")
    expect(page.locator("#conversation-status")).to_have_attribute("data-status", "CLOSED")
    page.click("a[data-filter=all]")
    page.fill("#search-q", "bom")
    expect(page.locator("#conversation-list > li[id^=conversation-]")).to_have_count(
        1, timeout=LIVE
    )
    assert violations == []


def test_a_socket_that_missed_a_push_makes_its_page_refetch(
    page: Page, serve, agent_client, redis_url
):
    import asyncio
    import threading

    from channels_redis.core import RedisChannelLayer
    from django.utils import timezone

    from inbox import live

    prefix = f"test-{uuid.uuid4().hex[:8]}"
    server = serve(REDIS_URL=redis_url, CHANNEL_LAYER_PREFIX=prefix)
    log_in(page, server.url, agent_client)
    page.goto(f"{server.url}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE)

    # Stored without a push, as if its push had been dropped on the way to this socket.
    ident = factories.conversation_row(created_at=timezone.now()).id
    # A sender's tail: batch 1 of an origin this socket never heard of went out after it
    # joined, so the socket missed it and tells its page to refetch.
    missed = {
        "type": live.SYNC,
        "group": live.AGENTS_GROUP,
        "origin": "elsewhere.1",
        "seq": 1,
        "at": time.time(),
    }
    layer = RedisChannelLayer(hosts=[redis_url], prefix=prefix)
    # Playwright's event loop runs in this thread: the layer's own loop runs in another.
    sending = threading.Thread(
        target=asyncio.run, args=(layer.group_send(live.AGENTS_GROUP, missed),)
    )
    sending.start()
    sending.join(WAIT_LIMIT)
    expect(page.locator(f"#conversation-{ident}")).to_be_visible(timeout=LIVE)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
