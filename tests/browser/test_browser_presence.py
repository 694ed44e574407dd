"""Presence in Debian's Chromium, two agents' pages against a real server process (README,
"Triage", Presence): one opens a thread the other has open and each sees the other "also
viewing"; typing in the composer shows "… is typing a reply…" on the other page and it
clears when the reply is sent and when the typist leaves; axe passes with the line shown,
at a desktop's and a phone's size."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from playwright.sync_api import Browser, expect

from tests.browser.test_browser_accessibility import blocking_violations
from tests.browser.test_browser_live import LIVE, post
from tests.browser.test_browser_triage import agent_page, live
from tests.conftest import new_conversation, new_message

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def named(username: str, first_name: str) -> None:
    """Off Playwright's thread: the account change is pushed (inbox/apps.py), which cannot
    run in a thread with an event loop."""

    def rename() -> None:
        try:
            user = get_user_model().objects.get(username=username)
            user.first_name = first_name
            user.save(update_fields=["first_name"])
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(rename).result()


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_two_agents_see_each_other_in_a_thread_and_the_other_typing(
    browser: Browser, serve, width, height
):
    server = serve(PROVIDER_URL="http://127.0.0.1:9/messages")
    ident = uuid.uuid4()
    assert post(server.url, new_conversation(ident)) == 201
    assert post(server.url, new_message(ident, content="Vocês entregam no sábado?")) == 201
    ana = agent_page(browser, server.url, "ana")
    bea = agent_page(browser, server.url, "bea")
    named("ana", "Ana")
    named("bea", "Bea")
    for page in (ana, bea):
        page.set_viewport_size({"width": width, "height": height})
    thread = f"{server.url}/conversations/{ident}/"

    bea.goto(thread)
    live(bea)
    expect(bea.locator("#presence")).to_be_empty()
    ana.goto(thread)
    live(ana)
    expect(bea.locator("#presence")).to_have_attribute("data-viewers", "ana", timeout=LIVE)
    expect(bea.locator("#presence")).to_have_text("Ana is also viewing")
    expect(ana.locator("#presence")).to_have_text("Bea is also viewing", timeout=LIVE)
    assert blocking_violations(bea) == []

    ana.locator("#reply-content").press_sequentially("Entregamos sim")
    expect(bea.locator("#presence")).to_have_text("Ana is typing a reply…", timeout=LIVE)
    expect(bea.locator("#presence")).to_have_attribute("data-typing", "ana")
    expect(ana.locator("#presence")).to_have_text("Bea is also viewing")
    assert blocking_violations(bea) == []

    # Sent: it clears at once (well before it would by itself).
    ana.locator("#reply-content").press("Enter")
    expect(bea.locator("#messages")).to_contain_text("Entregamos sim", timeout=LIVE)
    expect(bea.locator("#presence")).to_have_attribute("data-typing", "", timeout=3000)
    expect(bea.locator("#presence")).to_have_text("Ana is also viewing")

    # Ana turns the box to an internal note: a note is no reply being typed, so nothing is
    # said while she writes it (README "Triage"), and the note reaches Bea's thread.
    ana.get_by_text("Note", exact=True).click()
    ana.locator("#reply-content").press_sequentially("Cliente pediu sábado")
    ana.wait_for_timeout(1000)  # a typing message would have reached Bea by now
    expect(bea.locator("#presence")).to_have_attribute("data-typing", "")
    ana.locator("#reply-content").press("Enter")
    expect(bea.locator("#messages > li[data-note]")).to_contain_text(
        "Cliente pediu sábado", timeout=LIVE
    )
    expect(bea.locator("#presence")).to_have_attribute("data-typing", "")
    ana.get_by_text("Reply", exact=True).click()

    # Ana types again, then goes back to the list: Bea's line empties.
    ana.locator("#reply-content").press_sequentially("Mais uma coisa")
    expect(bea.locator("#presence")).to_have_attribute("data-typing", "ana", timeout=LIVE)
    ana.goto(f"{server.url}/")
    expect(bea.locator("#presence")).to_have_attribute("data-viewers", "", timeout=LIVE)
    expect(bea.locator("#presence")).to_be_empty()
    assert blocking_violations(bea) == []
