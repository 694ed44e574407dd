"""Contacts: who a conversation is with (README, "Triage"). One contact per phone number."""

import unicodedata
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from inbox import db, live
from inbox.models import Contact, Conversation
from inbox.services.locks import conversation_locked
from inbox.services.outcome import Outcome, Result, not_found

MAX_NAME_LENGTH = 200


def name_fold(text: str) -> str:
    """A name as the search box compares it: accents and case dropped, as the message index
    drops them (`José` is found by `jose`)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def contact_for(*, name: str, phone: str | None) -> Contact | None:
    """The contact a new conversation is with: the one of that phone when there is one (its
    name filled in if it had none, never replaced: an agent may have corrected it), else a new
    one. None when the provider said nothing about them. Inside the caller's transaction."""
    if not name and not phone:
        return None
    if phone is not None:
        existing = Contact.objects.filter(phone=phone).first()
        if existing is None:
            try:
                # A savepoint: two first conversations of one number may race to create it.
                with transaction.atomic():
                    return Contact.objects.create(
                        name=name, phone=phone, name_folded=name_fold(name)
                    )
            except IntegrityError:
                existing = Contact.objects.get(phone=phone)
        if name and not existing.name:
            existing.name, existing.name_folded = name, name_fold(name)
            existing.save(update_fields=["name", "name_folded"])
        return existing
    return Contact.objects.create(name=name, phone=None, name_folded=name_fold(name))


def contact_rename(*, conversation_id: UUID, name: str, agent: AbstractBaseUser) -> Outcome:
    """An agent corrects the name of a conversation's contact (creating the contact if the
    provider gave none); every conversation with that contact shows the new name, live."""
    name = " ".join(name.split())[:MAX_NAME_LENGTH]
    with db.write():
        conversation = conversation_locked(conversation_id)
        if conversation is None:
            return not_found(conversation_id)
        contact = conversation.contact
        if contact is None:
            if not name:
                return Outcome(Result.DUPLICATE, f"conversation {conversation_id} has no contact")
            contact = Contact.objects.create(name=name, name_folded=name_fold(name))
            conversation.contact = contact
            conversation.save(update_fields=["contact"])
        elif contact.name == name:
            return Outcome(Result.DUPLICATE, f"the contact is already named {name!r}")
        else:
            contact.name, contact.name_folded = name, name_fold(name)
            contact.save(update_fields=["name", "name_folded"])
        ids = Conversation.objects.filter(contact=contact).values_list("id", flat=True)
        for ident in ids:
            live.conversation_updated(ident)
    return Outcome(
        Result.UPDATED, f"contact of conversation {conversation_id} named {name!r} by {agent}"
    )
