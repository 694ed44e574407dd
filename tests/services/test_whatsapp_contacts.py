"""WhatsApp customers as contacts (README, "Connect WhatsApp" and "Triage"): the profile name
and number from contacts[] fill the conversation's contact, one contact per number, and a
new WhatsApp name renames it while an agent's correction stands against the old one."""

import pytest
from django.test import Client

from inbox import services
from inbox.models import Contact, Conversation
from tests import whatsapp_payloads as wa

URL = "/webhook/whatsapp/"


@pytest.fixture(autouse=True)
def channel(settings):
    settings.WHATSAPP_APP_SECRET = wa.APP_SECRET


def webhook(body: dict) -> None:
    raw = wa.dumps(body)
    response = Client().post(
        URL, raw, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=wa.sign(raw)
    )
    assert response.status_code == 200, response.content


@pytest.mark.django_db
def test_the_customers_name_and_number_fill_the_contact():
    webhook(wa.text("wamid.A1", name="Sheena Nelson"))
    contact = Conversation.objects.get().contact
    assert (contact.name, contact.phone) == ("Sheena Nelson", "+16505551234")


@pytest.mark.django_db
def test_a_later_whatsapp_name_renames_the_contact(agent_client):
    webhook(wa.text("wamid.A1", name="Sheena Nelson"))
    webhook(wa.text("wamid.A2", "again", name="Sheena N.", at=wa.ts(seconds=5)))
    conversation = Conversation.objects.get()
    assert conversation.contact.name == "Sheena N."
    # The name shows where agents look: the list's row.
    page = agent_client.get("/").content.decode()
    assert "Sheena N." in page


@pytest.mark.django_db
def test_an_agents_correction_stands_until_the_customer_changes_their_name(agent):
    webhook(wa.text("wamid.A1", name="Sheena Nelson"))
    conversation = Conversation.objects.get()
    services.contact_rename(conversation_id=conversation.id, name="Sheena (VIP)", agent=agent)
    webhook(wa.text("wamid.A2", "again", name="Sheena Nelson", at=wa.ts(seconds=5)))
    assert Contact.objects.get().name == "Sheena (VIP)"
    # A new conversation after a close, WhatsApp's name unchanged: still the agent's.
    services.conversation_close_by_agent(conversation_id=conversation.id, agent=agent)
    webhook(wa.text("wamid.B1", "back", name="Sheena Nelson", at=wa.ts(seconds=3600)))
    assert Conversation.objects.count() == 2
    assert Contact.objects.count() == 1
    assert Contact.objects.get().name == "Sheena (VIP)"
    webhook(wa.text("wamid.B2", "new name", name="Sheena Nelson-Park", at=wa.ts(seconds=3700)))
    assert Contact.objects.get().name == "Sheena Nelson-Park"


@pytest.mark.django_db
def test_one_contact_per_number_and_another_number_another_contact():
    webhook(wa.text("wamid.A1", name="Sheena Nelson"))
    webhook(wa.text("wamid.B1", "Oi", sender="5511987654321", name="João"))
    assert sorted(Contact.objects.values_list("phone", "name")) == [
        ("+16505551234", "Sheena Nelson"),
        ("+5511987654321", "João"),
    ]


@pytest.mark.django_db
def test_a_wa_id_that_is_no_valid_number_still_names_the_contact():
    webhook(wa.text("wamid.A1", sender="12", name="Test"))
    contact = Conversation.objects.get().contact
    assert (contact.name, contact.phone) == ("Test", None)
