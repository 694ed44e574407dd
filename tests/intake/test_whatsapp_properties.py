"""Whatever Meta (or anyone holding the app secret) posts, the WhatsApp webhook never
answers 5xx: Meta's documented payloads mutated at random (a key dropped, a value replaced
by any JSON, an array emptied or doubled) are 200 or a 400 naming a field, and a body that
is refused stores nothing (README, "Connect WhatsApp")."""

import copy
import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbox.models import Message, WebhookDelivery
from inbox.providers.generic import InvalidEvent
from inbox.providers.whatsapp import envelope_parse
from tests import whatsapp_payloads as wa

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=300),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=8,
)


def fixtures() -> list[dict]:
    messages = [
        wa.message("wamid.T", body="Olá"),
        wa.message("wamid.I", "image", image=wa.IMAGE),
        wa.message("wamid.L", "location", location=wa.LOCATION),
        wa.message("wamid.C", "contacts", contacts=wa.CONTACTS),
        wa.message("wamid.R", "reaction", reaction={"message_id": "wamid.T", "emoji": "👍"}),
        wa.message(
            "wamid.B",
            "interactive",
            interactive={"type": "list_reply", "list_reply": {"id": "1", "title": "Um"}},
        ),
    ]
    return [
        wa.envelope(wa.value(contacts=[wa.contact()], messages=messages)),
        wa.statuses(
            wa.status("wamid.S", "delivered"),
            wa.status("wamid.S", "failed", errors=[wa.RE_ENGAGEMENT]),
        ),
    ]


def paths(node, prefix=()):
    """Every place in a JSON document: its containers' keys and indexes."""
    yield prefix
    if isinstance(node, dict):
        for key, child in node.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from paths(child, (*prefix, index))


@st.composite
def mutated(draw):
    body = copy.deepcopy(draw(st.sampled_from(fixtures())))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        places = [p for p in paths(body) if p]
        if not places:
            break
        place = draw(st.sampled_from(places))
        parent = body
        for step in place[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["drop", "replace", "double"]))
        if action == "drop":
            del parent[place[-1]]
        elif action == "replace":
            parent[place[-1]] = draw(json_values)
        elif isinstance(parent[place[-1]], list):
            parent[place[-1]] = parent[place[-1]] * 2
        else:
            parent[place[-1]] = draw(json_values)
    return json.dumps(body).encode()


def refused(body: bytes) -> bool:
    try:
        envelope_parse(body)
    except InvalidEvent:
        return True
    return False


@pytest.mark.django_db
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=mutated() | st.binary(max_size=100))
def test_no_mutated_envelope_yields_a_5xx(body, settings):
    settings.WHATSAPP_APP_SECRET = wa.APP_SECRET
    before = Message.objects.count()
    deliveries = WebhookDelivery.objects.count()
    response = Client().post(
        "/webhook/whatsapp/",
        body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=wa.sign(body),
    )
    assert response.status_code in (200, 400), response.content
    if refused(body):
        assert response.status_code == 400
        assert all(e["field"] and e["message"] for e in response.json()["errors"])
        assert Message.objects.count() == before
    # Every authenticated body is in the delivery log.
    assert WebhookDelivery.objects.count() == deliveries + 1
