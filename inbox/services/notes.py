"""Internal notes (README, "Triage"): what agents write to each other in a thread.

A note is stored and pushed to the thread's viewers, and that is all: no delivery job, no
message count, no preview, no waiting or unread change. So it is allowed where a reply is
not: on a closed conversation, and with no provider configured.
"""

from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from django.utils.translation import gettext as _

from inbox import db, live
from inbox.models import Conversation, Note
from inbox.services.outbox import ReplyRefused, content_check


def note_add(*, conversation_id: UUID, content: str, agent: AbstractBaseUser) -> Note:
    """Store an agent's note on a conversation and push it to the thread's viewers.

    Raises `ReplyRefused` (the composer's refusal, nothing stored) for blank content, more
    than 4,096 characters, a NUL character (400) or an unknown conversation (404).
    """
    content_check(content, kind="note")
    latest = (
        Conversation.objects.filter(pk=conversation_id)
        .values_list("last_activity_at", flat=True)
        .first()
    )
    if latest is None:
        raise ReplyRefused(_("Conversation %(id)s does not exist.") % {"id": conversation_id}, 404)
    # Written after what the agent sees: placed after the thread's newest message even when
    # the provider's clock runs ahead of ours (its timestamps are the messages' order).
    created_at = max(timezone.now(), latest)
    # No row lock: a note changes nothing of the conversation's own state, so it need not
    # wait for a webhook writing to the same conversation (conversations are never deleted).
    with db.write():
        note = Note.objects.create(
            conversation_id=conversation_id, author=agent, content=content, created_at=created_at
        )
        live.note_added(note.id, conversation_id)
    return note
