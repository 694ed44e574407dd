"""Every write to the conversation store. Each is one transaction (`inbox.db.write`) and
idempotent, and takes domain commands (`inbox.commands`), never a provider's wire format.

Idempotency is an insert on the provider's primary key, with the integrity error caught:
never check-then-insert, so concurrent deliveries of one event leave exactly one row. The
conversation's row is locked first (`select_for_update`), which serialises writes to one
conversation and keeps its counters and last-activity time exact.

Providers deliver out of order: a command for a conversation that does not exist yet is
held (`held.py`) and applied, in timestamp order, when its conversation is opened.
"""

from inbox.services.assignment import conversation_assign
from inbox.services.contacts import contact_rename
from inbox.services.conversations import (
    conversation_close,
    conversation_close_by_agent,
    conversation_open,
    conversation_reopen,
)
from inbox.services.dispatch import command_apply
from inbox.services.held import held_events_report_overdue
from inbox.services.messages import message_add
from inbox.services.outbox import ReplyRefused, message_reply, message_retry
from inbox.services.outcome import Outcome, Result

__all__ = [
    "Outcome",
    "ReplyRefused",
    "Result",
    "command_apply",
    "contact_rename",
    "conversation_assign",
    "conversation_close",
    "conversation_close_by_agent",
    "conversation_open",
    "conversation_reopen",
    "held_events_report_overdue",
    "message_add",
    "message_reply",
    "message_retry",
]
