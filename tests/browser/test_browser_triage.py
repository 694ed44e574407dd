"""Two agents' pages in Debian's Chromium against a real server process (README, "Triage"):
one assigns, the other's Unassigned tab loses the row live; a message makes a row bold
with a dot for the agent not looking, and opening the thread clears it."""

import uuid

import pytest
from django.test import Client
from playwright.sync_api import Browser, Page, expect

from tests import factories
from tests.browser.test_browser_live import LIVE, log_in, post
from tests.conftest import new_conversation, new_message

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def agent_page(browser: Browser, base_url: str, username: str) -> Page:
    client = Client()
    client.force_login(factories.agent(username))
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    log_in(page, base_url, client)
    return page


def live(page: Page) -> None:
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE)
    # The pointer away from the list, so no push waits behind the "new updates" bar.
    page.mouse.move(1200, 880)


def test_one_agent_assigns_and_the_others_unassigned_tab_loses_the_row(browser: Browser, serve):
    server = serve()
    taken, left = uuid.uuid4(), uuid.uuid4()
    for ident in (taken, left):
        assert post(server.url, new_conversation(ident)) == 201
    ana = agent_page(browser, server.url, "ana")
    bea = agent_page(browser, server.url, "bea")
    bea.goto(f"{server.url}/?assignee=none")
    live(bea)
    expect(bea.locator(f"#conversation-{taken}")).to_be_visible()
    expect(bea.locator("#tab-count-unassigned")).to_have_text("2")

    ana.goto(f"{server.url}/conversations/{taken}/")
    live(ana)
    ana.get_by_role("button", name="Assign to me").click()
    expect(ana.locator("#conversation-header")).to_contain_text("Assigned to ana", timeout=LIVE)

    expect(bea.locator(f"#conversation-{taken}")).to_have_count(0, timeout=LIVE)
    expect(bea.locator(f"#conversation-{left}")).to_be_visible()
    expect(bea.locator("#tab-count-unassigned")).to_have_text("1", timeout=LIVE)
    # Ana's Mine counts it; Bea's does not.
    expect(ana.locator("#tab-count-mine")).to_have_text("1", timeout=LIVE)
    expect(bea.locator("#tab-count-mine")).to_have_text("0")


def test_the_unread_dot_appears_for_one_agent_and_clears_when_they_open_it(browser: Browser, serve):
    server = serve()
    ident = uuid.uuid4()
    assert post(server.url, new_conversation(ident)) == 201
    ana = agent_page(browser, server.url, "ana")
    bea = agent_page(browser, server.url, "bea")
    ana.goto(f"{server.url}/")
    bea.goto(f"{server.url}/conversations/{ident}/")
    for page in (ana, bea):
        live(page)
    row = f"#conversation-{ident}"
    expect(ana.locator(row)).to_have_attribute("data-unread", "false")

    assert post(server.url, new_message(ident, content="Vocês entregam no sábado?")) == 201
    expect(ana.locator(row)).to_have_attribute("data-unread", "true", timeout=LIVE)
    expect(ana.locator(f"{row} [data-unread-dot]")).to_be_visible()
    # Bea is looking at the thread: the message is read for her as it arrives.
    expect(bea.locator("#messages")).to_contain_text("sábado", timeout=LIVE)
    expect(bea.locator(row)).to_have_attribute("data-unread", "false")

    ana.locator(f"{row} a").click()
    expect(ana.locator("#messages")).to_contain_text("sábado", timeout=LIVE)
    expect(ana.locator(row)).to_have_attribute("data-unread", "false", timeout=LIVE)
    expect(ana.locator(f"{row} [data-unread-dot]")).to_be_hidden()

    # Mark as unread: back to the list, bold again for Ana alone.
    ana.get_by_role("button", name="Mark as unread").click()
    expect(ana.locator(row)).to_have_attribute("data-unread", "true", timeout=LIVE)
    expect(bea.locator(row)).to_have_attribute("data-unread", "false")
