"""`manage.py add_agent`: the README's way to add an agent (README, "The two commands")."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

pytestmark = pytest.mark.django_db

STRONG = "violet-harbour-lantern-42"


def test_an_agent_is_added_who_can_log_in_and_is_no_admin(monkeypatch):
    monkeypatch.setenv("AGENT_PASSWORD", STRONG)
    call_command("add_agent", "maria")

    maria = get_user_model().objects.get(username="maria")
    assert not maria.is_staff and not maria.is_superuser
    client = Client()
    assert (
        client.post("/accounts/login/", {"username": "maria", "password": STRONG}).status_code
        == 302
    )
    assert client.get("/").status_code == 200
    assert client.get("/admin/").status_code == 302  # to the admin's login: not staff


def test_the_password_option_and_a_superuser_on_request():
    call_command("add_agent", "root", "--password", STRONG, "--superuser")

    root = get_user_model().objects.get(username="root")
    assert root.is_staff and root.is_superuser
    client = Client()
    client.post("/admin/login/", {"username": "root", "password": STRONG})
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1", "too short"),
        ("password123", "too common"),
        ("83920174651", "entirely numeric"),
        ("maria123", "too similar to the username"),
    ],
)
def test_a_weak_password_is_refused_with_the_validators_reason(password, reason):
    with pytest.raises(CommandError, match=reason):
        call_command("add_agent", "maria", "--password", password)
    assert not get_user_model().objects.filter(username="maria").exists()


def test_an_existing_account_is_a_clear_error_and_is_left_as_it_was(agent):
    with pytest.raises(CommandError, match="'ana' already exists"):
        call_command("add_agent", "ana", "--password", STRONG, "--superuser")
    agent.refresh_from_db()
    assert agent.check_password("s3cret-pass-word") and not agent.is_superuser


def test_no_password_and_no_terminal_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("AGENT_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(CommandError, match="set AGENT_PASSWORD"):
        call_command("add_agent", "maria")


def test_an_invalid_username_is_refused():
    with pytest.raises(CommandError, match="username is refused"):
        call_command("add_agent", "no spaces allowed", "--password", STRONG)
