"""Replies: an agent's message to the customer, stored with its delivery job (README, "Replies").

A transactional outbox: the message (`direction SENT`, `delivery PENDING`) and the job that
delivers it (`inbox.tasks.reply_deliver`, a row in django-tasks-db's table) are written in
one transaction, so a job exists if and only if the reply does. The worker then posts it to
the provider, and every state change after that goes through `message_delivery_set`.
"""

import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from inbox import db, live
from inbox.models import Conversation, Delivery, Direction, Message, WhatsAppTemplate
from inbox.selectors.whatsapp import whatsapp_window_closes
from inbox.services.assignment import conversation_assign
from inbox.services.locks import conversation_locked
from inbox.services.messages import message_counted

# WhatsApp's limit on a text message.
MAX_REPLY_LENGTH = 4096


class ReplyRefused(Exception):
    """A reply the service will not store, with the reason to show the agent (in the
    language active when it was raised: the agent's, in a request) and the HTTP
    status that says it: 400 the content is wrong (blank, too long), 404 no such
    conversation or message, 409 the state forbids it (a CLOSED conversation, no provider
    configured, a retry of a reply that has not FAILED)."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def _provider_configured(conversation: Conversation | None = None) -> None:
    if conversation is not None and conversation.channel == "whatsapp":
        if not (settings.WHATSAPP_ACCESS_TOKEN and settings.WHATSAPP_PHONE_NUMBER_ID):
            raise ReplyRefused(
                _(
                    "Replies are off: WhatsApp is not configured "
                    "(WHATSAPP_ACCESS_TOKEN, WHATSAPP_PHONE_NUMBER_ID)."
                ),
                409,
            )
        return
    if not settings.PROVIDER_URL:
        raise ReplyRefused(_("Replies are off: no provider is configured (PROVIDER_URL)."), 409)


def _window_open(conversation: Conversation) -> None:
    closes = whatsapp_window_closes(conversation)
    if closes is None or closes <= timezone.now():
        raise ReplyRefused(
            _(
                "WhatsApp's 24-hour window has closed: the customer last wrote more than 24 "
                "hours ago, and WhatsApp only delivers an approved template now. Send one of "
                "the templates below."
            ),
            409,
        )


def _delivery_enqueue(*, message_id: uuid.UUID, since: datetime) -> None:
    """Queue the reply's delivery, in the caller's transaction (django-tasks-db writes the
    job as a row through the same connection, so it commits or rolls back with the reply)."""
    # Imported here: tasks.py imports the services it calls.
    from inbox.tasks import reply_deliver

    reply_deliver.enqueue(message_id=str(message_id), since=since.isoformat())


def message_reply(*, conversation_id: uuid.UUID, content: str, agent: AbstractBaseUser) -> Message:
    """Store an agent's reply and queue its delivery, in one transaction.

    Raises `ReplyRefused` (nothing stored) for blank content, more than 4,096 characters,
    an unknown (404) or CLOSED (409) conversation, or no provider configured (409).
    """
    # No provider is the first refusal, before the content's: nothing typed could go out.
    _provider_configured(Conversation.objects.filter(pk=conversation_id).first())
    content_check(content)
    return _reply_store(conversation_id=conversation_id, content=content, agent=agent)


# What the composer refuses in what an agent typed, a reply's or a note's words: whole
# sentences each, as translators need them.
_REFUSALS = {
    "reply": (
        gettext_lazy("A reply cannot be blank."),
        gettext_lazy("A reply is at most %(limit)d characters; this one has %(length)d."),
        gettext_lazy("A reply cannot contain a NUL character."),
    ),
    "note": (
        gettext_lazy("A note cannot be blank."),
        gettext_lazy("A note is at most %(limit)d characters; this one has %(length)d."),
        gettext_lazy("A note cannot contain a NUL character."),
    ),
}


def content_check(content: str, *, kind: str = "reply") -> None:
    """Raise `ReplyRefused` (400) for blank content, more than 4,096 characters, or a NUL
    (what the webhook refuses too, and PostgreSQL's text cannot hold)."""
    blank, too_long, nul = _REFUSALS[kind]
    if not content.strip():
        raise ReplyRefused(str(blank), 400)
    if len(content) > MAX_REPLY_LENGTH:
        raise ReplyRefused(str(too_long) % {"limit": MAX_REPLY_LENGTH, "length": len(content)}, 400)
    if "\x00" in content:
        raise ReplyRefused(str(nul), 400)


def _reply_store(
    *,
    conversation_id: uuid.UUID,
    content: str,
    agent: AbstractBaseUser,
    kind: str = "text",
    attachment: dict[str, Any] | None = None,
) -> Message:
    # A savepoint: a refusal raises out of it, and must not doom a caller's transaction.
    with db.write(savepoint=True):
        conversation = conversation_locked(conversation_id)
        if conversation is None:
            _provider_configured()
            raise ReplyRefused(
                _("Conversation %(id)s does not exist.") % {"id": conversation_id}, 404
            )
        _provider_configured(conversation)
        if conversation.status == Conversation.Status.CLOSED:
            raise ReplyRefused(_("This conversation is closed: reopen it to reply."), 409)
        if conversation.channel == "whatsapp" and kind != "template":
            _window_open(conversation)
        now = timezone.now()
        message = Message.objects.create(
            id=uuid.uuid4(),
            conversation=conversation,
            direction=Direction.SENT,
            content=content,
            timestamp=now,
            delivery=Delivery.PENDING,
            sent_by=agent,
            kind=kind,
            attachment=attachment,
        )
        message_counted(conversation, message)
        _delivery_enqueue(message_id=message.id, since=now)
        live.message_added(message.id, conversation.id)
        # Whoever answers a conversation nobody has takes it, so a colleague sees it is
        # handled; a colleague's stays theirs (README, "Triage").
        conversation_assign(
            conversation_id=conversation.id, assignee=agent, by=agent, only_if_unassigned=True
        )
    return message


def message_template_send(
    *,
    conversation_id: uuid.UUID,
    template_id: int,
    parameters: list[str],
    agent: AbstractBaseUser,
) -> Message:
    """Send one of the business's approved WhatsApp templates (allowed whatever the
    24-hour window says), stored and delivered as a reply.

    Raises `ReplyRefused`: 404 no such template or conversation, 400 a parameter blank or
    missing, 409 not a WhatsApp conversation, CLOSED, or WhatsApp not configured.
    """
    template = WhatsAppTemplate.objects.filter(pk=template_id).first()
    if template is None:
        raise ReplyRefused(_("Template %(id)s does not exist.") % {"id": template_id}, 404)
    values = [" ".join(p.split()) for p in parameters]
    labels = template.parameter_labels
    if len(values) != len(labels) or any(not v for v in values):
        raise ReplyRefused(
            _("Template %(name)s needs a value for each of: %(labels)s.")
            % {"name": template.name, "labels": ", ".join(labels)},
            400,
        )
    if any("\x00" in v for v in values):
        raise ReplyRefused(_("A template parameter cannot contain a NUL character."), 400)
    found = (
        Conversation.objects.filter(pk=conversation_id).values_list("channel", flat=True).first()
    )
    if found is not None and found != "whatsapp":
        raise ReplyRefused(_("Templates are for WhatsApp conversations only."), 409)
    return _reply_store(
        conversation_id=conversation_id,
        content=template.rendered(values),
        agent=agent,
        kind="template",
        attachment={"template": template.name, "language": template.language, "parameters": values},
    )


def message_retry(*, message_id: uuid.UUID, agent: AbstractBaseUser) -> Message:
    """Send a FAILED reply again: the same id (the provider dedupes on it), back to PENDING,
    with a new delivery job whose PROVIDER_RETRY_FOR window starts now.

    Raises `ReplyRefused`: 404 no such message, 409 not a FAILED reply of ours, a CLOSED
    conversation, or no provider configured.
    """
    with db.write(savepoint=True):
        found = Message.objects.filter(pk=message_id).values_list("conversation_id").first()
        if found is None:
            _provider_configured()
            raise ReplyRefused(_("Message %(id)s does not exist.") % {"id": message_id}, 404)
        conversation = conversation_locked(found[0])
        _provider_configured(conversation)
        message = Message.objects.get(pk=message_id)
        if message.direction != Direction.SENT or message.delivery != Delivery.FAILED:
            raise ReplyRefused(_("Only a reply that failed can be sent again."), 409)
        if conversation is not None and conversation.status == Conversation.Status.CLOSED:
            raise ReplyRefused(_("This conversation is closed: reopen it to reply."), 409)
        message.delivery = Delivery.PENDING
        message.error = None
        message.save(update_fields=["delivery", "error"])
        _delivery_enqueue(message_id=message.id, since=timezone.now())
        live.message_added(message.id, message.conversation_id)
    return message
