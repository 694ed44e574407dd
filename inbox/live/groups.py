"""Who a push is for: the groups' names, and which of them have a socket in them.

Three kinds of group:

- `AGENTS_GROUP`: every agent's socket. Gets list rows; each consumer shows or hides a row
  according to the filter and search its page is looking at.
- `conversation_group(id)`: the sockets viewing that thread. Gets message bubbles and the
  thread's header, so traffic grows with what agents look at, not with everything that happens.
- `session_group(key)`: the sockets opened under one login session, closed when it logs out.
- `user_group(id)`: the sockets opened by one agent, told to check their session when the
  account changes.

A fragment is rendered only for a group with a socket in it (`listened`): most threads have
no viewer, and with no agent online a webhook renders nothing.
"""

from collections.abc import Sequence
from uuid import UUID

from channels.layers import BaseChannelLayer, InMemoryChannelLayer

from inbox.channel_layer import InboxChannelLayer

AGENTS_GROUP = "inbox.agents"


def conversation_group(conversation_id: UUID | str) -> str:
    return f"inbox.conversation.{conversation_id}"


def session_group(session_key: str) -> str:
    """The sockets opened under one login session (session keys are [a-z0-9]+)."""
    return f"inbox.session.{session_key}"


def user_group(user_id: int | str) -> str:
    """The sockets opened by one agent, under any of its sessions."""
    return f"inbox.user.{user_id}"


async def listened(layer: BaseChannelLayer, groups: Sequence[str]) -> set[str]:
    """The groups with at least one socket in them. A layer this cannot ask (another
    back-end) counts as listened to: the push is then only wasted."""
    if isinstance(layer, InMemoryChannelLayer):
        return {group for group in groups if layer.groups.get(group)}
    if isinstance(layer, InboxChannelLayer):
        return await layer.groups_with_members(groups)
    return set(groups)
