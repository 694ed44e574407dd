"""Triage through the socket (README, "Triage"): assignment moves rows between agents' tabs
live, and each agent's socket tells their own unread."""

import uuid

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from inbox import services
from inbox.models import ConversationRead
from tests import markup
from tests.conftest import new_conversation, new_message
from tests.live.test_consumers import communicator, layer, received_all, run  # noqa: F401


@pytest.fixture
def bea(django_user_model):
    return django_user_model.objects.create_user(username="bea", password="s3cret-pass-word")


def cookie_of(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def pushed_row(seen: str, conversation_id: uuid.UUID):
    """The row a push swaps in, as the agent's page gets it (None if it was not pushed)."""
    rows = markup.parse(seen).select(f'li[id="conversation-{conversation_id}"]')
    return rows[-1] if rows else None


@pytest.mark.django_db(transaction=True)
def test_an_assignment_moves_the_row_out_of_the_other_agents_unassigned_tab(
    layer,  # noqa: F811
    agent,
    bea,
    post_event,
):
    ident = uuid.uuid4()
    post_event(new_conversation(ident))
    bea_client = Client()
    bea_client.force_login(bea)
    cookie = bea_client.cookies["sessionid"].value

    async def scenario():
        unassigned = communicator("assignee=none", cookie=cookie)
        mine = communicator("assignee=me", cookie=cookie)
        for socket in (unassigned, mine):
            assert (await socket.connect())[0]
        outcome = await sync_to_async(services.conversation_assign)(
            conversation_id=ident, assignee=agent, by=agent
        )
        assert outcome.result == services.Result.UPDATED
        seen = await received_all(unassigned)
        assert f'id="conversation-{ident}" hx-swap-oob="delete"' in seen
        assert 'data-assignee="ana"' not in seen
        # Not Bea's: her Mine tab is told to drop it too (it never had it).
        assert 'data-assignee="ana"' not in await received_all(mine)
        await sync_to_async(services.conversation_assign)(
            conversation_id=ident, assignee=bea, by=agent
        )
        seen = await received_all(mine)
        assert 'data-assignee="bea"' in seen
        for socket in (unassigned, mine):
            await socket.disconnect()

    run(scenario)


@pytest.mark.django_db(transaction=True)
def test_a_pushed_row_is_unread_to_the_agent_not_looking_and_read_by_the_one_who_is(
    layer,  # noqa: F811
    agent,
    bea,
    post_event,
):
    ident = uuid.uuid4()
    post_event(new_conversation(ident))

    async def scenario():
        on_list = communicator(cookie=await sync_to_async(cookie_of)(agent))
        in_thread = communicator(
            f"conversation={ident}", cookie=await sync_to_async(cookie_of)(bea)
        )
        for socket in (on_list, in_thread):
            assert (await socket.connect())[0]
        assert (await sync_to_async(post_event)(new_message(ident))).status_code == 201
        assert pushed_row(await received_all(on_list), ident)["data-unread"] == "true"
        assert pushed_row(await received_all(in_thread), ident)["data-unread"] == "false"
        # Bea's socket read it for her: her next page load says so too; Ana's is unread.
        reads = await sync_to_async(
            lambda: dict(ConversationRead.objects.values_list("agent_id", "seen_count"))
        )()
        assert reads == {bea.pk: 1}

        # Ana opens it; a change that is not a message leaves her row read.
        await sync_to_async(services.conversation_read)(conversation_id=ident, agent_id=agent.pk)
        await sync_to_async(services.conversation_assign)(
            conversation_id=ident, assignee=bea, by=bea
        )
        assert pushed_row(await received_all(on_list), ident)["data-unread"] == "false"
        for socket in (on_list, in_thread):
            await socket.disconnect()

    run(scenario)
