"""Replying from the thread (README "Replies"): the composer, its refusals, Retry, the ticks."""

import re
import uuid

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from inbox import services
from inbox.models import Conversation, Delivery, Message
from tests import markup
from tests.views.test_views_inbox import make_conversation

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("provider_on")]

HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "reply-form"}
# A refusal raised inside the service's transaction: as in a request, with no test
# transaction around it to break.
REFUSAL = pytest.mark.django_db(transaction=True)


@pytest.fixture
def provider_on():
    # Nothing listens there: these tests never run the worker, only what the view stores.
    with override_settings(PROVIDER_URL="http://127.0.0.1:9/messages", PROVIDER_SECRET="s"):
        yield


def reply_url(conversation: Conversation) -> str:
    return reverse("inbox:message-reply", args=[conversation.id])


def composer(response) -> str:
    """The reply form as the agent sees it."""
    match = re.search(r'<form id="reply-form".*?</form>', response.content.decode(), re.S)
    assert match, "no composer on the page"
    return match.group(0)


def replies(conversation: Conversation) -> list[Message]:
    return list(conversation.messages.filter(sent_by__isnull=False))


def test_the_thread_has_a_composer_posting_to_the_conversation(agent_client):
    conversation = make_conversation()
    form = composer(agent_client.get(reverse("inbox:conversation", args=[conversation.id])))
    assert f'action="{reply_url(conversation)}"' in form
    assert 'name="csrfmiddlewaretoken"' in form
    assert re.search(r'<textarea[^>]*name="content"', form)
    assert "disabled" not in re.search(r"<fieldset[^>]*>", form).group(0)


def test_a_plain_post_stores_the_reply_and_redirects_to_the_thread(agent_client, agent):
    conversation = make_conversation()
    response = agent_client.post(reply_url(conversation), {"content": "Olá!\r\nComo posso ajudar?"})
    assert response.status_code == 302
    assert response["Location"] == reverse("inbox:conversation", args=[conversation.id])
    (reply,) = replies(conversation)
    # The browser's CRLF is one line break, as the customer will see it.
    assert (reply.content, reply.direction, reply.delivery) == (
        "Olá!\nComo posso ajudar?",
        "SENT",
        Delivery.PENDING,
    )
    assert reply.sent_by == agent
    thread = agent_client.get(response["Location"])
    bubble = re.search(rf'<li id="message-{reply.id}".*?</li>', thread.content.decode(), re.S)
    assert 'data-delivery="PENDING"' in bubble.group(0)
    assert "ana" in bubble.group(0)  # the agent who wrote it
    assert "Sending" in bubble.group(0)  # the clock's label


def test_an_htmx_post_answers_an_empty_composer_and_the_bubble(agent_client):
    conversation = make_conversation()
    response = agent_client.post(reply_url(conversation), {"content": "Já verifico"}, **HTMX)
    assert response.status_code == 200
    (reply,) = replies(conversation)
    body = response.content.decode()
    assert re.search(r"<textarea[^>]*>\s*</textarea>", composer(response))
    assert f'id="message-{reply.id}"' in body
    assert 'hx-swap-oob="beforeend:#messages"' in body
    assert "<html" not in body


@REFUSAL
@pytest.mark.parametrize(
    ("content", "reason"),
    [("   \n ", "blank"), ("x" * 4097, "at most 4096")],
)
def test_bad_content_is_refused_400_in_the_composer_with_the_draft_kept(
    agent_client, content, reason
):
    conversation = make_conversation()
    for headers in (HTMX, {}):
        response = agent_client.post(reply_url(conversation), {"content": content}, **headers)
        assert response.status_code == 400
        form = composer(response)
        assert reason in form
        assert content.strip() in form  # the draft is still there
    assert replies(conversation) == []


def test_exactly_4096_characters_are_accepted(agent_client):
    conversation = make_conversation()
    # Emoji count as one character each, as the agent and WhatsApp count them.
    response = agent_client.post(reply_url(conversation), {"content": "😀" * 4096}, **HTMX)
    assert response.status_code == 200
    assert len(replies(conversation)) == 1


@REFUSAL
def test_a_closed_conversation_refuses_409_and_its_composer_says_reopen(agent_client):
    conversation = make_conversation(closed=True)
    form = composer(agent_client.get(reverse("inbox:conversation", args=[conversation.id])))
    assert "Reopen to reply" in form
    assert "disabled" in re.search(r"<fieldset[^>]*>", form).group(0)
    response = agent_client.post(reply_url(conversation), {"content": "Oi"}, **HTMX)
    assert response.status_code == 409
    assert "closed" in composer(response)
    assert replies(conversation) == []


@REFUSAL
def test_without_a_provider_the_composer_is_off_and_posts_are_refused_409(agent_client):
    conversation = make_conversation()
    with override_settings(PROVIDER_URL=""):
        form = composer(agent_client.get(reverse("inbox:conversation", args=[conversation.id])))
        assert "no messaging provider" in form
        assert "disabled" in re.search(r"<fieldset[^>]*>", form).group(0)
        response = agent_client.post(reply_url(conversation), {"content": "Oi"})
    assert response.status_code == 409
    assert "provider" in composer(response)
    assert replies(conversation) == []


@REFUSAL
def test_an_unknown_conversation_is_404(agent_client):
    response = agent_client.post(
        reverse("inbox:message-reply", args=[uuid.uuid4()]), {"content": "Oi"}
    )
    assert response.status_code == 404
    assert Message.objects.count() == 0


def test_the_reply_needs_a_logged_in_agent_and_the_csrf_token(agent, client):
    conversation = make_conversation()
    assert client.post(reply_url(conversation), {"content": "Oi"}).status_code == 302
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(agent)
    assert strict.post(reply_url(conversation), {"content": "Oi"}).status_code == 403
    assert replies(conversation) == []
    # With the page's token (the form's, or htmx's header from <body>) it is accepted.
    page = strict.get(reverse("inbox:conversation", args=[conversation.id]))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = strict.post(reply_url(conversation), {"content": "Oi", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert len(replies(conversation)) == 1


def test_reply_content_is_escaped_in_the_bubble_and_the_row(agent_client):
    conversation = make_conversation()
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    agent_client.post(reply_url(conversation), {"content": attack})
    page = agent_client.get(reverse("inbox:conversation", args=[conversation.id]))
    assertNotContains(page, "<script>alert")
    assertNotContains(page, "<img src=x")
    assertContains(page, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;", count=2)


def test_the_list_row_previews_our_reply_as_you(agent_client):
    conversation = make_conversation()
    agent_client.post(reply_url(conversation), {"content": "Já verifico o pedido"})
    page = agent_client.get("/").content.decode()
    row = re.search(rf'<li id="conversation-{conversation.id}".*?</li>', page, re.S).group(0)
    assert re.search(r"You:</span>\s*Já verifico o pedido", row)


def failed_reply(conversation: Conversation, agent, error: str = "Número inválido") -> Message:
    reply = services.message_reply(conversation_id=conversation.id, content="Oi", agent=agent)
    # What the delivery task records when the provider refuses it for good.
    Message.objects.filter(pk=reply.id).update(delivery=Delivery.FAILED, error=error)
    return Message.objects.get(pk=reply.id)


@pytest.mark.parametrize(
    ("delivery", "label"),
    [
        (Delivery.PENDING, "Sending"),
        (Delivery.SENT, "Sent"),
        (Delivery.DELIVERED, "Delivered"),
        (Delivery.READ, "Read"),
        (Delivery.FAILED, "Failed"),
    ],
)
def test_each_delivery_state_has_its_label(agent_client, agent, delivery, label):
    conversation = make_conversation()
    reply = services.message_reply(conversation_id=conversation.id, content="Oi", agent=agent)
    Message.objects.filter(pk=reply.id).update(delivery=delivery)
    page = agent_client.get(reverse("inbox:conversation", args=[conversation.id])).text
    bubble = re.search(rf'<li id="message-{reply.id}".*?</li>', page, re.S).group(0)
    assert f'data-delivery="{delivery}"' in bubble
    assert re.search(rf'<span class="sr-only">{label}</span>', bubble)


def test_a_providers_own_sent_message_reads_as_sent_and_names_no_agent(agent_client):
    conversation = make_conversation(contents=("Oi", "Olá, em que posso ajudar?"))
    page = agent_client.get(reverse("inbox:conversation", args=[conversation.id])).text
    sent = conversation.messages.get(direction="SENT")
    bubble = re.search(rf'<li id="message-{sent.id}".*?</li>', page, re.S).group(0)
    assert 'data-delivery="SENT"' in bubble
    assert "data-sent-by" not in bubble


def test_a_failed_reply_shows_its_error_and_a_retry_that_sends_it_again(agent_client, agent):
    conversation = make_conversation()
    reply = failed_reply(conversation, agent, error="<b>Número</b> inválido")
    page = agent_client.get(reverse("inbox:conversation", args=[conversation.id])).text
    bubble = re.search(rf'<li id="message-{reply.id}".*?</li>', page, re.S).group(0)
    assert "&lt;b&gt;Número&lt;/b&gt; inválido" in bubble
    retry = reverse("inbox:message-retry", args=[conversation.id, reply.id])
    assert f'formaction="{retry}"' in bubble
    response = agent_client.post(retry, **HTMX)
    assert response.status_code == 204
    reply.refresh_from_db()
    assert (reply.delivery, reply.error) == (Delivery.PENDING, None)


@REFUSAL
def test_retry_without_javascript_redirects_and_refuses_what_did_not_fail(agent_client, agent):
    conversation = make_conversation()
    reply = failed_reply(conversation, agent)
    retry = reverse("inbox:message-retry", args=[conversation.id, reply.id])
    response = agent_client.post(retry)
    assert response.status_code == 302
    # Now PENDING: a second retry is refused with the reason, nothing changed.
    again = agent_client.post(retry)
    assert again.status_code == 409
    assert "failed" in composer(again)
    assert agent_client.post(retry.replace(str(reply.id), "nonsense")).status_code == 404


def test_a_thread_of_replies_names_their_agents_in_a_bounded_number_of_queries(
    agent_client, agent, django_user_model, django_assert_max_num_queries
):
    conversation = make_conversation()
    other = django_user_model.objects.create_user(username="bruno", password="x")
    for writer in [agent, other] * 10:
        services.message_reply(conversation_id=conversation.id, content="Oi", agent=writer)
    url = reverse("inbox:conversation", args=[conversation.id])
    agent_client.get(url)
    with django_assert_max_num_queries(12):
        page = agent_client.get(url).text
    assert page.count("data-sent-by>bruno<") == 10
    assert page.count("data-sent-by>ana<") == 10


def test_the_composer_speaks_the_agents_language(agent_client):
    conversation = make_conversation(closed=True)
    url = reverse("inbox:conversation", args=[conversation.id])
    form = composer(agent_client.get(url, HTTP_ACCEPT_LANGUAGE="pt-BR"))
    assert "Reabra para responder" in form
    assert "Enviar" in form


@REFUSAL
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("   ", "Uma resposta não pode ficar em branco."),
        ("x" * 4097, "Uma resposta tem no máximo 4096 caracteres; esta tem 4097."),
    ],
)
def test_a_refusal_is_in_the_agents_language(agent_client, content, reason):
    conversation = make_conversation()
    for headers in (HTMX, {}):
        response = agent_client.post(
            reply_url(conversation), {"content": content}, HTTP_ACCEPT_LANGUAGE="pt-BR", **headers
        )
        assert response.status_code == 400
        assert reason in composer(response)


@REFUSAL
def test_a_closed_conversations_refusal_and_a_bad_retry_are_in_the_agents_language(
    agent_client, agent
):
    conversation = make_conversation(closed=True)
    response = agent_client.post(
        reply_url(conversation), {"content": "Oi"}, HTTP_ACCEPT_LANGUAGE="pt-BR"
    )
    assert response.status_code == 409
    assert "Esta conversa está fechada: reabra-a para responder." in composer(response)
    received = conversation.messages.first()
    retry = reverse("inbox:message-retry", args=[conversation.id, received.id])
    response = agent_client.post(retry, HTTP_ACCEPT_LANGUAGE="pt-BR", **HTMX)
    assert response.status_code == 409
    assert response.content.decode() == "Só uma resposta que falhou pode ser enviada de novo."


@REFUSAL
def test_the_refusal_page_without_javascript_searches_and_filters_the_inbox(agent_client):
    # A refused plain post is answered at the reply's URL, which only takes POST: the
    # list's search, tabs and the language switch must lead back to the inbox, not there.
    conversation = make_conversation()
    page = agent_client.post(reply_url(conversation), {"content": " "})
    assert page.status_code == 400
    html = markup.parse(page)
    thread = reverse("inbox:conversation", args=[conversation.id])
    search = markup.by_id(html, "list-filters")
    assert search["action"] == thread
    found = agent_client.get(search["action"], {"q": "anything"})
    assert found.status_code == 200
    links = [a["href"] for a in html.select("a[href]") if a["href"].startswith(thread + "?")]
    assert links, "no tab links to the thread's list"
    for href in links:
        assert agent_client.get(href).status_code == 200
    switch = html.find("input", attrs={"name": "next"})
    assert switch["value"] == thread
