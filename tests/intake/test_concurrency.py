"""Concurrent deliveries of one event: exactly one row, exactly one 201, never a 5xx."""

import json
import uuid
from collections import Counter

import pytest
from django.test import Client

from inbox.models import Conversation, Message
from tests.conftest import deliver_concurrently, new_conversation, new_message


@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_deliveries_of_one_message_store_one_row():
    ident = uuid.uuid4()
    Client().post("/webhook/", new_conversation(ident), content_type="application/json")
    message_id = uuid.uuid4()
    body = json.dumps(new_message(ident, message_id=message_id)).encode()

    statuses = deliver_concurrently([body] * 20)

    assert statuses == Counter({201: 1, 200: 19})
    assert Message.objects.filter(pk=message_id).count() == 1
    assert Conversation.objects.get(pk=ident).message_count == 1


@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_deliveries_of_one_new_conversation_store_one_row():
    ident = uuid.uuid4()
    statuses = deliver_concurrently([json.dumps(new_conversation(ident)).encode()] * 20)
    assert statuses == Counter({201: 1, 200: 19})
    assert Conversation.objects.filter(pk=ident).count() == 1
