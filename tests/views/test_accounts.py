"""The account pages under /accounts/: a login and a logout, and no password reset.

The inbox sends no mail, so Django's password-reset pages (mounted with the rest of
django.contrib.auth.urls) could never work; they answered anyone, and a posted address
failed with an ERROR. An operator resets a password in the admin.
"""

import logging

import pytest
from django.core import mail
from django.test import Client

pytestmark = pytest.mark.django_db

RESET_PAGES = [
    "/accounts/password_reset/",
    "/accounts/password_reset/done/",
    "/accounts/reset/MQ/set-password/",
    "/accounts/reset/MQ/abc-123/",
    "/accounts/reset/done/",
]


@pytest.mark.parametrize("url", RESET_PAGES)
def test_the_password_reset_pages_are_not_found_and_log_no_error(url, agent, caplog):
    agent.email = "ana@example.com"
    agent.save()
    client = Client()
    with caplog.at_level(logging.WARNING):
        assert client.get(url).status_code == 404
        assert client.post(url, {"email": "ana@example.com"}).status_code == 404
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert mail.outbox == []


def test_the_login_page_and_the_logout_still_work(agent):
    client = Client()
    assert client.get("/accounts/login/").status_code == 200
    login = {"username": "ana", "password": "s3cret-pass-word"}
    assert client.post("/accounts/login/", login).status_code == 302
    assert client.get("/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302
