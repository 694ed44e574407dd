"""Unread, per agent (README, "Triage"): what each agent has seen of each conversation."""

from uuid import UUID

from django.db import connection
from django.utils import timezone

from inbox import db
from inbox.models import Conversation, ConversationRead


def conversation_read(*, conversation_id: UUID, agent_id: int) -> bool:
    """The agent has seen every message the conversation holds now (they opened its thread,
    or a message was pushed into the thread they are looking at). False if there is no
    such conversation. Only this agent's row changes: a colleague's unread stays theirs."""
    # One statement (it runs on every thread opened and every message pushed into one):
    # the count is read and the agent's row written together, so it is atomic by itself and
    # a message arriving meanwhile is either counted or still unread, never skipped.
    read = ConversationRead._meta.db_table
    conversations = Conversation._meta.db_table
    with db.write(atomic=False), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {read} (conversation_id, agent_id, seen_count, seen_at) "  # noqa: S608
            f"SELECT id, %s, message_count, %s FROM {conversations} WHERE id = %s "
            "ON CONFLICT (conversation_id, agent_id) DO UPDATE "
            "SET seen_count = excluded.seen_count, seen_at = excluded.seen_at",
            [
                agent_id,
                ConversationRead._meta.get_field("seen_at").get_db_prep_value(
                    timezone.now(), connection
                ),
                Conversation._meta.pk.get_db_prep_value(conversation_id, connection),
            ],
        )
        return cursor.rowcount > 0


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
