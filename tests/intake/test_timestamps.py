"""Timestamps at the edge of the calendar: refused at the webhook, and harmless if stored.

A year-1 or year-9999 time cannot be shown in a zone whose offset pushes it past the
calendar (`OverflowError` in `localtime`): one such event used to answer 500 on every page
for every agent outside UTC, and on the admin's lists.
"""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from inbox.commands import AddMessage
from inbox.models import Conversation, HeldEvent, Message
from inbox.providers.generic import EARLIEST_TIMESTAMP, InvalidEvent, event_parse
from tests import factories
from tests.conftest import new_conversation, new_message

pytestmark = pytest.mark.django_db


def _event_at(when: str, kind: str = "conversation") -> dict:
    event = new_conversation() if kind == "conversation" else new_message(uuid.uuid4())
    event["timestamp"] = when
    return event


@pytest.mark.parametrize(
    "when",
    [
        "0001-01-01T00:00:00Z",
        "1999-12-31T23:59:59.999999Z",
        "2000-01-01T00:59:59+01:00",  # 1999-12-31T23:59:59Z
        "9999-12-31T23:59:59Z",
        "9999-12-30T00:00:00-05:00",
    ],
)
@pytest.mark.parametrize("kind", ["conversation", "message"])
def test_a_timestamp_outside_the_window_is_a_400_naming_it(post_event, when, kind):
    response = post_event(_event_at(when, kind))
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_event"
    assert [e["field"] for e in body["errors"]] == ["timestamp"]
    assert Conversation.objects.count() == 0


def test_more_than_a_day_ahead_of_the_server_clock_is_refused(post_event):
    ahead = timezone.now() + timedelta(hours=24, minutes=1)
    response = post_event(_event_at(ahead.isoformat()))
    assert response.status_code == 400
    assert "24 h" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    "when",
    [
        EARLIEST_TIMESTAMP.isoformat(),
        "2000-01-01T00:00:00",  # no zone: read in WEBHOOK_TIMEZONE (UTC)
        (datetime.now(UTC) + timedelta(hours=23, minutes=59)).isoformat(),
    ],
    # Named, as the last is "now" at collection: each pytest-xdist worker must collect it alike.
    ids=["earliest", "no-zone", "a-day-ahead"],
)
def test_the_edges_of_the_window_are_accepted(post_event, when):
    assert post_event(_event_at(when)).status_code == 201


def test_a_held_event_is_replayed_whatever_its_time(post_event):
    """The window is for what the provider sends now; an event held before the window
    existed must still apply when its conversation arrives, never fail the delivery."""
    conversation_id, message_id = uuid.uuid4(), uuid.uuid4()
    event = new_message(conversation_id, message_id=message_id)
    event["timestamp"] = "0001-01-01T00:00:00+00:00"
    with pytest.raises(InvalidEvent):
        event_parse(json.dumps(event).encode())
    # The row its delivery left, back when the window did not exist.
    command = AddMessage(
        message_id=message_id,
        conversation_id=conversation_id,
        direction="RECEIVED",
        content="Olá",
        timestamp=datetime(1, 1, 1, tzinfo=UTC),
    )
    factories.held_event(command)
    assert post_event(new_conversation(conversation_id)).status_code == 201
    assert HeldEvent.objects.get().outcome == "created"
    assert Message.objects.get(pk=message_id).timestamp.year == 1


EXTREMES = [
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
]


@pytest.fixture
def extreme_conversation() -> Conversation:
    """Rows a webhook can no longer create, written straight through the ORM: data stored
    before the window, or by hand."""
    first = None
    for when in EXTREMES:
        conversation = factories.conversation_row(created_at=when)
        factories.message_row(
            conversation, content="from the edge of time", timestamp=when, as_last=True
        )
        first = first or conversation
    closed = factories.conversation_row(
        created_at=EXTREMES[0], closed_at=EXTREMES[1], last_activity_at=EXTREMES[1]
    )
    factories.message_row(
        closed, direction="SENT", content="closed at the end of time", timestamp=EXTREMES[0]
    )
    return closed


@pytest.mark.parametrize(
    ("zone", "beyond"),
    [
        ("America/New_York", "0001-01-01T00:00:00+00:00"),
        ("Asia/Tokyo", "9999-12-31T23:59:59+00:00"),
        ("Pacific/Kiritimati", "9999-12-31T23:59:59+00:00"),
    ],
)
def test_every_page_renders_stored_extreme_times_in_any_zone(
    admin_client, extreme_conversation, zone, beyond
):
    admin_client.cookies["tz"] = zone
    threads = [f"/conversations/{c.id}/" for c in Conversation.objects.all()]
    paths = [
        "/",
        "/conversations/?status=all",
        "/conversations/?status=closed",
        *threads,
        "/admin/inbox/conversation/",
        f"/admin/inbox/conversation/{extreme_conversation.id}/change/",
        "/admin/inbox/message/",
    ]
    for path in paths:
        assert admin_client.get(path).status_code == 200, path
    # The instant is kept: a time the zone cannot show is shown in UTC instead.
    page = admin_client.get(f"/conversations/{extreme_conversation.id}/").text
    assert f'datetime="{beyond}"' in page


def test_a_server_zone_outside_utc_renders_them_too(admin_client, extreme_conversation, settings):
    settings.TIME_ZONE = "America/Sao_Paulo"
    assert admin_client.get("/conversations/?status=all").status_code == 200
    assert admin_client.get(f"/conversations/{extreme_conversation.id}/").status_code == 200


def test_pushed_fragments_render_them_in_a_server_zone_outside_utc(extreme_conversation, settings):
    from inbox import live

    settings.TIME_ZONE = "America/New_York"
    for conversation in Conversation.objects.select_related("last_message"):
        assert live.row_event(conversation, version=1, to_top=True)["show"]
        assert live.header_event(conversation, version=1)["html"]
    for message in Message.objects.all():
        assert live.bubble_event(message, version=1)["html"]
