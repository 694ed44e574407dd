"""The one way tests build stored data: through the services, as the webhook and the agents
would, or (the `*_row` builders) straight through the ORM for rows the services refuse to
write today, such as timestamps outside the webhook's window.

Webhook payloads are not built here: tests/conftest.py's event-dict builders
(`new_conversation`, `new_message`, `close_conversation`) make those.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser

from inbox import services
from inbox.commands import AddMessage, CloseConversation
from inbox.models import Conversation, HeldEvent, Message
from tests.conftest import T0

PASSWORD = "s3cret-pass-word"  # every test agent's, so a browser test can type it

Said = tuple[str, str]  # (direction, content): "RECEIVED" from the customer, "SENT" by us


def agent(username: str = "ana", *, password: str = PASSWORD, superuser: bool = False):
    """An agent who can log in (the suite's MD5 hasher keeps this cheap)."""
    users = get_user_model().objects
    make = users.create_superuser if superuser else users.create_user
    user: AbstractUser = make(username=username, password=password)
    return user


def conversation(
    *,
    opened_at: datetime = T0,
    messages: Sequence[Said] = (),
    every: timedelta = timedelta(minutes=1),
    first_after: timedelta | None = None,
    closed_at: datetime | None = None,
    conversation_id: uuid.UUID | None = None,
) -> Conversation:
    """A conversation opened at `opened_at`, its messages `first_after` (default `every`)
    after that and `every` apart, closed at `closed_at` if given."""
    cid = conversation_id or uuid.uuid4()
    services.conversation_open(conversation_id=cid, timestamp=opened_at)
    first = opened_at + (every if first_after is None else first_after)
    for n, (direction, content) in enumerate(messages):
        message(cid, content=content, direction=direction, at=first + every * n)
    if closed_at is not None:
        services.conversation_close(conversation_id=cid, timestamp=closed_at)
    return Conversation.objects.get(pk=cid)


def alternating(contents: Sequence[str]) -> list[Said]:
    """Contents said in turn by the customer and by us, the customer first."""
    return [("RECEIVED" if n % 2 == 0 else "SENT", content) for n, content in enumerate(contents)]


def message(
    conversation_id: uuid.UUID,
    *,
    content: str = "Olá",
    direction: str = "RECEIVED",
    at: datetime = T0,
    message_id: uuid.UUID | None = None,
) -> Message:
    """A message added to a stored conversation through the services."""
    ident = message_id or uuid.uuid4()
    outcome = services.message_add(
        message_id=ident,
        conversation_id=conversation_id,
        direction=direction,
        content=content,
        timestamp=at,
    )
    assert outcome.result == services.Result.CREATED, outcome.detail
    return Message.objects.get(pk=ident)


def held_event(command: AddMessage | CloseConversation) -> HeldEvent:
    """A command held for a conversation that has not arrived, as its delivery leaves it."""
    outcome = services.command_apply(command=command)
    assert outcome.result == services.Result.HELD, outcome.detail
    return HeldEvent.objects.filter(conversation_id=command.conversation_id).latest("id")


def conversation_row(
    *,
    created_at: datetime,
    last_activity_at: datetime | None = None,
    closed_at: datetime | None = None,
) -> Conversation:
    """A conversation written by hand, not by the services (and so, pushed to no one)."""
    return Conversation.objects.create(
        id=uuid.uuid4(),
        status=Conversation.Status.CLOSED if closed_at else Conversation.Status.OPEN,
        created_at=created_at,
        closed_at=closed_at,
        last_activity_at=last_activity_at or created_at,
    )


def message_row(
    conversation: Conversation,
    *,
    content: str,
    timestamp: datetime,
    direction: str = "RECEIVED",
    as_last: bool = False,
) -> Message:
    """A message written by hand; `as_last` also sets its conversation's last-message fields
    as the services would."""
    stored = Message.objects.create(
        id=uuid.uuid4(),
        conversation=conversation,
        direction=direction,
        content=content,
        timestamp=timestamp,
    )
    if as_last:
        Conversation.objects.filter(pk=conversation.pk).update(
            last_message=stored, last_message_at=timestamp, message_count=1
        )
    return stored
