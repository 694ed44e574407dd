"""The one table from a command's type to the service that applies it."""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inbox import db
from inbox.commands import (
    AddMessage,
    CloseConversation,
    Command,
    OpenConversation,
    ReceiveWhatsAppMessage,
    SetMessageStatus,
    SetWhatsAppStatus,
)
from inbox.services.conversations import conversation_close, conversation_open
from inbox.services.delivery import message_status_apply
from inbox.services.held import held_close_hold, held_message_hold
from inbox.services.locks import conversation_key_lock
from inbox.services.messages import message_add
from inbox.services.outcome import Outcome, Result
from inbox.services.whatsapp import whatsapp_message_receive, whatsapp_status_apply


@dataclass(frozen=True)
class _Route:
    # Called with the command's fields as keyword arguments.
    service: Callable[..., Outcome]
    # How to hold it while its conversation has not arrived; None: it never waits.
    hold: Callable[..., Outcome] | None = None


_ROUTES: dict[type[Any], _Route] = {
    OpenConversation: _Route(conversation_open),
    AddMessage: _Route(message_add, hold=held_message_hold),
    CloseConversation: _Route(conversation_close, hold=held_close_hold),
    # Waits for its message, not a conversation: the service holds it itself, keyed by the
    # message id (a status names no conversation).
    SetMessageStatus: _Route(message_status_apply),
    # WhatsApp names customers, not conversations: a message never waits for one (it
    # opens one), and a status waits for its wamid inside the service.
    ReceiveWhatsAppMessage: _Route(whatsapp_message_receive),
    SetWhatsAppStatus: _Route(whatsapp_status_apply),
}


def _service_call(route: _Route, command: Command) -> Outcome:
    fields = {f.name: getattr(command, f.name) for f in dataclasses.fields(command)}
    return route.service(**fields)


def command_apply(*, command: Command) -> Outcome:
    """Apply one command from a provider; one for a conversation not yet here is held."""
    route = _ROUTES[type(command)]
    if route.hold is None:
        return _service_call(route, command)
    with db.write():
        # Held under the conversation's key, so the conversation cannot be created and
        # drained between "it does not exist" and "the command is held".
        conversation_key_lock(command.conversation_id)
        outcome = _service_call(route, command)
        if outcome.result == Result.NOT_FOUND:
            return route.hold(command=command)
        return outcome


def command_apply_waiting(*, command: Command) -> Outcome:
    """Apply a held command to its conversation, which has just arrived (never held again)."""
    return _service_call(_ROUTES[type(command)], command)
