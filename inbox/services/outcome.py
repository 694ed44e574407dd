"""What a write did, in words the webhook turns into its answer (README, "The webhook")."""

import enum
from dataclasses import dataclass
from uuid import UUID


class Result(enum.StrEnum):
    CREATED = "created"
    CLOSED = "closed"
    REOPENED = "reopened"
    # A detail changed (a contact renamed, an assignment), or a message's delivery state
    # moved forward (MESSAGE_STATUS, an echo of our reply).
    UPDATED = "updated"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    NOT_FOUND = "not_found"
    HELD = "held"


@dataclass(frozen=True)
class Outcome:
    result: Result
    detail: str


def not_found(conversation_id: UUID) -> Outcome:
    return Outcome(Result.NOT_FOUND, f"conversation {conversation_id} does not exist")
