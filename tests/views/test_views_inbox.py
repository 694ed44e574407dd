"""The agents' inbox pages: filters, search, paging, threads, Close/Reopen, escaping."""

import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse

from inbox import selectors, services
from inbox.models import Conversation, Message
from inbox.selectors import counts, search
from tests import factories, markup
from tests.conftest import NO_SUCH_ID, T0
from tests.views.test_api import FORGED_CURSORS

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def make_conversation(
    *,
    minutes: float = 0,
    contents: tuple[str, ...] = ("Olá, preciso de ajuda",),
    closed: bool = False,
) -> Conversation:
    """A conversation whose last activity is `minutes` after T0, its contents a second apart."""
    start = T0 + timedelta(minutes=minutes)
    return factories.conversation(
        opened_at=start - timedelta(seconds=len(contents)),
        messages=factories.alternating(contents),
        every=timedelta(seconds=1),
        closed_at=start + timedelta(seconds=1) if closed else None,
    )


def row_ids(response) -> list[str]:
    """The conversation rows in the list, in page order."""
    return markup.ids(response, "conversation-")


def tab_counts(response) -> dict[str, str]:
    """Each state tab's count, as the agent reads it ("3", or "100+" while searching).
    Mine and Unassigned are tests/services/test_assignment.py's."""
    tabs = markup.parse(response).select("a[data-filter]")
    counts = {tab["data-filter"]: tab.find("span").get_text(strip=True) for tab in tabs}
    return {tab: count for tab, count in counts.items() if tab in {"open", "closed", "all"}}


def message_ids(response) -> list[str]:
    return markup.ids(response, "message-")


# --- Access ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/conversations/", f"/conversations/{NO_SUCH_ID}/"])
def test_anonymous_visitors_are_sent_to_the_login_page(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_anonymous_visitors_cannot_close_a_conversation(client):
    conversation = make_conversation()
    response = client.post(reverse("inbox:conversation-close", args=[conversation.id]))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert Conversation.objects.get(pk=conversation.id).status == "OPEN"


def test_the_login_page_is_the_styled_form(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    form = markup.parse(response).find("form")
    assert form.find("input", attrs={"name": "username"})
    assert form.find("input", attrs={"name": "password", "type": "password"})
    sheets = [link["href"] for link in markup.parse(response).select('link[rel="stylesheet"]')]
    assert any(href.endswith("css/dist/styles.css") for href in sheets)


# --- Filters ----------------------------------------------------------------------------


@pytest.fixture
def open_and_closed():
    return (
        make_conversation(minutes=1),
        make_conversation(minutes=2, closed=True),
        make_conversation(minutes=3),
    )


def test_the_inbox_lists_open_conversations_newest_activity_first(agent_client, open_and_closed):
    first, _closed, third = open_and_closed
    response = agent_client.get("/")
    assert response.status_code == 200
    assert row_ids(response) == [str(third.id), str(first.id)]
    assert markup.has_id(response, "conversation-list")


@pytest.mark.parametrize(
    ("status", "expected"),
    [("open", [2, 0]), ("closed", [1]), ("all", [2, 1, 0]), ("nonsense", [2, 0])],
)
def test_each_filter_tab_lists_its_conversations(agent_client, open_and_closed, status, expected):
    response = agent_client.get("/conversations/", {"status": status})
    assert row_ids(response) == [str(open_and_closed[i].id) for i in expected]
    for row in markup.parse(response).select('li[id^="conversation-"]'):
        assert status in {"all", "nonsense"} or row["data-status"] == status.upper()


def test_the_tabs_show_their_counts(agent_client, open_and_closed):
    response = agent_client.get("/")
    assert tab_counts(response) == {"open": "2", "closed": "1", "all": "3"}


@pytest.mark.parametrize(
    ("params", "text"),
    [
        ({}, "No open conversations."),
        ({"status": "all"}, "No conversations yet."),
        ({"status": "closed"}, "No closed conversations."),
    ],
)
def test_an_empty_filter_says_so(agent_client, params, text):
    response = agent_client.get("/", params)
    assert row_ids(response) == []
    assert text in response.text


# --- Search -----------------------------------------------------------------------------


@pytest.fixture(params=["narrow", "broad"])
def search_plan(request, monkeypatch) -> str:
    """Runs a search test under each of the search's two plans (inbox/selectors/search.py):
    the broad one, which walks the list, is taken from the first matching message on."""
    if request.param == "broad":
        monkeypatch.setattr(search, "BROAD_HITS", 1)
    return request.param


@pytest.mark.usefixtures("search_plan")
def test_search_ignores_accents_and_case(agent_client):
    hit = make_conversation(contents=("Preciso de uma AÇÃO rápida",))
    make_conversation(contents=("Nada a ver",))
    for q in ["acao", "ação", "ACAO", "rapida"]:
        response = agent_client.get("/", {"q": q})
        assert row_ids(response) == [str(hit.id)], q


@pytest.mark.usefixtures("search_plan")
def test_search_needs_every_word_and_reads_words_as_prefixes(agent_client):
    both = make_conversation(contents=("plano premium por favor",))
    make_conversation(contents=("plano básico",))
    assert row_ids(agent_client.get("/", {"q": "plan prem"})) == [str(both.id)]
    assert row_ids(agent_client.get("/", {"q": "plano"})) != []


@pytest.mark.usefixtures("search_plan")
def test_search_matches_words_of_one_or_two_letters_whole(agent_client):
    whole = make_conversation(contents=("chego de manhã",))
    make_conversation(contents=("machuquei o dedo",))
    assert row_ids(agent_client.get("/", {"q": "de"})) == [str(whole.id)]


@pytest.mark.usefixtures("search_plan")
def test_search_combines_with_the_filter_and_counts_what_matches(agent_client):
    closed = make_conversation(contents=("reembolso",), closed=True)
    make_conversation(contents=("reembolso",))
    make_conversation(contents=("outra coisa",))
    response = agent_client.get("/", {"q": "reembolso", "status": "closed"})
    assert row_ids(response) == [str(closed.id)]
    assert tab_counts(response) == {"open": "1", "closed": "1", "all": "2"}


@pytest.mark.usefixtures("search_plan")
def test_search_finds_a_word_in_any_message_of_the_thread(agent_client):
    conversation = make_conversation(contents=("primeira mensagem", "segunda", "terceira"))
    assert row_ids(agent_client.get("/", {"q": "primeira"})) == [str(conversation.id)]


@pytest.mark.usefixtures("search_plan")
@pytest.mark.parametrize("q", ['"', "*", "AND", "NEAR(", "a:b", "' OR 1=1 --", "%", "(", "ç^"])
def test_search_syntax_characters_never_break_the_page(agent_client, q):
    make_conversation(contents=("AND or NEAR things",))
    response = agent_client.get("/", {"q": q})
    assert response.status_code == 200


@pytest.mark.usefixtures("search_plan")
def test_a_search_without_matches_says_so_and_escapes_the_query(agent_client):
    make_conversation()
    response = agent_client.get("/", {"q": "<b>zzz</b>"})
    assert row_ids(response) == []
    assert "No conversations match" in response.text
    assert "&lt;b&gt;zzz&lt;/b&gt;" in response.text
    assert "<b>zzz</b>" not in response.text


@pytest.mark.usefixtures("search_plan")
def test_search_with_only_punctuation_lists_everything(agent_client):
    make_conversation()
    assert len(row_ids(agent_client.get("/", {"q": "?!"}))) == 1


@pytest.mark.usefixtures("search_plan")
def test_search_counts_stop_at_the_limit(agent_client, monkeypatch):
    monkeypatch.setattr(counts, "SEARCH_COUNT_LIMIT", 2)
    for n in range(3):
        make_conversation(minutes=n, contents=("segunda via do boleto",))
    make_conversation(minutes=5, contents=("boleto pago",), closed=True)
    make_conversation(minutes=6, contents=("outra coisa",))
    assert tab_counts(agent_client.get("/", {"q": "boleto"})) == {
        "open": "2+",
        "closed": "1",
        "all": "3+",
    }
    # The list itself is not capped, and without a search the counts are exact.
    assert len(row_ids(agent_client.get("/", {"q": "boleto", "status": "all"}))) == 4
    assert tab_counts(agent_client.get("/")) == {"open": "4", "closed": "1", "all": "5"}


@pytest.mark.usefixtures("search_plan")
def test_search_counts_when_both_states_pass_the_limit(agent_client, monkeypatch):
    # On SQLite the newest matches settle these counts without walking (inbox/selectors/counts.py).
    monkeypatch.setattr(counts, "SEARCH_COUNT_LIMIT", 1)
    for n in range(2):
        make_conversation(minutes=n, contents=("troca de plano",))
        make_conversation(minutes=n + 5, contents=("plano cancelado",), closed=True)
    assert tab_counts(agent_client.get("/", {"q": "plano"})) == {
        "open": "1+",
        "closed": "1+",
        "all": "2+",
    }


def test_a_search_walks_the_list_once_enough_messages_match(db, monkeypatch):
    monkeypatch.setattr(search, "BROAD_HITS", 3)
    make_conversation(contents=("fatura", "fatura atrasada"))
    assert search.plan("fatura") == search.Plan(terms=["fatura"], broad=False, contacts=())
    make_conversation(contents=("fatura",))
    assert search.plan("FATURA") == search.Plan(terms=["FATURA"], broad=True, contacts=())
    assert search.plan("?!") is None


def test_conversation_matches_uses_the_same_index(db):
    hit = make_conversation(contents=("Gostaria de cancelar a assinatura",))
    miss = make_conversation(contents=("Bom dia",))
    assert selectors.conversation_matches(conversation_id=hit.id, q="ASSINATURA cancel")
    assert not selectors.conversation_matches(conversation_id=miss.id, q="assinatura")
    assert selectors.conversation_matches(conversation_id=miss.id, q="")
    assert not selectors.conversation_matches(conversation_id=uuid.uuid4(), q="")


@pytest.mark.usefixtures("search_plan")
def test_the_index_follows_message_deletes(agent_client):
    conversation = make_conversation(contents=("palavra única",))
    conversation.delete()
    other = make_conversation(contents=("outra",))
    assert row_ids(agent_client.get("/", {"q": "unica"})) == []
    assert row_ids(agent_client.get("/", {"q": "outra"})) == [str(other.id)]


# --- Paging -----------------------------------------------------------------------------


def follow_pages(client: Client, params: dict) -> list[list[str]]:
    """Every page of the list, following each page's 'more' link as the browser would."""
    pages = []
    response = client.get("/conversations/", params)
    pages.append(row_ids(response))
    while more := markup.attr(response, "list-more", "hx-get"):
        response = client.get(more, headers=HTMX)
        assert response.status_code == 200
        pages.append(row_ids(response))
    return pages


@pytest.mark.parametrize(("count", "sizes"), [(50, [50]), (51, [50, 1]), (100, [50, 50]), (0, [0])])
def test_pages_hold_fifty_rows_and_end_exactly(agent_client, count, sizes):
    made = [make_conversation(minutes=n) for n in range(count)]
    pages = follow_pages(agent_client, {"status": "all"})
    assert [len(page) for page in pages] == sizes
    assert [row for page in pages for row in page] == [str(c.id) for c in reversed(made)]


@pytest.mark.usefixtures("search_plan")
def test_paging_keeps_the_filter_and_the_search(agent_client):
    matching = [make_conversation(minutes=n, contents=("pedido",)) for n in range(55)]
    for n in range(10):
        make_conversation(minutes=100 + n, contents=("outra coisa",))
    pages = follow_pages(agent_client, {"q": "pedido"})
    assert [len(page) for page in pages] == [50, 5]
    assert {row for page in pages for row in page} == {str(c.id) for c in matching}


def test_a_forged_cursor_is_a_clear_400(agent_client):
    response = agent_client.get("/conversations/", {"cursor": "not-a-cursor"})
    assert response.status_code == 400
    assert "not valid" in response.text


@pytest.mark.parametrize("cursor", FORGED_CURSORS)
def test_a_forged_cursor_is_a_400_on_the_list_and_the_thread(agent_client, cursor):
    conversation = make_conversation()
    for path, param in [
        ("/conversations/", "cursor"),
        ("/conversations/?status=all", "cursor"),
        (f"/conversations/{conversation.id}/", "before"),
    ]:
        for headers in ({}, HTMX):
            response = agent_client.get(path, {param: cursor}, headers=headers)
            assert response.status_code == 400, (path, headers)


def test_the_htmx_list_request_answers_the_fragment_and_the_url_to_push(agent_client):
    conversation = make_conversation(contents=("pagamento",))
    response = agent_client.get(
        "/conversations/",
        {"q": "pagamento", "status": "all"},
        headers={
            **HTMX,
            "HX-Target": "list-results",
            "HX-Current-URL": f"http://testserver/conversations/{conversation.id}/",
        },
    )
    assert response.status_code == 200
    assert "<html" not in response.text
    assert row_ids(response) == [str(conversation.id)]
    # Filtering beside an open thread keeps the thread in the address.
    assert response["HX-Push-Url"] == f"/conversations/{conversation.id}/?status=all&q=pagamento"


def test_typing_a_search_replaces_the_address_instead_of_adding_history(agent_client):
    response = agent_client.get(
        "/conversations/",
        {"q": "oi"},
        headers={**HTMX, "HX-Target": "list-results", "HX-Trigger": "list-filters"},
    )
    assert response["HX-Replace-Url"] == "/conversations/?q=oi"
    assert "HX-Push-Url" not in response


def test_the_url_pushed_for_the_list_ignores_a_foreign_current_url(agent_client):
    response = agent_client.get(
        "/conversations/",
        headers={**HTMX, "HX-Target": "list-results", "HX-Current-URL": "https://evil.test/x/"},
    )
    assert response["HX-Push-Url"] == "/conversations/"


# --- Thread -----------------------------------------------------------------------------


def test_the_thread_shows_messages_in_time_order_beside_the_list(agent_client):
    conversation = make_conversation(contents=("one", "two", "three"))
    response = agent_client.get(f"/conversations/{conversation.id}/")
    assert response.status_code == 200
    assert row_ids(response) == [str(conversation.id)]
    ids = [str(m.id) for m in selectors.thread_messages(conversation_id=conversation.id)]
    assert message_ids(response) == ids
    messages = markup.parse(response).select('li[id^="message-"]')
    directions = [li["data-direction"] for li in messages]
    assert directions == ["RECEIVED", "SENT", "RECEIVED"]
    assert markup.attr(response, "conversation-status", "data-status") == "OPEN"


def test_a_long_thread_opens_on_its_latest_fifty_and_pages_back(agent_client):
    conversation = make_conversation(contents=tuple(f"m{n}" for n in range(120)))
    everything = [str(m.id) for m in selectors.thread_messages(conversation_id=conversation.id)]
    response = agent_client.get(f"/conversations/{conversation.id}/")
    assert message_ids(response) == everything[-50:]
    seen = message_ids(response)
    while earlier := markup.attr(response, "messages-earlier", "hx-get"):
        response = agent_client.get(earlier, headers=HTMX)
        assert "<html" not in response.text
        seen = message_ids(response) + seen
    assert seen == everything


def test_the_thread_pane_request_answers_the_fragment_and_keeps_the_list_state(agent_client):
    conversation = make_conversation()
    response = agent_client.get(
        f"/conversations/{conversation.id}/",
        {"status": "all", "q": "ajuda"},
        headers={**HTMX, "HX-Target": "thread-pane"},
    )
    assert "<html" not in response.text
    assert markup.has_id(response, "conversation-header")
    assert response["HX-Push-Url"] == f"/conversations/{conversation.id}/?status=all&q=ajuda"


def test_a_history_restore_gets_the_whole_page(agent_client):
    conversation = make_conversation()
    response = agent_client.get(
        f"/conversations/{conversation.id}/",
        headers={**HTMX, "HX-Target": "thread-pane", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in response.text


@pytest.mark.parametrize("ident", [str(NO_SUCH_ID), "not-a-uuid", "1234"])
def test_an_unknown_thread_is_a_404_page(agent_client, ident):
    response = agent_client.get(f"/conversations/{ident}/")
    assert response.status_code == 404
    assert "Nothing here" in response.text


def test_the_thread_accepts_json_for_scripts(agent_client):
    conversation = make_conversation()
    response = agent_client.get(
        f"/conversations/{conversation.id}/", HTTP_ACCEPT="application/json"
    )
    assert response.json()["id"] == str(conversation.id)


# --- Close / Reopen -----------------------------------------------------------------------


@pytest.fixture
def csrf_client(agent) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    return client


def csrf_token(client: Client, conversation: Conversation) -> str:
    page = client.get(f"/conversations/{conversation.id}/")
    return markup.parse(page).find("input", attrs={"name": "csrfmiddlewaretoken"})["value"]


def test_close_without_the_csrf_token_is_refused(csrf_client):
    conversation = make_conversation()
    response = csrf_client.post(reverse("inbox:conversation-close", args=[conversation.id]))
    assert response.status_code == 403
    assert Conversation.objects.get(pk=conversation.id).status == "OPEN"


def test_close_and_reopen_with_the_token_record_who_and_when(csrf_client, agent):
    conversation = make_conversation()
    token = csrf_token(csrf_client, conversation)
    response = csrf_client.post(
        reverse("inbox:conversation-close", args=[conversation.id]), {"csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/conversations/{conversation.id}/"
    closed = Conversation.objects.get(pk=conversation.id)
    assert (closed.status, closed.closed_by) == ("CLOSED", agent)
    assert closed.closed_at is not None
    assert closed.last_activity_at == closed.closed_at

    page = csrf_client.get(f"/conversations/{conversation.id}/")
    assert markup.attr(page, "conversation-status", "data-status") == "CLOSED"
    response = csrf_client.post(
        reverse("inbox:conversation-reopen", args=[conversation.id]),
        headers={**HTMX, "X-CSRFToken": token},
    )
    assert response.status_code == 200
    assert markup.attr(response, "conversation-status", "data-status") == "OPEN"
    # The list's row is updated out of band.
    row = markup.by_id(response, f"conversation-{conversation.id}")
    assert (row["data-status"], row["hx-swap-oob"]) == ("OPEN", "true")
    reopened = Conversation.objects.get(pk=conversation.id)
    assert (reopened.status, reopened.closed_at, reopened.reopened_by) == ("OPEN", None, agent)
    assert reopened.reopened_at is not None


def test_close_needs_post(agent_client):
    conversation = make_conversation()
    response = agent_client.get(reverse("inbox:conversation-close", args=[conversation.id]))
    assert response.status_code == 405


@pytest.mark.parametrize("action", ["inbox:conversation-close", "inbox:conversation-reopen"])
@pytest.mark.parametrize("ident", [str(NO_SUCH_ID), "nope"])
def test_closing_an_unknown_conversation_is_a_404(agent_client, ident, action):
    response = agent_client.post(reverse(action, args=[ident]))
    assert response.status_code == 404


@pytest.mark.parametrize("htmx", [True, False])
def test_close_and_reopen_leave_the_lookup_to_the_service(
    agent_client, django_assert_max_num_queries, htmx
):
    # The service finds and locks the conversation; the view reads it only to render the
    # new header (htmx), not before the write nor for a redirect (6 queries each before).
    conversation = make_conversation()
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    for action in ("inbox:conversation-close", "inbox:conversation-reopen"):
        with django_assert_max_num_queries(5 if htmx else 4):
            response = agent_client.post(reverse(action, args=[conversation.id]), **headers)
        assert response.status_code == (200 if htmx else 302)


def test_a_reopened_conversation_takes_new_messages_again(agent):
    conversation = make_conversation(closed=True)
    services.conversation_reopen(conversation_id=conversation.id, agent=agent)
    outcome = services.message_add(
        message_id=uuid.uuid4(),
        conversation_id=conversation.id,
        direction="RECEIVED",
        content="voltei",
        timestamp=T0 + timedelta(days=1),
    )
    assert outcome.result == services.Result.CREATED


def test_closing_twice_changes_nothing(agent):
    conversation = make_conversation()
    first = services.conversation_close_by_agent(conversation_id=conversation.id, agent=agent)
    closed_at = Conversation.objects.get(pk=conversation.id).closed_at
    again = services.conversation_close_by_agent(conversation_id=conversation.id, agent=agent)
    assert (first.result, again.result) == (services.Result.CLOSED, services.Result.DUPLICATE)
    assert Conversation.objects.get(pk=conversation.id).closed_at == closed_at


# --- Escaping -----------------------------------------------------------------------------

HOSTILE = ('<script>alert("x")</script>', '<img src=x onerror="alert(1)">')


def test_message_content_is_escaped_in_the_list_and_the_thread(agent_client):
    conversation = make_conversation(contents=HOSTILE)
    for path in ["/", f"/conversations/{conversation.id}/"]:
        text = agent_client.get(path).text
        assert "<script>alert" not in text
        assert "<img src=x" not in text
        assert "&lt;img src=x onerror=" in text
    thread = agent_client.get(f"/conversations/{conversation.id}/").text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in thread


# --- Fragments for live pushes -------------------------------------------------------------


def test_the_pushed_fragments_render_without_a_request(db):
    from django.template.loader import render_to_string

    conversation = make_conversation(contents=HOSTILE)
    conversation = selectors.conversation_get(conversation_id=conversation.id)
    row = render_to_string("inbox/index.html#conversation-row", {"conversation": conversation})
    assert f'id="conversation-{conversation.id}" data-status="OPEN"' in row
    assert "onerror=" not in row.replace("&lt;img src=x onerror=", "")
    header = render_to_string(
        "inbox/index.html#conversation-header", {"conversation": conversation}
    )
    assert 'id="conversation-status"' in header
    assert "csrfmiddlewaretoken" not in row + header
    message = conversation.last_message
    bubble = render_to_string("inbox/index.html#message", {"message": message})
    assert f'id="message-{message.id}" data-direction="{message.direction}"' in bubble
    assert f'datetime="{message.timestamp.isoformat()}"' in bubble


# --- Query counts ----------------------------------------------------------------------------

PAGES = [
    ("/", {}),
    ("/", {"status": "all", "q": "ajuda"}),
    ("/conversations/", {"status": "closed"}),
    ("thread", {}),
]


def queries_per_page(client: Client, conversation: Conversation) -> list[int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = []
    for path, params in PAGES:
        url = f"/conversations/{conversation.id}/" if path == "thread" else path
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url, params).status_code == 200
        counts.append(len(captured))
    return counts


@pytest.mark.usefixtures("search_plan")
def test_query_counts_are_bounded_and_do_not_grow_with_the_data(
    agent_client, django_assert_max_num_queries
):
    small = make_conversation(contents=("ajuda",))
    before = queries_per_page(agent_client, small)
    # 60 more conversations (more than a page) and a thread of 120 messages (more than two).
    for n in range(60):
        make_conversation(minutes=n + 1, contents=("ajuda", "outra"), closed=n % 2 == 0)
    big = make_conversation(minutes=100, contents=tuple(f"ajuda {k}" for k in range(120)))
    after = queries_per_page(agent_client, big)
    assert before == after
    # Session, user, list page, tab counts (a search adds its plan and the page's matching
    # messages); a thread adds the conversation, its page and its notes, the agents it can
    # be assigned to, and the one upsert that marks it read for this agent.
    for path, params in PAGES:
        url = f"/conversations/{big.id}/" if path == "thread" else path
        with django_assert_max_num_queries(9 if path == "thread" else 7):
            agent_client.get(url, params)


# --- Language and time zone ------------------------------------------------------------------


def test_the_browser_language_picks_portuguese(agent_client):
    make_conversation()
    response = agent_client.get("/", HTTP_ACCEPT_LANGUAGE="pt-BR,pt;q=0.9")
    assert markup.parse(response).find("html")["lang"] == "pt-br"
    assert "Buscar mensagens" in response.text
    assert "Abertas" in response.text


@pytest.mark.parametrize(("contents", "count"), [((), "0 mensagens"), (("Oi",), "1 mensagem")])
def test_portuguese_says_live_and_counts_messages_in_its_plural_forms(
    agent_client, contents, count
):
    """Issue 12: "Live" was left in English, and the header said "0 mensagem"."""
    conversation = make_conversation(contents=contents)
    page = agent_client.get(
        reverse("inbox:conversation", args=[conversation.id]),
        HTTP_ACCEPT_LANGUAGE="pt-BR,pt;q=0.9",
    )
    status = markup.parse(page).select_one("#live-status")
    assert status["data-label-live"] == "Ao vivo"
    header = markup.parse(page).select_one("#conversation-header").get_text(" ", strip=True)
    assert count in header
    assert "0 mensagem " not in header + " "  # Brazilian Portuguese: zero is plural


def test_the_language_switcher_sets_the_language(agent_client):
    response = agent_client.post("/i18n/setlang/", {"language": "pt-br", "next": "/"})
    assert response.status_code == 302
    assert "Buscar mensagens" in agent_client.get("/").text


def test_times_are_rendered_in_the_agents_zone(agent_client):
    conversation = make_conversation()
    message = conversation.last_message
    agent_client.cookies["tz"] = "America/Sao_Paulo"
    page = markup.parse(agent_client.get(f"/conversations/{conversation.id}/"))
    local = message.timestamp.astimezone(ZoneInfo("America/Sao_Paulo"))
    shown = page.find_all("time", attrs={"datetime": local.isoformat()})
    assert f"{local:%H:%M}" in [time.get_text(strip=True) for time in shown]


@pytest.mark.parametrize("zone", ["Not/AZone", "../../etc/passwd", "/etc/localtime", "America", ""])
def test_a_bad_zone_cookie_falls_back_to_the_server_zone(agent_client, zone):
    conversation = make_conversation()
    agent_client.cookies["tz"] = zone
    response = agent_client.get(f"/conversations/{conversation.id}/")
    assert response.status_code == 200
    stamp = conversation.last_message.timestamp.isoformat()
    assert markup.parse(response).find("time", attrs={"datetime": stamp})


def test_seeded_messages_are_searchable(db):
    from devtools.seeding import seed
    from inbox.selectors.search import search_terms

    seed(conversations=5, messages=40, random_seed=7)
    message = Message.objects.order_by("timestamp").first()
    word = max(search_terms(message.content), key=len)
    assert selectors.conversation_matches(conversation_id=message.conversation_id, q=word)
    page = selectors.conversation_list(status=None, q=word)
    assert message.conversation_id in {c.id for c in page.conversations}


@pytest.mark.parametrize("query", ["", "?q=nada-encontrado"])
def test_the_empty_states_draw_their_pictures_without_an_emoji_font(agent_client, query):
    """Issue 12: "💬" rendered as a box on machines with no emoji font; the pictures are SVG."""
    page = markup.parse(agent_client.get(f"/{query}"))
    for empty in (page.select_one("#list-empty"), page.select_one("#thread-pane")):
        assert empty.select_one("svg[aria-hidden=true]") is not None
        assert not any(ord(char) > 0x2FFF for char in empty.get_text())  # no emoji
