"""Assignment: whose conversation it is (README, "Triage"). Every change is recorded."""

from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from inbox import db, live
from inbox.models import Assignment
from inbox.services.locks import conversation_locked
from inbox.services.outcome import Outcome, Result, not_found


def conversation_assign(
    *,
    conversation_id: UUID,
    assignee: AbstractBaseUser | None,
    by: AbstractBaseUser | None,
    only_if_unassigned: bool = False,
) -> Outcome:
    """Give a conversation to `assignee` (None: to nobody), as `by` asked; recorded, and
    pushed live to every inbox, where the row moves in or out of Mine and Unassigned.

    Under the conversation's row lock, so concurrent assignments end with one assignee, the
    last to commit. `only_if_unassigned` is for a reply by an agent: it takes a
    conversation nobody has, and leaves a colleague's alone.
    """
    with db.write():
        conversation = conversation_locked(conversation_id)
        if conversation is None:
            return not_found(conversation_id)
        if only_if_unassigned and conversation.assignee_id is not None:
            return Outcome(Result.DUPLICATE, f"conversation {conversation_id} is assigned")
        new_id = assignee.pk if assignee is not None else None
        if conversation.assignee_id == new_id:
            return Outcome(Result.DUPLICATE, f"conversation {conversation_id} is already theirs")
        now = timezone.now()
        conversation.assignee = assignee
        conversation.assigned_at = now
        conversation.save(update_fields=["assignee", "assigned_at"])
        Assignment.objects.create(
            conversation=conversation, assignee=assignee, assigned_by=by, at=now
        )
        live.conversation_updated(conversation.id)
    to = assignee if assignee is not None else "nobody"
    return Outcome(Result.UPDATED, f"conversation {conversation_id} assigned to {to} by {by}")
