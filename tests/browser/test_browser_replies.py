"""Replying in Debian's Chromium, end to end (README "Replies"): a real server, a real
worker and a stub provider on 127.0.0.1.

An agent types a reply and presses Enter; the bubble appears without a reload on their page
and on a second agent's, its clock turns into a tick when the provider takes it, two when
the provider reports it DELIVERED, two blue when READ. A reply the provider refuses turns
red with the reason, and Retry sends it again until it is SENT. What the agent typed is
shown as text, never as markup.

Both ways the worker's changes reach the pages: through Redis, and under `make run`'s
embedded defaults (the in-process layer; the worker tells the server, README "Live ticks").
The Redis run is skipped without Redis, a failure under CI=true.
"""

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import Page, expect

from tests.browser.test_browser_live import log_in, post
from tests.conftest import WAIT_LIMIT, database_url, new_conversation, sign
from tests.stub_provider import Reply, StubProvider

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIVE = WAIT_LIMIT * 1000  # Playwright's expect() takes milliseconds
SECRET = "browser-provider-secret"


@pytest.fixture
def worker(tmp_path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start `manage.py worker` on the test database; killed at the end."""
    started: list[subprocess.Popen] = []

    def start(**env: str) -> subprocess.Popen:
        log = tmp_path / f"worker-{len(started)}.log"
        process = subprocess.Popen(
            [sys.executable, "manage.py", "worker", "--interval", "0.1"],
            cwd=settings.BASE_DIR,
            env={
                **{k: v for k, v in os.environ.items() if k != "REDIS_URL"},
                "DATABASE_URL": database_url(),
                "DEBUG": "true",
                "SQLITE_BUSY_TIMEOUT": "60",
                "PYTHONUNBUFFERED": "1",
                **env,
            },
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def status_event(message_id: str, status: str) -> dict:
    return {
        "type": "MESSAGE_STATUS",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "data": {"id": message_id, "status": status},
    }


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_LIMIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("layer", ["redis", "embedded"])
def test_agents_reply_and_see_the_ticks_change_and_retry_a_failed_reply(
    browser, serve, worker, agent_client, django_user_model, request, layer
):
    ident = uuid.uuid4()
    other = django_user_model.objects.create_user(username="bruno", password="x")
    second_client = Client()
    second_client.force_login(other)
    # The first reply is taken, the second refused for good, its retry taken.
    refusal = '{"error": "recipient is not on WhatsApp"}'
    with StubProvider(Reply(200), Reply(400, refusal), Reply(200)) as provider:
        env = {"PROVIDER_URL": provider.url, "PROVIDER_SECRET": SECRET}
        if layer == "redis":
            env["REDIS_URL"] = request.getfixturevalue("redis_url")
            # The test's own keys on the shared Redis.
            env["CHANNEL_LAYER_PREFIX"] = f"test-{uuid.uuid4().hex[:8]}"
        server = serve(**env)
        if layer == "embedded":
            env["WORKER_NOTIFY_URL"] = server.url  # as make run sets it
        worker(**env)
        assert post(server.url, new_conversation(ident)) == 201

        pages: list[Page] = []
        for client in (agent_client, second_client):
            context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 800})
            page = context.new_page()
            log_in(page, server.url, client)
            page.goto(f"{server.url}/conversations/{ident}/")
            expect(page.locator("#live-status")).to_have_attribute(
                "data-state", "live", timeout=LIVE
            )
            pages.append(page)
        mine, theirs = pages

        # Shift+Enter is a new line, Enter sends; the box is emptied and keeps the focus.
        box = mine.locator("#reply-content")
        box.click()
        box.type("Olá <b>cliente</b>")
        box.press("Shift+Enter")
        box.type("linha 2")
        box.press("Enter")
        expect(box).to_have_value("", timeout=LIVE)
        expect(box).to_be_focused()

        bubbles = [page.locator("#messages > li[data-direction=SENT]") for page in pages]
        for bubble in bubbles:
            expect(bubble).to_have_count(1, timeout=LIVE)
            # Text, not markup: the angle brackets are shown, no <b> element is made.
            expect(bubble.locator("p")).to_have_text("Olá <b>cliente</b>\nlinha 2")
            expect(bubble.locator("p b")).to_have_count(0)
            expect(bubble.locator("[data-sent-by]")).to_have_text("ana")
        message_id = bubbles[0].get_attribute("id").removeprefix("message-")

        # The provider took it: one tick, everywhere; then its reports turn the ticks.
        wait_for(lambda: provider.ids() == [message_id], "the provider to receive the reply")
        (received,) = provider.received
        assert received.headers["x-hub-signature-256"] == sign(received.body, SECRET)
        assert received.event["data"]["content"] == "Olá <b>cliente</b>\nlinha 2"
        for bubble in bubbles:
            expect(bubble).to_have_attribute("data-delivery", "SENT", timeout=LIVE)
        for status, label in (("DELIVERED", "Delivered"), ("READ", "Read")):
            assert post(server.url, status_event(message_id, status)) == 200
            for bubble in bubbles:
                expect(bubble).to_have_attribute("data-delivery", status, timeout=LIVE)
                expect(bubble.locator("[data-delivery-state] .sr-only")).to_have_text(label)

        # The list's row says it was us, at once, on the other agent's page too.
        expect(theirs.locator(f"#conversation-{ident}")).to_contain_text("You:")

        # A reply the provider refuses: red, with its reason, on both pages; Retry on the
        # other agent's page sends it again (same id) and it turns SENT.
        box.type("Segunda resposta")
        box.press("Enter")
        failed = [page.locator("#messages > li[data-direction=SENT]").nth(1) for page in pages]
        for bubble in failed:
            expect(bubble).to_have_attribute("data-delivery", "FAILED", timeout=LIVE)
            expect(bubble.locator("[data-delivery-error]")).to_contain_text(
                "recipient is not on WhatsApp"
            )
        failed_id = failed[0].get_attribute("id").removeprefix("message-")
        failed[1].get_by_role("button", name="Retry").click()
        for bubble in failed:
            expect(bubble).to_have_attribute("data-delivery", "SENT", timeout=LIVE)
            expect(bubble.locator("[data-delivery-error]")).to_have_count(0)
        assert provider.ids() == [message_id, failed_id, failed_id]
        assert all(
            json.loads(r.body)["data"]["id"] == r.headers["idempotency-key"]
            for r in provider.received
        )
        # The other agent closes it: this page's box turns off and says why, live.
        theirs.get_by_role("button", name="Close").click()
        expect(box).to_be_disabled(timeout=LIVE)
        expect(mine.locator("#reply-help")).to_have_text("Reopen to reply")
        # A note is allowed on a closed conversation (README "Triage"): the Note toggle
        # turns the box on; Enter adds it, yellow and signed, on both pages, and the
        # provider never hears of it.
        mine.get_by_text("Note", exact=True).click()
        expect(box).to_be_enabled()
        expect(mine.locator("#reply-help")).to_contain_text("Only agents see a note")
        box.type("Cliente pediu <i>reembolso</i>")
        box.press("Enter")
        expect(box).to_have_value("", timeout=LIVE)
        for page in pages:
            note = page.locator("#messages > li[data-note]")
            expect(note).to_have_count(1, timeout=LIVE)
            expect(note.locator("p")).to_have_text("Cliente pediu <i>reembolso</i>")
            expect(note).to_contain_text("Note by ana")
        mine.get_by_text("Reply", exact=True).click()
        expect(box).to_be_disabled()
        theirs.get_by_role("button", name="Reopen").click()
        expect(box).to_be_enabled(timeout=LIVE)
        assert provider.ids() == [message_id, failed_id, failed_id]
        for page in pages:
            page.context.close()


def test_without_a_provider_the_composer_says_why_it_is_off(page: Page, serve, agent_client):
    server = serve(PROVIDER_URL="")
    ident = uuid.uuid4()
    assert post(server.url, new_conversation(ident)) == 201
    log_in(page, server.url, agent_client)
    page.goto(f"{server.url}/conversations/{ident}/")
    expect(page.locator("#reply-content")).to_be_disabled()
    expect(page.locator("#reply-help")).to_contain_text("no messaging provider")
