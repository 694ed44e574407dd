"""The agents' socket, `/ws/inbox/`, through WebsocketCommunicator.

Every test runs on the in-memory channel layer and on channels-redis against the local
Redis (skipped locally without it, a failure under CI=true). The webhook is posted for real,
so each push goes services -> on_commit -> live -> group_send -> consumer.
"""

import asyncio
import re
import uuid
from collections.abc import Callable

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from inbox import consumers, live
from project.asgi import application
from tests import markup
from tests.conftest import close_conversation, new_conversation, new_message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["memory", "redis"])
def layer(request, settings) -> str:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "inbox.channel_layer.InboxChannelLayer",
                # A prefix of its own, so runs sharing the Redis never see each other's groups.
                "CONFIG": {"hosts": [url], "prefix": f"test-{uuid.uuid4().hex[:8]}"},
            }
        }
    else:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return request.param


@pytest.fixture
def post_event(post_event) -> Callable:
    """The webhook, answered and its pushes sent: a socket that connects next never gets
    the pushes of what was posted before it (on Redis they leave from the sender's thread)."""

    def post(*args, **kwargs):
        response = post_event(*args, **kwargs)
        assert live.wait_until_sent(timeout=10)
        return response

    return post


@pytest.fixture
def session_cookie(agent_client: Client) -> str:
    return agent_client.cookies["sessionid"].value


def communicator(
    query: str = "", *, cookie: str | None = None, origin: str = "http://127.0.0.1"
) -> WebsocketCommunicator:
    headers = [(b"host", b"127.0.0.1"), (b"origin", origin.encode())]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(application, f"/ws/inbox/?{query}", headers=headers)


def run(scenario: Callable) -> None:
    """Run an async scenario; the webhook it posts pushes back into the same event loop."""
    async_to_sync(scenario)()


async def received_all(socket: WebsocketCommunicator) -> str:
    """Everything the socket received until it goes quiet.

    Pushes leave from the sender thread after the webhook has answered, so the first frame
    may come a little later than the answer: wait longer for it than for the rest.
    """
    frames = []
    if await socket.receive_nothing(timeout=2):
        return ""
    while not await socket.receive_nothing(timeout=0.3):
        frames.append(await socket.receive_from())
    return "".join(frames)


def test_an_anonymous_socket_is_refused_before_any_data(layer):
    async def scenario():
        socket = communicator()
        connected, _ = await socket.connect()
        assert not connected
        await socket.disconnect()

    run(scenario)


def test_a_socket_from_another_site_is_refused(layer, session_cookie):
    async def scenario():
        socket = communicator(cookie=session_cookie, origin="https://evil.example")
        connected, _ = await socket.connect()
        assert not connected
        await socket.disconnect()

    run(scenario)


@pytest.mark.parametrize(
    ("scheme", "host", "origin", "opens"),
    [
        pytest.param("ws", "127.0.0.1:8000", "http://127.0.0.1:8000", True, id="same-port"),
        pytest.param("ws", "127.0.0.1:8000", "http://127.0.0.1:9000", False, id="foreign-port"),
        pytest.param("ws", "127.0.0.1", "http://127.0.0.1:9000", False, id="port-vs-none"),
        pytest.param("ws", "127.0.0.1", "https://127.0.0.1", False, id="https-page-ws"),
        pytest.param("wss", "127.0.0.1", "http://127.0.0.1", False, id="http-page-wss"),
        pytest.param("wss", "127.0.0.1", "https://127.0.0.1", True, id="https-wss"),
        pytest.param("ws", "127.0.0.1", "http://localhost", False, id="other-allowed-host"),
        pytest.param("ws", "127.0.0.1", None, False, id="no-origin"),
    ],
)
def test_a_socket_opens_only_from_its_own_scheme_host_and_port(
    layer, session_cookie, scheme, host, origin, opens
):
    headers = [(b"host", host.encode()), (b"cookie", f"sessionid={session_cookie}".encode())]
    if origin:
        headers.append((b"origin", origin.encode()))

    async def scenario():
        socket = WebsocketCommunicator(application, "/ws/inbox/", headers=headers)
        socket.scope["scheme"] = scheme
        connected, _ = await socket.connect()
        assert connected is opens
        await socket.disconnect()

    run(scenario)


@pytest.mark.parametrize(
    ("settings_change", "headers", "origin"),
    [
        # Behind a TLS proxy that daphne hears over plain ws, with TRUST_X_FORWARDED_PROTO.
        pytest.param(
            {"SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https")},
            [(b"x-forwarded-proto", b"https")],
            "https://127.0.0.1",
            id="trusted-proxy",
        ),
        pytest.param(
            {"CSRF_TRUSTED_ORIGINS": ["https://inbox.example.com"]},
            [],
            "https://inbox.example.com",
            id="csrf-trusted-origin",
        ),
    ],
)
def test_a_socket_opens_from_what_the_settings_trust(
    layer, session_cookie, settings, settings_change, headers, origin
):
    for name, value in settings_change.items():
        setattr(settings, name, value)

    async def scenario():
        socket = communicator(cookie=session_cookie, origin=origin)
        socket.scope["headers"] = [*socket.scope["headers"], *headers]
        assert (await socket.connect())[0]
        await socket.disconnect()
        # Without the proxy's header, the same page's Origin is another scheme's.
        if headers:
            plain = communicator(cookie=session_cookie, origin=origin)
            assert not (await plain.connect())[0]

    run(scenario)


def test_an_agent_receives_the_row_of_a_new_conversation_at_the_top(
    layer, session_cookie, post_event
):
    ident = uuid.uuid4()

    async def scenario():
        socket = communicator(cookie=session_cookie)
        assert (await socket.connect())[0]
        assert (await sync_to_async(post_event)(new_conversation(ident))).status_code == 201
        pushed = await socket.receive_from()
        row = markup.inside(pushed, "afterbegin:#conversation-list", f"conversation-{ident}")
        assert row["data-status"] == "OPEN"
        # Safe to apply twice: the insert is preceded by a delete of the same id.
        swaps = markup.swaps(pushed)
        assert swaps.index((f"conversation-{ident}", "delete")) < markup.swapped(pushed).index(
            "afterbegin:#conversation-list"
        )
        await socket.disconnect()

    run(scenario)


def test_a_bubble_goes_only_to_the_sockets_viewing_its_thread(layer, session_cookie, post_event):
    watched, other = uuid.uuid4(), uuid.uuid4()
    message_id = uuid.uuid4()
    post_event(new_conversation(watched))
    post_event(new_conversation(other))

    async def scenario():
        viewing = communicator(f"conversation={watched}", cookie=session_cookie)
        elsewhere = communicator(f"conversation={other}", cookie=session_cookie)
        listing = communicator(cookie=session_cookie)
        for socket in (viewing, elsewhere, listing):
            assert (await socket.connect())[0]
        event = new_message(watched, message_id=message_id, content="Quero o plano premium")
        assert (await sync_to_async(post_event)(event)).status_code == 201

        seen_by_viewer = await received_all(viewing)
        shown = markup.inside(seen_by_viewer, "beforeend:#messages", f"message-{message_id}")
        assert shown["data-direction"] == "RECEIVED"
        assert "Quero o plano premium" in seen_by_viewer
        assert "beforeend:#messages" in markup.swapped(seen_by_viewer)
        for socket in (elsewhere, listing):
            seen = await received_all(socket)
            assert markup.has_id(seen, f"conversation-{watched}")  # the row moves up for everyone
            assert f"message-{message_id}" not in seen
        for socket in (viewing, elsewhere, listing):
            await socket.disconnect()

    run(scenario)


def test_a_late_message_is_placed_before_the_one_that_follows_it(layer, session_cookie, post_event):
    ident, later, late = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    post_event(new_conversation(ident))
    post_event(new_message(ident, ts=20, message_id=later))

    async def scenario():
        socket = communicator(f"conversation={ident}", cookie=session_cookie)
        assert (await socket.connect())[0]
        event = new_message(ident, ts=10, message_id=late)
        assert (await sync_to_async(post_event)(event)).status_code == 201
        seen = await received_all(socket)
        assert f"beforebegin:#message-{later}" in markup.swapped(seen)
        # Not the latest message: the row is updated where it is, not moved to the top.
        assert "afterbegin:#conversation-list" not in seen
        assert markup.has_id(seen, f"conversation-{ident}")
        await socket.disconnect()

    run(scenario)


def test_a_close_leaves_the_open_tab_and_flips_the_header(layer, session_cookie, post_event):
    ident = uuid.uuid4()
    post_event(new_conversation(ident))

    async def scenario():
        open_tab = communicator(f"status=open&conversation={ident}", cookie=session_cookie)
        closed_tab = communicator("status=closed", cookie=session_cookie)
        all_tab = communicator("status=all", cookie=session_cookie)
        for socket in (open_tab, closed_tab, all_tab):
            assert (await socket.connect())[0]
        assert (await sync_to_async(post_event)(close_conversation(ident))).status_code == 200

        seen_open = await received_all(open_tab)
        assert (f"conversation-{ident}", "delete") in markup.swaps(seen_open)
        assert "afterbegin" not in seen_open  # deleted, not re-inserted
        assert markup.attr(seen_open, "conversation-status", "data-status") == "CLOSED"
        for socket in (closed_tab, all_tab):
            seen = await received_all(socket)
            row = markup.inside(seen, "afterbegin:#conversation-list", f"conversation-{ident}")
            assert row["data-status"] == "CLOSED"
            assert "conversation-status" not in seen  # no thread open there
        for socket in (open_tab, closed_tab, all_tab):
            await socket.disconnect()

    run(scenario)


def test_a_row_honours_the_search_the_page_shows(layer, session_cookie, post_event):
    matching, other = uuid.uuid4(), uuid.uuid4()
    post_event(new_conversation(matching))
    post_event(new_conversation(other))

    async def scenario():
        socket = communicator("q=premium", cookie=session_cookie)
        assert (await socket.connect())[0]
        await sync_to_async(post_event)(new_message(other, content="Qual o horário?"))
        seen = await received_all(socket)
        assert (f"conversation-{other}", "delete") in markup.swaps(seen)
        assert "afterbegin" not in seen
        await sync_to_async(post_event)(new_message(matching, content="Plano PREMIUM, por favor"))
        seen = await received_all(socket)
        row = markup.inside(seen, "afterbegin:#conversation-list", f"conversation-{matching}")
        assert row["data-status"] == "OPEN"
        await socket.disconnect()

    run(scenario)


def test_a_duplicate_delivery_pushes_nothing(layer, session_cookie, post_event):
    ident = uuid.uuid4()
    post_event(new_conversation(ident))

    async def scenario():
        socket = communicator(cookie=session_cookie)
        assert (await socket.connect())[0]
        assert (await sync_to_async(post_event)(new_conversation(ident))).status_code == 200
        assert await socket.receive_nothing(timeout=0.3)
        await socket.disconnect()

    run(scenario)


def test_a_held_message_is_pushed_when_its_conversation_arrives(layer, session_cookie, post_event):
    ident, message_id = uuid.uuid4(), uuid.uuid4()

    async def scenario():
        socket = communicator(f"conversation={ident}", cookie=session_cookie)
        assert (await socket.connect())[0]
        early = new_message(ident, ts=5, message_id=message_id, content="Cheguei antes")
        assert (await sync_to_async(post_event)(early)).status_code == 202
        assert await socket.receive_nothing(timeout=0.3)
        assert (await sync_to_async(post_event)(new_conversation(ident))).status_code == 201
        seen = await received_all(socket)
        assert markup.has_id(seen, f"message-{message_id}")
        assert "Cheguei antes" in seen
        await socket.disconnect()

    run(scenario)


def test_a_socket_follows_the_page_to_another_thread_and_tab(layer, session_cookie, post_event):
    first, second = uuid.uuid4(), uuid.uuid4()
    post_event(new_conversation(first))
    post_event(new_conversation(second))
    in_second = uuid.uuid4()

    async def scenario():
        socket = communicator(f"status=open&conversation={first}", cookie=session_cookie)
        assert (await socket.connect())[0]
        # htmx navigated to the second thread on the Closed tab, without a reload.
        view = {"type": "view", "status": "closed", "q": "", "conversation": str(second)}
        await socket.send_json_to(view)
        await socket.receive_nothing(timeout=0.2)

        event = new_message(second, message_id=in_second, content="Chegou?")
        assert (await sync_to_async(post_event)(event)).status_code == 201
        seen = await received_all(socket)
        assert markup.has_id(seen, f"message-{in_second}")
        # The Closed tab does not list an open conversation: its row is taken out, not shown.
        assert (f"conversation-{second}", "delete") in markup.swaps(seen)
        assert "afterbegin:#conversation-list" not in seen

        assert (await sync_to_async(post_event)(new_message(first))).status_code == 201
        assert "data-direction" not in await received_all(socket)  # no longer its thread
        await socket.disconnect()

    run(scenario)


@pytest.mark.parametrize("noise", ["not json", "[1, 2]", '{"type": "other"}', '{"type": "view"'])
def test_anything_else_a_page_sends_is_ignored(layer, session_cookie, post_event, noise):
    ident = uuid.uuid4()
    post_event(new_conversation(ident))

    async def scenario():
        socket = communicator(f"conversation={ident}", cookie=session_cookie)
        assert (await socket.connect())[0]
        await socket.send_to(text_data=noise)
        assert (await sync_to_async(post_event)(new_message(ident))).status_code == 201
        assert "data-direction" in await received_all(socket)
        await socket.disconnect()

    run(scenario)


@pytest.mark.parametrize(
    ("header", "label"), [(b"pt-BR,pt;q=0.9", "Aberta"), (b"en-US,en;q=0.9", "Open")]
)
def test_pushed_rows_speak_the_agents_language(layer, agent_client, post_event, header, label):
    ident = uuid.uuid4()

    async def scenario():
        socket = communicator(cookie=agent_client.cookies["sessionid"].value)
        socket.scope["headers"].append((b"accept-language", header))
        assert (await socket.connect())[0]
        assert (await sync_to_async(post_event)(new_conversation(ident))).status_code == 201
        pushed = await received_all(socket)
        assert markup.has_id(pushed, f"conversation-{ident}")
        assert f">{label}</span>" in pushed
        await socket.disconnect()

    run(scenario)


@pytest.mark.parametrize(
    ("cookie", "label"), [("PT-BR", "Aberta"), ("pt-BR", "Aberta"), ("EN", "Open"), ("xx", "Open")]
)
def test_a_language_cookie_in_any_case_is_spoken_not_a_crash(
    layer, session_cookie, post_event, cookie, label
):
    """`/i18n/setlang/` stores the code as posted (`PT-BR`); the pushes are keyed by the
    inbox's own codes (`pt-br`), and a miss closed the socket with 1011 on every push."""
    ident = uuid.uuid4()

    async def scenario():
        socket = communicator(cookie=f"{session_cookie}; django_language={cookie}")
        assert (await socket.connect())[0]
        assert (await sync_to_async(post_event)(new_conversation(ident))).status_code == 201
        pushed = await received_all(socket)
        assert f">{label}</span>" in pushed
        # Still open: a second push arrives too.
        assert (await sync_to_async(post_event)(new_conversation())).status_code == 201
        assert "conversation-" in await received_all(socket)
        await socket.disconnect()

    run(scenario)


def test_the_live_layer_knows_which_groups_have_sockets(layer):
    """The live layer renders only for groups with a socket: asked of either layer, the answer
    follows joins and leaves."""
    from channels.layers import get_channel_layer

    channel_layer = get_channel_layer()
    thread, agents = live.conversation_group(uuid.uuid4()), live.AGENTS_GROUP
    # Asked as the webhook asks it: from sync code, outside any event loop.
    assert async_to_sync(live.listened)(channel_layer, [thread, agents]) == set()
    channel = async_to_sync(channel_layer.new_channel)()
    async_to_sync(channel_layer.group_add)(thread, channel)
    assert async_to_sync(live.listened)(channel_layer, [thread, agents]) == {thread}
    async_to_sync(channel_layer.group_discard)(thread, channel)
    assert async_to_sync(live.listened)(channel_layer, [thread, agents]) == set()


def test_logging_out_closes_that_sessions_sockets_only(layer, agent, agent_client, session_cookie):
    other_device = Client()
    other_device.force_login(agent)
    other_cookie = other_device.cookies["sessionid"].value

    async def scenario():
        tabs = [
            communicator(cookie=session_cookie),
            communicator("status=all", cookie=session_cookie),
        ]
        elsewhere = communicator(cookie=other_cookie)
        for socket in (*tabs, elsewhere):
            assert (await socket.connect())[0]
        response = await sync_to_async(agent_client.post)("/accounts/logout/")
        assert response.status_code == 302
        for socket in tabs:
            closed = await socket.receive_output(timeout=2)
            assert closed == {"type": "websocket.close", "code": consumers.SESSION_ENDED}
        # The agent's other session is still logged in, and its socket still open.
        assert await elsewhere.receive_nothing(timeout=0.3)
        await elsewhere.disconnect()

    run(scenario)


# --- Revocation: what ends a session's right to its sockets (README Security, "Logins") ---


async def closed_for_the_session(socket: WebsocketCommunicator, timeout: float = 3) -> bool:
    return await socket.receive_output(timeout=timeout) == {
        "type": "websocket.close",
        "code": consumers.SESSION_ENDED,
    }


async def stays_open(socket: WebsocketCommunicator, timeout: float) -> bool:
    """No close arrives within `timeout`. Frames other than a close are allowed: a socket of
    the Redis layer may be sent a resync marker by a sender it has not heard from yet, which
    the page answers with a refetch, not a lost connection."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # receive_nothing, not a timed receive_output: the latter cancels the consumer on timeout.
    while (left := deadline - loop.time()) > 0:
        if await socket.receive_nothing(timeout=left):
            return True
        if (await socket.receive_output())["type"] == "websocket.close":
            return False
    return True


def other_session_of(agent) -> str:
    other_device = Client()
    other_device.force_login(agent)
    return other_device.cookies["sessionid"].value


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda agent: setattr(agent, "is_active", False), id="deactivated"),
        pytest.param(lambda agent: agent.set_password("a-new-pass-phrase"), id="new-password"),
    ],
)
def test_a_revoked_account_has_every_socket_closed(layer, agent, session_cookie, change):
    other_cookie = other_session_of(agent)

    def revoke():
        change(agent)
        agent.save()

    async def scenario():
        sockets = [communicator(cookie=session_cookie), communicator(cookie=other_cookie)]
        for socket in sockets:
            assert (await socket.connect())[0]
        await sync_to_async(revoke)()
        for socket in sockets:
            assert await closed_for_the_session(socket)
        # And it cannot open a new one.
        assert not (await communicator(cookie=session_cookie).connect())[0]

    run(scenario)


def test_an_account_change_that_revokes_nothing_keeps_the_sockets(layer, agent, session_cookie):
    def rename():
        agent.first_name = "Ana Maria"
        agent.save()

    async def scenario():
        socket = communicator(cookie=session_cookie)
        assert (await socket.connect())[0]
        await sync_to_async(rename)()
        assert await socket.receive_nothing(timeout=1)
        await socket.disconnect()

    run(scenario)


@pytest.mark.parametrize("how", ["delete", "clearsessions"])
def test_a_deleted_session_has_its_sockets_closed_only(layer, agent, session_cookie, how):
    from django.contrib.sessions.models import Session
    from django.core.management import call_command
    from django.utils import timezone

    other_cookie = other_session_of(agent)

    def delete():
        if how == "delete":
            Session.objects.filter(session_key=session_cookie).delete()
        else:  # an expired row, as clearsessions finds it
            Session.objects.filter(session_key=session_cookie).update(expire_date=timezone.now())
            call_command("clearsessions")
        assert not Session.objects.filter(session_key=session_cookie).exists()

    async def scenario():
        socket = communicator(cookie=session_cookie)
        elsewhere = communicator(cookie=other_cookie)
        for each in (socket, elsewhere):
            assert (await each.connect())[0]
        await sync_to_async(delete)()
        assert await closed_for_the_session(socket)
        assert await stays_open(elsewhere, timeout=0.5)
        await elsewhere.disconnect()

    run(scenario)


def expire_in(session_key: str, seconds: float) -> None:
    from datetime import timedelta

    from django.contrib.sessions.models import Session
    from django.utils import timezone

    expire_date = timezone.now() + timedelta(seconds=seconds)
    assert Session.objects.filter(session_key=session_key).update(expire_date=expire_date) == 1


def test_a_socket_is_closed_when_its_session_expires(layer, session_cookie, post_event):
    expire_in(session_cookie, 1.5)

    async def scenario():
        socket = communicator(cookie=session_cookie)
        assert (await socket.connect())[0]
        # Nothing pushed, nothing sent: the socket's own timer ends it.
        assert await closed_for_the_session(socket, timeout=5)

    run(scenario)


def test_an_expired_session_gets_no_push(layer, agent, session_cookie, post_event):
    """The first push after the expiry checks it: nothing of the conversation is sent."""
    ident = uuid.uuid4()
    expire_in(session_cookie, 1.5)

    async def scenario():
        socket = communicator(cookie=session_cookie)
        assert (await socket.connect())[0]
        await asyncio.sleep(1.6)  # past the expiry (the timer may or may not have run)
        await sync_to_async(post_event)(new_conversation(ident))
        output = await socket.receive_output(timeout=3)
        assert output == {"type": "websocket.close", "code": consumers.SESSION_ENDED}

    run(scenario)


def test_a_session_extended_since_the_socket_opened_keeps_it(layer, session_cookie, post_event):
    ident = uuid.uuid4()
    expire_in(session_cookie, 1)

    async def scenario():
        socket = communicator(cookie=session_cookie)
        assert (await socket.connect())[0]
        # As a request that saves the session does: the row's expiry moves on.
        await sync_to_async(expire_in)(session_cookie, 3600)
        assert await socket.receive_nothing(timeout=2)
        await sync_to_async(post_event)(new_conversation(ident))
        assert markup.has_id(await socket.receive_from(timeout=3), f"conversation-{ident}")
        await socket.disconnect()

    run(scenario)


def test_a_delivery_state_change_re_pushes_the_bubble_in_place(layer, session_cookie, post_event):
    """README, "Replies": a status that moves a message forward replaces its bubble (same
    id) for the thread's viewers; one that moves nothing pushes nothing."""
    ident, message_id = uuid.uuid4(), uuid.uuid4()
    post_event(new_conversation(ident))
    post_event(new_message(ident, message_id=message_id, direction="SENT", content="Promoção"))
    status = {
        "type": "MESSAGE_STATUS",
        "timestamp": new_message(ident, ts=5)["timestamp"],
        "data": {"id": str(message_id), "status": "READ"},
    }

    async def scenario():
        viewing = communicator(f"conversation={ident}", cookie=session_cookie)
        assert (await viewing.connect())[0]
        assert (await sync_to_async(post_event)(status)).status_code == 200
        seen = await received_all(viewing)
        assert f'id="message-{message_id}"' in seen
        assert "Promoção" in seen
        assert (await sync_to_async(post_event)(status)).status_code == 200
        assert await viewing.receive_nothing(timeout=0.5)
        await viewing.disconnect()

    run(scenario)


def tab_counts(pushed: str) -> dict[str, str]:
    """The filter tabs' counts a push swaps in, by filter (the last push of each wins)."""
    return dict(re.findall(r'<span id="tab-count-(\w+)"[^>]*>([^<]*)</span>', pushed))


def test_the_tab_counts_follow_every_push(layer, session_cookie, post_event):
    # Issue 12: the tabs stayed at their page-load counts while rows arrived.
    ident = uuid.uuid4()
    post_event(new_conversation(uuid.uuid4()))

    async def scenario():
        plain = communicator(cookie=session_cookie)
        assert (await plain.connect())[0]
        assert (await sync_to_async(post_event)(new_conversation(ident))).status_code == 201
        # Mine is this agent's, Unassigned and the Open tab's "N waiting" everyone's.
        triage = {"mine": "0", "unassigned": "2", "waiting": "0"}
        counts = {"open": "2", "closed": "0", "all": "2", **triage}
        assert tab_counts(await received_all(plain)) == counts
        assert (await sync_to_async(post_event)(close_conversation(ident))).status_code == 200
        counts = {"open": "1", "closed": "1", "all": "2", **triage, "unassigned": "1"}
        assert tab_counts(await received_all(plain)) == counts
        await plain.disconnect()

    run(scenario)


def test_a_searching_page_gets_the_counts_of_its_search(layer, session_cookie, post_event):
    matching, other = uuid.uuid4(), uuid.uuid4()
    for ident in (matching, other):
        post_event(new_conversation(ident))

    async def scenario():
        searching = communicator("q=boleto", cookie=session_cookie)
        assert (await searching.connect())[0]
        event = new_message(matching, content="Segunda via do boleto")
        assert (await sync_to_async(post_event)(event)).status_code == 201
        # One conversation matches, though two are open.
        assert tab_counts(await received_all(searching)) == {"open": "1", "closed": "0", "all": "1"}
        await searching.disconnect()

    run(scenario)


def test_a_new_message_updates_the_open_threads_header_count(layer, session_cookie, post_event):
    # Issue 12: an open thread's header said "0 messages" under messages that arrived live.
    ident = uuid.uuid4()
    post_event(new_conversation(ident))

    async def scenario():
        viewing = communicator(f"conversation={ident}", cookie=session_cookie)
        assert (await viewing.connect())[0]
        assert (await sync_to_async(post_event)(new_message(ident))).status_code == 201
        seen = await received_all(viewing)
        header = re.search(r'<header id="conversation-header".*?</header>', seen, re.S)
        assert header is not None
        text = " ".join(re.sub(r"<[^>]+>", " ", header.group()).split())
        assert "· 1 message" in text
        await viewing.disconnect()

    run(scenario)
