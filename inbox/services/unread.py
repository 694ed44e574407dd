"""Unread, per agent (README, "Triage"): what each agent has seen of each conversation."""

from uuid import UUID

from django.utils import timezone

from inbox import db
from inbox.models import Conversation, ConversationRead


def conversation_read(*, conversation_id: UUID, agent_id: int) -> bool:
    """The agent has seen every message the conversation holds now (they opened its thread,
    or a message was pushed into the thread they are looking at). False if there is no
    such conversation. Only this agent's row changes: a colleague's unread stays theirs."""
    count = (
        Conversation.objects.filter(pk=conversation_id).values_list("message_count", flat=True)
    ).first()
    if count is None:
        return False
    with db.write():
        ConversationRead.objects.update_or_create(
            conversation_id=conversation_id,
            agent_id=agent_id,
            defaults={"seen_count": count, "seen_at": timezone.now()},
        )
    return True


def conversation_mark_unread(*, conversation_id: UUID, agent_id: int) -> bool:
    """ "Mark as unread": the newest message is unread again for this agent (and only for
    them), as if they had not opened it. False if there is no such conversation."""
    count = (
        Conversation.objects.filter(pk=conversation_id).values_list("message_count", flat=True)
    ).first()
    if count is None:
        return False
    with db.write():
        ConversationRead.objects.update_or_create(
            conversation_id=conversation_id,
            agent_id=agent_id,
            defaults={"seen_count": max(count - 1, 0), "seen_at": timezone.now()},
        )
    return True
