"""The locks the writes take, always in this order: conversation key, row, message key."""

from uuid import UUID

from inbox import db
from inbox.models import Conversation


def conversation_locked(conversation_id: UUID) -> Conversation | None:
    """The conversation's row, locked until the transaction ends; None if it does not exist."""
    return Conversation.objects.select_for_update().filter(pk=conversation_id).first()


def conversation_key_lock(conversation_id: UUID) -> None:
    """Serialise every write that concerns one conversation id, even before its row exists.

    Without it, on PostgreSQL an event could be held just as its conversation is created
    and drained, and wait forever.
    """
    db.key_lock(conversation_id)


def message_key_lock(message_id: UUID) -> None:
    """Serialise storing and holding one message id, which may name two conversations.

    Taken after the conversation's key (never before), so two writers cannot deadlock:
    each transaction takes one conversation key at most. Without it, one id delivered to
    a known and an unknown conversation at once could be both stored and held.
    """
    db.key_lock(message_id)
