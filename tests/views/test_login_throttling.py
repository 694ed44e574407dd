"""Login throttling (django-axes): 10 failures in a row lock a username out from an address.

README: Security, "Logins". Both login forms, ours and the admin's, are throttled; the
lockout is per username and address, so a colleague behind the same NAT still logs in.
"""

from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.test import Client

from tests import factories

pytestmark = pytest.mark.django_db

PASSWORD = "s3cret-pass-word"  # tests/conftest.py's agent


def log_in(client: Client, url: str, username: str, password: str):
    return client.post(url, {"username": username, "password": password})


class _AlertText(HTMLParser):
    """The text of the page's role="alert" element: what a screen reader announces."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if self.depth or ("role", "alert") in attrs:
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.text.append(data)


def alert(response) -> str:
    parser = _AlertText()
    parser.feed(response.content.decode())
    return " ".join("".join(parser.text).split())


@pytest.fixture(autouse=True)
def fast_hasher(settings) -> None:
    """Dozens of logins a test: the default hasher's work factor would make them minutes."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def fail_ten_times(client: Client, url: str, username: str) -> None:
    for _ in range(9):
        response = log_in(client, url, username, "wrong-password")
        assert response.status_code == 200  # the form again, with its error
    # The tenth failure is answered with the lockout itself.
    assert log_in(client, url, username, "wrong-password").status_code == 429
    assert "_auth_user_id" not in client.session


def test_ten_wrong_passwords_lock_the_account_out_even_with_the_right_one(agent):
    client = Client()
    fail_ten_times(client, "/accounts/login/", "ana")

    response = log_in(client, "/accounts/login/", "ana", PASSWORD)

    assert response.status_code == 429
    assert "locked out from your address for 15 minutes" in alert(response)
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302  # still sent to the login form


def test_nine_wrong_passwords_then_the_right_one_logs_in_and_starts_the_count_over(agent):
    client = Client()
    for _ in range(9):
        log_in(client, "/accounts/login/", "ana", "wrong-password")
    assert log_in(client, "/accounts/login/", "ana", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    # A success resets the count: "in a row".
    for _ in range(9):
        log_in(client, "/accounts/login/", "ana", "wrong-password")
    assert log_in(client, "/accounts/login/", "ana", PASSWORD).status_code == 302


def test_the_lockout_message_is_in_the_agents_language(agent):
    client = Client(headers={"accept-language": "pt-BR"})
    fail_ten_times(client, "/accounts/login/", "ana")

    response = log_in(client, "/accounts/login/", "ana", PASSWORD)

    assert response.status_code == 429
    assert "bloqueada a partir do seu endereço por 15 minutos" in alert(response)


def test_another_account_from_the_same_address_still_logs_in(agent):
    factories.agent("bruno", password=PASSWORD)
    fail_ten_times(Client(), "/accounts/login/", "ana")

    colleague = Client()  # the same address: the test client's 127.0.0.1
    assert log_in(colleague, "/accounts/login/", "bruno", PASSWORD).status_code == 302
    assert colleague.get("/").status_code == 200


def test_the_same_account_from_another_address_still_logs_in(agent):
    fail_ten_times(Client(), "/accounts/login/", "ana")

    elsewhere = Client(REMOTE_ADDR="198.51.100.7")
    assert log_in(elsewhere, "/accounts/login/", "ana", PASSWORD).status_code == 302


def test_the_admin_login_is_throttled_too():
    factories.agent("root", password=PASSWORD, superuser=True)
    client = Client()
    for _ in range(9):
        assert log_in(client, "/admin/login/", "root", "wrong-password").status_code == 200
    assert log_in(client, "/admin/login/", "root", "wrong-password").status_code == 429

    response = log_in(client, "/admin/login/", "root", PASSWORD)

    assert response.status_code == 429
    assert "locked out from your address" in alert(response)
    assert client.get("/admin/").status_code == 302


def test_failures_on_either_form_count_together(agent):
    client = Client()
    for _ in range(5):
        log_in(client, "/admin/login/", "ana", "wrong-password")
    for _ in range(5):
        log_in(client, "/accounts/login/", "ana", "wrong-password")
    assert log_in(client, "/accounts/login/", "ana", PASSWORD).status_code == 429


def test_after_the_cool_off_the_right_password_logs_in_again(agent):
    client = Client()
    fail_ten_times(client, "/accounts/login/", "ana")
    assert log_in(client, "/accounts/login/", "ana", PASSWORD).status_code == 429

    from axes.models import AccessAttempt  # here: an app only when axes is installed

    # The 15 minutes pass: axes measures them from the failures' recorded time.
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=15, seconds=1)
    )

    assert log_in(client, "/accounts/login/", "ana", PASSWORD).status_code == 302
    assert client.get("/").status_code == 200
