"""A conversation's life: opened by the provider, closed by it or an agent, reopened."""

from datetime import datetime
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from inbox import db, live
from inbox.models import Conversation
from inbox.services import held
from inbox.services.contacts import contact_for
from inbox.services.locks import conversation_key_lock, conversation_locked
from inbox.services.outcome import Outcome, Result, not_found


def last_activity(conversation: Conversation) -> datetime:
    """The latest of its creation, newest message, close and reopen."""
    times = [
        conversation.created_at,
        conversation.last_message_at,
        conversation.closed_at,
        conversation.reopened_at,
    ]
    return max(t for t in times if t is not None)


def conversation_open(
    *,
    conversation_id: UUID,
    timestamp: datetime,
    contact_name: str = "",
    contact_phone: str | None = None,
) -> Outcome:
    """Create an OPEN conversation created at `timestamp`, then apply its held events.

    With the contact the provider named (`contact_phone` in E.164): the one of that phone
    when there is one. A redelivery changes nothing, contact included: the contact is made
    in the insert's atomic block, so it rolls back with the refused insert.
    """
    with db.write():
        conversation_key_lock(conversation_id)
        try:
            with transaction.atomic():
                Conversation.objects.create(
                    id=conversation_id,
                    status=Conversation.Status.OPEN,
                    created_at=timestamp,
                    last_activity_at=timestamp,
                    contact=contact_for(name=contact_name, phone=contact_phone),
                )
                live.conversation_changed(conversation_id)
        except IntegrityError:
            return _opened_again(conversation_id, timestamp)
        applied = held.held_events_apply(conversation_id=conversation_id)
    detail = f"conversation {conversation_id} created"
    if applied:
        detail += f"; {applied} held event(s) applied"
    return Outcome(Result.CREATED, detail)


def _opened_again(conversation_id: UUID, timestamp: datetime) -> Outcome:
    existing = Conversation.objects.get(pk=conversation_id)
    if existing.created_at != timestamp:
        return Outcome(
            Result.CONFLICT,
            f"conversation {conversation_id} already exists, created at "
            f"{existing.created_at.isoformat()}, not {timestamp.isoformat()}",
        )
    return Outcome(Result.DUPLICATE, f"conversation {conversation_id} already exists")


def _changeable(conversation_id: UUID, *, unless: str) -> Conversation | Outcome:
    """The close's and the reopen's shared start: the conversation's locked row, or the
    answer when there is nothing to change (it does not exist, or is already `unless`)."""
    conversation = conversation_locked(conversation_id)
    if conversation is None:
        return not_found(conversation_id)
    if conversation.status == unless:
        state = "closed" if unless == Conversation.Status.CLOSED else "open"
        return Outcome(Result.DUPLICATE, f"conversation {conversation_id} is already {state}")
    return conversation


def _changed(conversation: Conversation, fields: list[str]) -> None:
    """Save the new state, with the last activity it implies, and push it after commit."""
    conversation.last_activity_at = last_activity(conversation)
    conversation.save(update_fields=[*fields, "last_activity_at"])
    live.conversation_changed(conversation.id)


def conversation_close(
    *, conversation_id: UUID, timestamp: datetime, agent: AbstractBaseUser | None = None
) -> Outcome:
    """Close a conversation at `timestamp` (by `agent`, when one closed it from the inbox);
    closing a closed one changes nothing.

    Nor does a close timestamped at or before the latest reopen by an agent: it is a replay
    of the close the agent undid (README, "The webhook"), and must not undo the reopen.
    """
    with db.write():
        conversation = _changeable(conversation_id, unless=Conversation.Status.CLOSED)
        if isinstance(conversation, Outcome):
            return conversation
        if conversation.reopened_at is not None and timestamp <= conversation.reopened_at:
            return Outcome(
                Result.DUPLICATE,
                f"conversation {conversation_id} was reopened at "
                f"{conversation.reopened_at.isoformat()}, after this close",
            )
        conversation.status = Conversation.Status.CLOSED
        conversation.closed_at = timestamp
        conversation.closed_by = agent
        _changed(conversation, ["status", "closed_at", "closed_by"])
    by = f" by {agent}" if agent is not None else ""
    return Outcome(Result.CLOSED, f"conversation {conversation_id} closed{by}")


def conversation_close_by_agent(*, conversation_id: UUID, agent: AbstractBaseUser) -> Outcome:
    """An agent closes a conversation from the inbox, now; closing a closed one changes nothing."""
    return conversation_close(
        conversation_id=conversation_id, timestamp=timezone.now(), agent=agent
    )


def conversation_reopen(*, conversation_id: UUID, agent: AbstractBaseUser) -> Outcome:
    """An agent reopens a closed conversation, now; reopening an open one changes nothing.

    closed_at is cleared, since an open conversation has not closed, so the provider's
    messages are accepted again; reopened_at/by keep the record of who reopened it.
    """
    with db.write():
        conversation = _changeable(conversation_id, unless=Conversation.Status.OPEN)
        if isinstance(conversation, Outcome):
            return conversation
        conversation.status = Conversation.Status.OPEN
        conversation.closed_at = None
        conversation.closed_by = None
        conversation.reopened_at = timezone.now()
        conversation.reopened_by = agent
        _changed(conversation, ["status", "closed_at", "closed_by", "reopened_at", "reopened_by"])
    return Outcome(Result.REOPENED, f"conversation {conversation_id} reopened by {agent}")
