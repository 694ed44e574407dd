"""Contacts (README, "Triage"): who each conversation is with, by name and phone."""

import uuid

import pytest
from django.urls import reverse

from devtools.seeding import seed
from devtools.simulator import customer
from inbox import selectors, services
from inbox.models import Contact, Conversation
from tests import markup
from tests.conftest import new_conversation, new_message

pytestmark = pytest.mark.django_db


def opened(post_event, contact: dict | None, **fields) -> tuple[int, dict, uuid.UUID]:
    event = new_conversation(**fields)
    if contact is not None:
        event["data"]["contact"] = contact
    response = post_event(event)
    return response.status_code, response.json(), uuid.UUID(event["data"]["id"])


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("José da Conceição", "José da Conceição"),
        ("  Luíza   Gonçalves ", "Luíza Gonçalves"),  # spaces as a person means them
        ("Mariana 🌻", "Mariana 🌻"),
        ("王小明", "王小明"),
    ],
)
def test_a_new_conversation_names_its_contact(post_event, name, stored):
    status, _, cid = opened(post_event, {"name": name})
    assert status == 201
    assert Conversation.objects.get(pk=cid).contact.name == stored


@pytest.mark.parametrize(
    "phone",
    [
        "+55 11 91234-5678",
        "+5511912345678",
        "(11) 91234-5678",
        "11 912345678",
        "+55 (11) 9 1234 5678",
    ],
)
def test_phones_in_national_and_international_form_are_one_number(post_event, phone):
    status, _, cid = opened(post_event, {"name": "Ana", "phone": phone})
    assert status == 201
    assert Conversation.objects.get(pk=cid).contact.phone == "+5511912345678"


@pytest.mark.parametrize("phone", ["12", "abc", "+1 555 0100", "+55 11 1234", "", "9" * 70])
def test_a_bad_phone_is_refused_naming_it(post_event, phone):
    status, body, cid = opened(post_event, {"name": "Ana", "phone": phone})
    assert status == 400
    assert "data.contact.phone" in str(body)
    assert not Conversation.objects.filter(pk=cid).exists()
    assert not Contact.objects.exists()


@pytest.mark.parametrize(
    "contact", [{"name": 5}, {"phone": 5511912345678}, "Ana", {"name": "a\x00b"}]
)
def test_a_contact_of_the_wrong_shape_is_refused(post_event, contact):
    status, body, _ = opened(post_event, contact)
    assert status == 400
    assert "data.contact" in str(body)


def test_no_contact_is_still_a_conversation(post_event):
    status, _, cid = opened(post_event, None)
    assert status == 201
    assert Conversation.objects.get(pk=cid).contact is None


def test_later_conversations_of_the_same_phone_reuse_the_contact(post_event):
    _, _, first = opened(post_event, {"name": "Ana Souza", "phone": "+55 11 91234-5678"})
    _, _, second = opened(post_event, {"name": "", "phone": "(11) 91234-5678"})
    _, _, third = opened(post_event, {"phone": "+5511912345678", "name": "Outra"})
    contacts = {Conversation.objects.get(pk=c).contact_id for c in (first, second, third)}
    assert len(contacts) == 1
    assert Contact.objects.get().name == "Ana Souza"  # a later name does not replace it


def test_a_redelivered_new_conversation_makes_no_second_contact(post_event):
    event = new_conversation()
    event["data"]["contact"] = {"name": "Ana"}
    assert post_event(event).status_code == 201
    assert post_event(event).status_code == 200
    assert Contact.objects.count() == 1


def _row_label(client, cid) -> str:
    return markup.text(client.get(reverse("inbox:index")).content, f"conversation-{cid}")


def test_rows_and_header_show_the_name_then_the_phone_then_the_short_id(post_event, agent_client):
    _, _, named = opened(post_event, {"name": "José Araújo", "phone": "+5511912345678"})
    _, _, phoned = opened(post_event, {"phone": "+5521987654321"})
    _, _, anonymous = opened(post_event, None)

    assert "José Araújo" in _row_label(agent_client, named)
    assert "+55 11 91234-5678" in _row_label(agent_client, named)
    assert "+55 21 98765-4321" in _row_label(agent_client, phoned)
    assert f"#{str(anonymous)[:8]}" in _row_label(agent_client, anonymous)
    assert f"#{str(named)[:8]}" not in _row_label(agent_client, named)

    page = agent_client.get(f"/conversations/{named}/").content
    assert "José Araújo" in markup.text(page, "thread-title")
    assert markup.text(page, f"conversation-{named}").startswith(
        "JA José Araújo"
    )  # the avatar, first


def test_search_finds_a_conversation_by_contact_name_or_phone(post_event, agent_client):
    _, _, cid = opened(post_event, {"name": "Conceição Brandão", "phone": "+5511912345678"})
    _, _, other = opened(post_event, {"name": "Ana", "phone": "+5521987654321"})
    post_event(new_message(other, content="falei com a conceicao ontem"))
    for q in ["conceicao brandao", "Brandão", "CONCEI", "912345678", "+55 11 91234"]:
        page = selectors.conversation_list(q=q)
        ids = {c.id for c in page.conversations}
        assert cid in ids, q
        assert selectors.conversation_matches(conversation_id=cid, q=q)
    assert {c.id for c in selectors.conversation_list(q="brandao").conversations} == {cid}
    # A message still finds its conversation, as before.
    assert other in {c.id for c in selectors.conversation_list(q="conceicao").conversations}
    assert selectors.conversation_counts(q="brandao").open == 1
    assert markup.has_id(agent_client.get("/?q=brandao").content, f"conversation-{cid}")


def test_an_agent_renames_the_contact_from_the_thread(post_event, agent_client, client):
    _, _, cid = opened(post_event, {"name": "ana", "phone": "+5511912345678"})
    _, _, again = opened(post_event, {"phone": "+5511912345678"})
    url = reverse("inbox:conversation-contact", args=[cid])

    response = agent_client.post(url, {"name": "Ana Lúcia"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "Ana Lúcia" in markup.text(response.content, "thread-title")
    for ident in (cid, again):
        assert "Ana Lúcia" in _row_label(agent_client, ident)
    assert selectors.conversation_list(q="lucia").conversations

    # Without JavaScript: a plain form post, answered with the thread.
    response = agent_client.post(url, {"name": "Ana L."})
    assert response.status_code == 302
    assert Contact.objects.get().name == "Ana L."
    # Logged out: nothing changes.
    client.post(url, {"name": "Hacker"})
    assert Contact.objects.get().name == "Ana L."


def test_renaming_a_conversation_without_a_contact_makes_one(post_event, agent):
    _, _, cid = opened(post_event, None)
    services.contact_rename(conversation_id=cid, name="Zé", agent=agent)
    assert Conversation.objects.get(pk=cid).contact.name == "Zé"


def test_the_simulator_and_seed_give_customers_names_and_phones():
    person = customer("x")
    assert person == customer("x")
    assert person["name"] and person["phone"].startswith("+55")
    seed(conversations=30, messages=60, random_seed=2)
    seed(conversations=10, messages=20, random_seed=3)  # seeding twice: phones stay unique
    assert Conversation.objects.filter(contact__isnull=True).count() == 0
    assert Contact.objects.values("phone").distinct().count() == 40
    named = Conversation.objects.select_related("contact").first()
    assert selectors.conversation_list(q=named.contact.name).conversations
    Contact.objects.create(name="after seeding", phone="+5511900000001")  # the sequence moved on
