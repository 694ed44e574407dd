"""The admin's Contact and Assignment pages (README, "Triage"): what an operator may fix."""

import uuid

import pytest
from django.test import Client

from inbox import selectors, services
from inbox.models import Assignment, Contact
from tests import factories
from tests.conftest import T0


@pytest.fixture
def operator() -> Client:
    client = Client()
    client.force_login(factories.agent("root", superuser=True))
    return client


@pytest.mark.django_db
def test_an_operator_renames_a_contact_and_the_search_finds_the_new_name(operator):
    cid = uuid.uuid4()
    services.conversation_open(conversation_id=cid, timestamp=T0)
    services.contact_rename(conversation_id=cid, name="Jose", agent=None)
    assert operator.get("/admin/inbox/contact/").status_code == 200
    contact = Contact.objects.get(conversations__id=cid)
    response = operator.post(f"/admin/inbox/contact/{contact.pk}/change/", {"name": "José Araújo"})
    assert response.status_code == 302, response.content
    contact.refresh_from_db()
    assert contact.name == "José Araújo"
    assert selectors.conversation_counts(q="araujo").open == 1


@pytest.mark.django_db
def test_the_assignment_log_is_read_only(operator, agent):
    conversation = factories.conversation()
    services.conversation_assign(conversation_id=conversation.id, assignee=agent, by=agent)
    record = Assignment.objects.get()
    assert operator.get("/admin/inbox/assignment/").status_code == 200
    page = operator.get(f"/admin/inbox/assignment/{record.pk}/change/")
    assert page.status_code == 200
    operator.post(f"/admin/inbox/assignment/{record.pk}/change/", {"assignee": ""})
    assert Assignment.objects.get().assignee == agent
    assert operator.get("/admin/inbox/assignment/add/").status_code == 403
