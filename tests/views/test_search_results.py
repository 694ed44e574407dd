"""Search shows why a row matched and opens the thread at that message (issue 12)."""

import uuid
from datetime import timedelta

import pytest

from inbox.models import Message
from tests import factories, markup
from tests.conftest import NO_SUCH_ID, T0
from tests.views.test_views_inbox import (  # noqa: F401 (search_plan: both plans)
    HTMX,
    make_conversation,
    message_ids,
    search_plan,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("search_plan")]


def snippet(response, conversation) -> str:
    row = markup.by_id(markup.parse(response), f"conversation-{conversation.id}")
    assert row is not None
    found = row.select_one("[data-search-snippet]")
    return "" if found is None else found.decode_contents()


def marks(html) -> list[str]:
    return [mark.get_text() for mark in markup.parse(html).select("mark")]


def test_a_row_shows_the_matching_message_with_its_words_marked(agent_client):
    found = make_conversation(
        contents=("Preciso trocar o AÇÃO plano", "Claro, qual?", "Obrigado, até logo")
    )
    response = agent_client.get("/", {"q": "acao plan"})
    text = snippet(response, found)
    # Not the latest message ("até logo"): the one that matched, its words marked whole.
    assert "Obrigado" not in text
    assert marks(text) == ["AÇÃO", "plano"]
    # Without a search the row shows the latest message, nothing marked.
    plain = agent_client.get("/")
    assert snippet(plain, found) == ""
    assert marks(plain) == []


def test_the_snippet_is_escaped_and_cut_around_the_match(agent_client):
    words = "palavra " * 40
    found = make_conversation(contents=(f"{words}<b>boleto</b> & {words}",))
    response = agent_client.get("/", {"q": "boleto"})
    row = markup.by_id(markup.parse(response), f"conversation-{found.id}")
    part = row.select_one("[data-search-snippet]")
    assert part.find("b") is None  # the customer's markup is text
    assert "<b>" in part.get_text() and marks(str(part)) == ["boleto"]
    text = part.get_text(" ", strip=True)
    # Cut before and after: the match is in the middle of a long message.
    assert text.count("…") == 2
    assert len(text) < 200


def test_a_short_word_is_marked_only_whole(agent_client):
    found = make_conversation(contents=("o pé do pedido",))
    response = agent_client.get("/", {"q": "pe"})
    assert marks(snippet(response, found)) == ["pé"]


def test_the_row_opens_the_thread_at_the_match_with_the_words_marked(agent_client):
    contents = [f"mensagem {n}" for n in range(300)]
    contents[120] = "quero o reembolso do pedido"
    found = make_conversation(contents=tuple(contents))
    listing = agent_client.get("/", {"q": "reembolso"})
    row = markup.by_id(markup.parse(listing), f"conversation-{found.id}")
    link = row.select_one("a")
    hit = Message.objects.get(conversation=found, content=contents[120])
    # htmx adds the list's filters (hx-include) to the pane's request; the plain link has them.
    assert link["href"].endswith(f"at={hit.id}") and "q=reembolso" in link["href"]
    pane = HTMX | {"HX-Target": "thread-pane"}
    thread = agent_client.get(link["hx-get"] + "&q=reembolso", headers=pane)
    ids = message_ids(thread)
    everything = [
        str(i)
        for i in Message.objects.filter(conversation=found)
        .order_by("timestamp", "id")
        .values_list("id", flat=True)
    ]
    at = everything.index(str(hit.id))
    # A window around the match, not the whole thread nor its latest page.
    assert ids == everything[at - 25 : at + 25]
    assert markup.by_id(thread, f"message-{hit.id}").has_attr("data-search-match")
    assert marks(thread) == ["reembolso"]
    # Reload and back land on the same match.
    assert thread["HX-Push-Url"] == f"/conversations/{found.id}/?q=reembolso&at={hit.id}"
    # Keyset paging both ways from the window reaches each end of the thread exactly.
    seen, response = ids, thread
    while earlier := markup.attr(response, "messages-earlier", "hx-get"):
        response = agent_client.get(earlier, headers=HTMX)
        seen = message_ids(response) + seen
    response = thread
    while later := markup.attr(response, "messages-later", "hx-get"):
        response = agent_client.get(later, headers=HTMX)
        seen = seen + message_ids(response)
    assert seen == everything


@pytest.mark.parametrize("at", ["not-an-id", str(NO_SUCH_ID)])
def test_a_match_that_is_not_in_the_thread_opens_it_as_usual(agent_client, at):
    found = make_conversation(contents=tuple(f"m{n}" for n in range(60)))
    response = agent_client.get(f"/conversations/{found.id}/", {"at": at})
    assert response.status_code == 200
    latest = Message.objects.filter(conversation=found).order_by("-timestamp")[:50]
    assert set(message_ids(response)) == {str(m.id) for m in latest}
    assert not markup.has_id(response, "messages-later")


def test_a_forged_later_cursor_is_a_400(agent_client):
    found = make_conversation()
    response = agent_client.get(f"/conversations/{found.id}/", {"after": "forged"}, headers=HTMX)
    assert response.status_code == 400


@pytest.fixture
def long_thread(db):
    """A thread of 10,000 messages, one a day apart by the minute; the match near its start."""
    conversation = factories.conversation(opened_at=T0)
    Message.objects.bulk_create(
        Message(
            id=uuid.uuid4(),
            conversation=conversation,
            direction="RECEIVED",
            content="o boleto venceu" if n == 500 else f"mensagem número {n}",
            timestamp=T0 + timedelta(minutes=n + 1),
        )
        for n in range(10_000)
    )
    return conversation


def test_search_on_a_ten_thousand_message_thread_keeps_its_queries_bounded(
    agent_client, long_thread, django_assert_max_num_queries
):
    hit = Message.objects.get(conversation=long_thread, content="o boleto venceu")
    with django_assert_max_num_queries(8):
        listing = agent_client.get("/", {"q": "boleto", "status": "all"})
    assert marks(snippet(listing, long_thread)) == ["boleto"]
    # The full page: the searched list beside it, three for the window and one for its
    # notes, the agents the thread can be assigned to and the agent's read mark (one upsert).
    with django_assert_max_num_queries(14):
        thread = agent_client.get(
            f"/conversations/{long_thread.id}/", {"q": "boleto", "at": str(hit.id)}
        )
    ids = message_ids(thread)
    assert len(ids) == 50 and str(hit.id) in ids
    assert marks(str(markup.by_id(thread, "messages"))) == ["boleto"]
    later = markup.attr(thread, "messages-later", "hx-get")
    # Session, agent, conversation, the read mark (newer messages are now seen), the page
    # and its notes.
    with django_assert_max_num_queries(6):
        page = agent_client.get(later, headers=HTMX)
    assert len(message_ids(page)) == 50
