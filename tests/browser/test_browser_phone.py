"""The inbox on a phone (390x844): nothing wider than the screen, a header that fits."""

import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_browser_live import LIVE, log_in, post
from tests.conftest import new_conversation, new_message

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("view", ["list", "thread"])
def test_the_phone_page_is_as_wide_as_the_screen(page: Page, serve, agent_client, view, tmp_path):
    page.set_viewport_size({"width": 390, "height": 844})
    server = serve()
    ident = uuid.uuid4()
    assert post(server.url, new_conversation(ident, ts=0)) == 201
    for ts in range(1, 5):
        assert post(server.url, new_message(ident, ts=ts, content="Olá " * 40)) == 201
    log_in(page, server.url, agent_client)
    page.goto(f"{server.url}/" if view == "list" else f"{server.url}/conversations/{ident}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE)
    assert page.evaluate("document.documentElement.scrollWidth") == 390
    if view == "thread":
        header = page.locator("#conversation-header").bounding_box()
        assert header is not None and header["height"] < 120, header
        title = page.locator("#thread-title")
        # The short id is shown whole, not cut to "#9…".
        assert title.evaluate("el => el.scrollWidth <= el.clientWidth")
    # To look at when it fails (pytest keeps the last runs' tmp_path).
    page.screenshot(path=tmp_path / f"phone-{view}.png")
