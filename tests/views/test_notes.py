"""Internal notes (README, "Triage"): the composer's Note toggle writes a note that agents
see in the thread, that the customer never gets, and that counts as nothing the customer
or we said: not a message, not the preview, not waiting, not unread."""

import re
import uuid
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from inbox.models import Conversation, Message, Note
from tests import factories, markup
from tests.conftest import T0
from tests.services.test_unread import logged_in, unread
from tests.views.test_views_reply import HTMX, composer, reply_url

pytestmark = pytest.mark.django_db

PROVIDER = {"PROVIDER_URL": "http://127.0.0.1:9/messages", "PROVIDER_SECRET": "s"}


def note_post(client: Client, conversation: Conversation, content: str, **headers):
    return client.post(reply_url(conversation), {"mode": "note", "content": content}, **headers)


def thread(client: Client, conversation: Conversation):
    return client.get(reverse("inbox:conversation", args=[conversation.id]))


def row_text(client: Client, conversation: Conversation) -> str:
    row = markup.parse(client.get("/?status=all")).select_one(f"#conversation-{conversation.id}")
    return row.get_text(" ", strip=True)


@override_settings(**PROVIDER)
def test_a_note_shows_in_the_thread_and_counts_as_nothing_the_customer_sees(agent_client, agent):
    conversation = factories.conversation(messages=[("RECEIVED", "Meu pedido não chegou")])
    bea = logged_in("bea")
    before = Conversation.objects.get(pk=conversation.id)
    assert unread(bea, conversation.id) == "true"
    thread(bea, conversation)  # Bea has read the customer's message

    response = note_post(agent_client, conversation, "Cliente VIP: oferecer frete grátis", **HTMX)

    assert response.status_code == 200
    note = Note.objects.get()
    assert (note.author, note.content) == (agent, "Cliente VIP: oferecer frete grátis")
    answer = markup.parse(response)
    bubble = answer.select_one(f"li#note-{note.id}")
    assert bubble is not None and bubble.has_attr("data-note")
    assert not bubble.has_attr("data-direction")
    assert "Note by ana" in bubble.get_text(" ", strip=True)
    # The box stays on Note, emptied, for the next one.
    form = composer(response)
    assert 'data-mode="note"' in form
    assert re.search(r'value="note"[^>]*checked', form)
    # Nothing a message would change did: no message, no delivery job, the same count,
    # preview, activity and waiting, and still read for Bea.
    after = Conversation.objects.get(pk=conversation.id)
    assert list(Message.objects.values_list("content", flat=True)) == ["Meu pedido não chegou"]
    assert not DBTaskResult.objects.exists()
    for field in ("message_count", "last_message_id", "last_activity_at", "waiting_since"):
        assert getattr(after, field) == getattr(before, field), field
    assert "frete grátis" not in row_text(agent_client, conversation)
    assert "Meu pedido não chegou" in row_text(agent_client, conversation)
    assert unread(bea, conversation.id) == "false"
    # Both agents see it in the thread, after the message it followed.
    page = thread(bea, conversation)
    entries = markup.parse(page).select("#messages > li[id^=message-], #messages > li[id^=note-]")
    assert [li["id"].split("-")[0] for li in entries] == ["message", "note"]


@override_settings(**PROVIDER)
def test_a_plain_post_writes_the_note_and_redirects_to_the_thread(agent_client):
    conversation = factories.conversation()
    response = note_post(agent_client, conversation, "Ligar amanhã")
    assert response.status_code == 302
    assert response["Location"] == reverse("inbox:conversation", args=[conversation.id])
    assert "Ligar amanhã" in thread(agent_client, conversation).content.decode()


@pytest.mark.parametrize(
    "provider", [PROVIDER, {"PROVIDER_URL": ""}], ids=["closed", "no-provider"]
)
def test_a_note_is_allowed_where_a_reply_is_not(agent_client, provider):
    closed_at = T0 + timedelta(hours=1) if provider is PROVIDER else None
    conversation = factories.conversation(messages=[("RECEIVED", "Oi")], closed_at=closed_at)
    with override_settings(**provider):
        form = composer(thread(agent_client, conversation))
        assert re.search(r'<input[^>]*name="mode"[^>]*value="note"', form)
        assert (
            note_post(agent_client, conversation, "Resolvido por telefone", **HTMX).status_code
            == 200
        )
        refused = agent_client.post(reply_url(conversation), {"content": "Oi"}, **HTMX)
    assert refused.status_code == 409
    assert Note.objects.get().content == "Resolvido por telefone"
    assert Message.objects.count() == 1


@override_settings(**PROVIDER)
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("   \n ", "A note cannot be blank."),
        ("x" * 4097, "A note is at most 4096 characters; this one has 4097."),
        ("nul\x00here", "A note cannot contain a NUL character."),
    ],
)
def test_a_refused_note_says_why_keeps_the_draft_and_stores_nothing(agent_client, content, reason):
    conversation = factories.conversation()
    response = note_post(agent_client, conversation, content, **HTMX)
    assert response.status_code == 400
    form = composer(response)
    assert reason in form
    assert 'data-mode="note"' in form
    if content.strip() and "\x00" not in content:
        assert content in form
    assert not Note.objects.exists()


@override_settings(**PROVIDER)
def test_a_note_on_no_conversation_is_404(agent_client):
    assert note_post(agent_client, Conversation(id=uuid.uuid4()), "Oi").status_code == 404
    assert agent_client.post("/conversations/nope/messages/", {"mode": "note"}).status_code == 404
    assert not Note.objects.exists()


@override_settings(**PROVIDER)
def test_a_note_is_escaped_everywhere_it_shows(agent_client):
    conversation = factories.conversation()
    hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    answer = note_post(agent_client, conversation, hostile, **HTMX).content.decode()
    page = thread(agent_client, conversation).content.decode()
    for html in (answer, page):
        assert "<img src=x" not in html and "<script>alert(2)" not in html
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html


@override_settings(**PROVIDER)
def test_the_api_gives_notes_apart_from_the_messages(agent_client, agent):
    conversation = factories.conversation(messages=[("RECEIVED", "Oi")])
    note_post(agent_client, conversation, "Cliente antigo")
    body = agent_client.get(f"/api/conversations/{conversation.id}/").json()
    assert [m["content"] for m in body["messages"]] == ["Oi"]
    (note,) = body["notes"]
    assert (note["author"], note["content"]) == ("ana", "Cliente antigo")
    assert note["id"] == str(Note.objects.get().id)
    assert body["message_count"] == 1


@override_settings(**PROVIDER)
def test_a_note_follows_the_newest_message_when_the_providers_clock_runs_ahead(agent_client):
    """The provider's timestamps order the thread; a note written now still comes after
    the message the agent was looking at, even one stamped minutes in our future."""
    ahead = timezone.now() + timedelta(minutes=5)
    conversation = factories.conversation(opened_at=ahead - timedelta(minutes=1))
    factories.message(conversation.id, content="Chegou?", at=ahead)
    note_post(agent_client, conversation, "Verificar com a transportadora")
    page = markup.parse(thread(agent_client, conversation))
    entries = page.select("#messages > li[id^=message-], #messages > li[id^=note-]")
    assert [li["id"].split("-")[0] for li in entries] == ["message", "note"]
