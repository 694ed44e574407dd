"""The browser harness itself: Debian's Chromium logs an agent in through the real form."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_agent_logs_in_through_the_form(page, live_server, agent):
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url
    page.fill("input[name=username]", "ana")
    page.fill("input[name=password]", "s3cret-pass-word")
    page.click("button[type=submit]")
    page.wait_for_selector("#conversation-list")
    assert page.url == f"{live_server.url}/"
