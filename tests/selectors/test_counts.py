"""The filter tabs' counts come from a table the database keeps by trigger (migration
0004_conversation_counts): whatever changes the conversations, they stay exact."""

import pytest
from django.core.management import call_command
from django.db.models import Count

from devtools.seeding import seed
from inbox import selectors, services
from inbox.models import Conversation
from tests import factories
from tests.conftest import T0


def counted() -> dict[str, int]:
    """The truth: the conversations counted one by one."""
    by_status = dict(Conversation.objects.values_list("status").annotate(n=Count("*")))
    return {"open": by_status.get("OPEN", 0), "closed": by_status.get("CLOSED", 0)}


def shown() -> dict[str, int]:
    counts = selectors.conversation_counts()
    return {"open": counts.open, "closed": counts.closed}


@pytest.mark.django_db
def test_the_counts_follow_every_change_to_the_conversations(agent):
    ids = [factories.conversation().id for _ in range(4)]
    assert shown() == counted() == {"open": 4, "closed": 0}

    services.conversation_close(conversation_id=ids[0], timestamp=T0)
    services.conversation_close_by_agent(conversation_id=ids[1], agent=agent)
    services.conversation_close(conversation_id=ids[1], timestamp=T0)  # already closed
    assert shown() == counted() == {"open": 2, "closed": 2}

    services.conversation_reopen(conversation_id=ids[1], agent=agent)
    assert shown() == counted() == {"open": 3, "closed": 1}

    # Outside the services too: an edit in the admin, a delete, a bulk update.
    conversation = Conversation.objects.get(pk=ids[2])
    conversation.status = Conversation.Status.CLOSED
    conversation.save()
    Conversation.objects.filter(pk=ids[0]).delete()
    assert shown() == counted() == {"open": 2, "closed": 1}
    Conversation.objects.update(status=Conversation.Status.CLOSED)
    assert shown() == counted() == {"open": 0, "closed": 3}


@pytest.mark.django_db
def test_a_new_message_does_not_touch_the_counts(agent):
    factories.message(factories.conversation().id, content="Oi", at=T0)
    assert shown() == counted() == {"open": 1, "closed": 0}


@pytest.mark.django_db
def test_seeded_conversations_are_counted():
    seed(conversations=120, messages=300, open_ratio=0.25, random_seed=3)
    assert shown() == counted()
    assert sum(shown().values()) == 120


@pytest.mark.django_db(transaction=True)
def test_a_flush_empties_the_counts_with_the_conversations():
    factories.conversation()
    assert shown() == {"open": 1, "closed": 0}
    call_command("flush", interactive=False, verbosity=0)
    assert shown() == counted() == {"open": 0, "closed": 0}
    factories.conversation()
    assert shown() == counted() == {"open": 1, "closed": 0}
