"""The list's state (inbox/listing.py): parsed once, rendered back for the socket and live.js."""

from html.parser import HTMLParser

import pytest

from inbox.listing import MAX_QUERY_LENGTH, ListState
from tests.views.test_views_inbox import make_conversation


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ListState(status="open", q="")),
        ({"status": "closed"}, ListState(status="closed", q="")),
        ({"status": "all", "q": "  boleto  "}, ListState(status="all", q="boleto")),
        # Unknown or empty filters are the default tab, as a page would show them.
        ({"status": "bogus"}, ListState(status="open", q="")),
        ({"status": ""}, ListState(status="open", q="")),
        ({"status": "CLOSED"}, ListState(status="open", q="")),
        # A socket's `view` message is JSON: whatever it holds is read as text.
        ({"status": None, "q": 12}, ListState(status="open", q="12")),
    ],
)
def test_parse_validates_and_normalises(params, expected):
    assert ListState.parse(params) == expected


def test_a_long_search_is_cut_not_refused():
    assert ListState.parse({"q": "x" * 500}).q == "x" * MAX_QUERY_LENGTH


@pytest.mark.parametrize(
    ("state", "query"),
    [
        (ListState(), ""),
        (ListState(status="closed"), "status=closed"),
        (ListState(q="ação rápida"), "q=a%C3%A7%C3%A3o+r%C3%A1pida"),
        (ListState(status="all", q="a&b"), "status=all&q=a%26b"),
    ],
)
def test_the_canonical_query_leaves_defaults_out_and_round_trips(state, query):
    from django.http import QueryDict

    assert state.query == query
    assert ListState.parse(QueryDict(query)) == state
    assert state.url("/conversations/") == (
        "/conversations/?" + query if query else "/conversations/"
    )


def test_which_conversation_states_a_list_shows():
    assert ListState(status="open").lists("OPEN")
    assert not ListState(status="open").lists("CLOSED")
    assert ListState(status="closed").lists("CLOSED")
    assert ListState(status="all").lists("OPEN") and ListState(status="all").lists("CLOSED")


class _Attributes(HTMLParser):
    """The attributes of each element with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.by_id[found["id"]] = {k: v or "" for k, v in found.items()}


def attributes(html: str) -> dict[str, dict[str, str]]:
    parser = _Attributes()
    parser.feed(html)
    return parser.by_id


@pytest.mark.django_db
def test_the_page_hands_its_parsed_state_to_the_socket_and_live_js(agent_client):
    # A hand-typed address: an unknown tab and a padded search. The socket must follow the
    # list the page shows (the default tab, the trimmed search), not the raw address.
    elements = attributes(agent_client.get("/", {"status": "bogus", "q": "  boleto "}).text)
    assert elements["live-socket"]["data-live-url"] == "/ws/inbox/?q=boleto"
    assert elements["list-results"]["data-live-status"] == "open"
    assert elements["list-results"]["data-live-q"] == "boleto"

    elements = attributes(agent_client.get("/", {"status": "closed"}).text)
    assert elements["live-socket"]["data-live-url"] == "/ws/inbox/?status=closed"
    assert elements["list-results"]["data-live-status"] == "closed"


@pytest.mark.django_db
def test_a_thread_page_socket_names_its_conversation_after_the_list_state(agent_client):
    conversation = make_conversation()
    page = agent_client.get(f"/conversations/{conversation.id}/", {"status": "all"}).text
    socket_url = attributes(page)["live-socket"]["data-live-url"]
    assert socket_url == f"/ws/inbox/?status=all&conversation={conversation.id}"
    page = agent_client.get(f"/conversations/{conversation.id}/").text
    assert attributes(page)["live-socket"]["data-live-url"] == (
        f"/ws/inbox/?conversation={conversation.id}"
    )
    assert attributes(page)["conversation-thread"]["data-conversation-id"] == str(conversation.id)
