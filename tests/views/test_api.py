"""The JSON read API (README, "The read API")."""

import base64
import uuid

import pytest

from tests.conftest import NO_SUCH_ID, at, close_conversation, new_conversation, new_message

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(post_event) -> uuid.UUID:
    ident = uuid.uuid4()
    post_event(new_conversation(ident, ts=0))
    post_event(new_message(ident, ts=20, content="segunda", direction="SENT"))
    post_event(new_message(ident, ts=10, content="primeira"))
    return ident


def test_conversation_reads_back_with_its_thread_in_time_order(agent_client, conversation):
    response = agent_client.get(f"/api/conversations/{conversation}/")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(conversation)
    assert body["status"] == "OPEN"
    assert body["created_at"] == at(0)
    assert body["closed_at"] is None
    assert [m["content"] for m in body["messages"]] == ["primeira", "segunda"]
    assert [m["direction"] for m in body["messages"]] == ["RECEIVED", "SENT"]
    assert body["messages"][0]["timestamp"] == at(10)
    assert set(body["messages"][0]) == {
        "id",
        "direction",
        "content",
        "timestamp",
        "delivery",
        "error",
        "sent_by",
        "kind",
        "attachment",
    }
    assert [(m["kind"], m["attachment"]) for m in body["messages"]] == [("text", None)] * 2
    # README, "Replies": RECEIVED has no delivery; a provider's own SENT message is SENT.
    assert [(m["delivery"], m["error"], m["sent_by"]) for m in body["messages"]] == [
        (None, None, None),
        ("SENT", None, None),
    ]


def test_the_thread_url_answers_json_when_asked(agent_client, conversation):
    response = agent_client.get(f"/conversations/{conversation}/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == agent_client.get(f"/api/conversations/{conversation}/").json()


@pytest.mark.parametrize("ident", [str(NO_SUCH_ID), "not-a-uuid"])
def test_unknown_or_malformed_id_is_a_json_404(agent_client, ident):
    response = agent_client.get(f"/api/conversations/{ident}/")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    response = agent_client.get(f"/conversations/{ident}/", HTTP_ACCEPT="application/json")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize(
    "url",
    ["/api/conversations/", "/api/conversations/{id}/", "/conversations/{id}/"],
)
def test_anonymous_callers_get_401_and_no_content(client, conversation, url):
    response = client.get(url.format(id=conversation), HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    assert response.json()["error"] == "authentication_required"
    assert b"primeira" not in response.content
    assert str(conversation).encode() not in response.content


def test_list_filters_by_status_newest_activity_first(agent_client, post_event):
    open_old, open_new, closed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    post_event(new_conversation(open_old, ts=0))
    post_event(new_conversation(open_new, ts=5))
    post_event(new_conversation(closed, ts=1))
    post_event(close_conversation(closed, ts=2))
    post_event(new_message(open_old, ts=50))

    def ids(query: str) -> list[str]:
        return [c["id"] for c in agent_client.get(f"/api/conversations/{query}").json()["results"]]

    assert ids("?status=OPEN") == [str(open_old), str(open_new)]
    assert ids("?status=CLOSED") == [str(closed)]
    assert ids("") == [str(open_old), str(open_new), str(closed)]


def test_list_follows_next_links_through_every_page(agent_client, post_event):
    created = {str(uuid.uuid4()) for _ in range(53)}
    for n, ident in enumerate(sorted(created)):
        post_event(new_conversation(ident, ts=n))
    url, seen, pages = "/api/conversations/?status=OPEN", [], 0
    while url:
        body = agent_client.get(url).json()
        seen += [c["id"] for c in body["results"]]
        url, pages = body["next"], pages + 1
    assert pages == 2
    assert len(seen) == 53
    assert set(seen) == created


@pytest.mark.parametrize("query", ["?status=open", "?status=DELETED", "?cursor=garbage!"])
def test_bad_list_parameters_are_a_json_400(agent_client, query):
    response = agent_client.get(f"/api/conversations/{query}")
    assert response.status_code == 400
    assert response.json()["detail"]


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# Cursors a client can forge: well-formed ones at the calendar's edge (which overflowed when
# converted to UTC for the query: a 500, and an HTML one), and garbage.
FORGED_CURSORS = [
    _b64(f"9999-12-31T23:59:59-05:00|{NO_SUCH_ID}"),
    _b64(f"0001-01-01T00:00:00+05:00|{NO_SUCH_ID}"),
    _b64(f"2025-02-21T10:20:41|{NO_SUCH_ID}"),
    _b64("2025-02-21T10:20:41+00:00|not-a-uuid"),
    _b64("|"),
    "%%%%",
    "é",
    "A" * 5000,
    _b64("\x00" * 10),
]


@pytest.mark.parametrize("cursor", FORGED_CURSORS)
def test_a_forged_cursor_is_a_json_400(agent_client, post_event, cursor):
    post_event(new_conversation())
    response = agent_client.get("/api/conversations/", {"cursor": cursor})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "invalid_cursor"


def test_list_takes_a_bounded_number_of_queries(
    agent_client, post_event, django_assert_max_num_queries
):
    for n in range(60):
        ident = uuid.uuid4()
        post_event(new_conversation(ident, ts=n))
        post_event(new_message(ident, ts=n + 1))
    with django_assert_max_num_queries(3):
        assert len(agent_client.get("/api/conversations/").json()["results"]) == 50
