"""Unread, per agent (README, "Triage"): each agent's own, one row per agent and
conversation, told in the list's one query."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from inbox import services
from tests import factories, markup
from tests.conftest import T0


def unread(client: Client, conversation_id: uuid.UUID) -> str | None:
    """What the agent's list says of a row: "true" when it has messages they have not seen."""
    return markup.attr(client.get("/"), f"conversation-{conversation_id}", "data-unread")


def logged_in(username: str) -> Client:
    client = Client()
    client.force_login(factories.agent(username))
    return client


@pytest.mark.django_db
def test_two_agents_read_independently():
    ana, bea = logged_in("ana"), logged_in("bea")
    conversation = factories.conversation(messages=[("RECEIVED", "Oi, tem alguém aí?")])
    assert unread(ana, conversation.id) == unread(bea, conversation.id) == "true"

    ana.get(reverse("inbox:conversation", args=[conversation.id]))
    assert (unread(ana, conversation.id), unread(bea, conversation.id)) == ("false", "true")

    # A new message is unread to both again; Bea reading it leaves Ana's unread.
    factories.message(conversation.id, content="Alô?", at=T0 + timedelta(minutes=5))
    assert unread(ana, conversation.id) == unread(bea, conversation.id) == "true"
    bea.get(reverse("inbox:conversation", args=[conversation.id]))
    assert (unread(ana, conversation.id), unread(bea, conversation.id)) == ("true", "false")


@pytest.mark.django_db
def test_a_late_delivery_of_an_old_message_is_unread_too(agent_client):
    conversation = factories.conversation(messages=[("RECEIVED", "Oi")])
    agent_client.get(reverse("inbox:conversation", args=[conversation.id]))
    # Older than the newest: the list's order does not move, but the agent has not seen it.
    factories.message(conversation.id, content="(enviada antes)", at=T0 + timedelta(seconds=1))
    assert unread(agent_client, conversation.id) == "true"


@pytest.mark.django_db
def test_a_conversation_without_messages_is_not_unread(agent_client):
    conversation = factories.conversation()
    assert unread(agent_client, conversation.id) == "false"


@pytest.mark.django_db
def test_mark_as_unread_from_the_thread(agent_client):
    ana = agent_client
    bea = logged_in("bea")
    conversation = factories.conversation(messages=[("RECEIVED", "Oi"), ("RECEIVED", "Alô?")])
    for client in (ana, bea):
        thread = client.get(reverse("inbox:conversation", args=[conversation.id]))
    assert markup.has_id(thread, "unread-form")
    response = ana.post(reverse("inbox:conversation-unread", args=[conversation.id]))
    assert response.status_code == 302
    assert response["Location"] == reverse("inbox:index")
    assert (unread(ana, conversation.id), unread(bea, conversation.id)) == ("true", "false")
    # And read again when opened.
    ana.get(reverse("inbox:conversation", args=[conversation.id]))
    assert unread(ana, conversation.id) == "false"


@pytest.mark.django_db
def test_mark_as_unread_of_no_conversation_is_404(agent_client):
    assert agent_client.post(f"/conversations/{uuid.uuid4()}/unread/").status_code == 404
    assert agent_client.post("/conversations/not-a-uuid/unread/").status_code == 404
    assert agent_client.get(reverse("inbox:index")).status_code == 200


@pytest.mark.django_db
def test_the_thread_pane_clears_its_rows_dot_out_of_band(agent_client):
    conversation = factories.conversation(messages=[("RECEIVED", "Oi")])
    url = reverse("inbox:conversation", args=[conversation.id])
    pane = agent_client.get(url, headers={"HX-Request": "true", "HX-Target": "thread-pane"})
    row = markup.by_id(pane, f"conversation-{conversation.id}")
    assert row is not None
    assert (row["hx-swap-oob"], row["data-unread"]) == ("true", "false")


@pytest.mark.django_db
def test_the_lists_query_count_does_not_grow_with_agents_or_messages(agent, agent_client):
    def queries_for_list(query: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert agent_client.get(f"/?{query}").status_code == 200
        return len(captured)

    factories.conversation(messages=factories.alternating(["Oi", "Olá", "Tudo bem?"]))
    queries = ["", "status=all", "assignee=me", "assignee=none", "sort=waiting", "q=oi"]
    before = {query: queries_for_list(query) for query in queries}

    # Twenty more agents, each having read some conversations, and many more messages.
    readers = [factories.agent(f"agent{n}") for n in range(20)]
    for n in range(10):
        conversation = factories.conversation(
            messages=factories.alternating(["Oi", "Olá", "Preciso de ajuda", "Claro"] * 3)
        )
        for reader in readers[: n + 5]:
            services.conversation_read(conversation_id=conversation.id, agent_id=reader.pk)
        services.conversation_read(conversation_id=conversation.id, agent_id=agent.pk)
    after = {query: queries_for_list(query) for query in queries}
    assert after == before
    assert max(after.values()) <= 8


@pytest.mark.django_db
def test_the_triage_controls_speak_portuguese(agent_client):
    conversation = factories.conversation(messages=[("RECEIVED", "Oi")])
    factories.message(conversation.id, content="Alô?", at=T0 + timedelta(minutes=2))
    url = reverse("inbox:conversation", args=[conversation.id])
    page = markup.parse(agent_client.get(url, HTTP_ACCEPT_LANGUAGE="pt-BR"))
    tabs = {
        tab["data-filter"]: " ".join(tab.get_text().split())
        for tab in page.select("a[data-filter]")
    }
    assert tabs["mine"].startswith("Minhas") and tabs["unassigned"].startswith("Sem responsável")
    buttons = {" ".join(button.get_text().split()) for button in page.select("button")}
    assert {"Atribuir a mim", "Marcar como não lida"} <= buttons
    assert "aguardando" in markup.text(page, "waiting-count")
