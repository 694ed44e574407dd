"""Assignment (README, "Triage"): whose conversation it is, Mine and Unassigned."""

import threading
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count
from django.test import Client
from django.urls import reverse

from inbox import selectors, services
from inbox.models import Assignment, Conversation
from tests import markup
from tests.conftest import T0, new_conversation
from tests.live.test_consumers import communicator, layer, received_all, run  # noqa: F401


def counted(agent) -> dict[str, int]:
    """The truth, by GROUP BY: the open conversations by assignee."""
    rows = dict(
        Conversation.objects.filter(status="OPEN").values_list("assignee_id").annotate(n=Count("*"))
    )
    return {"mine": rows.get(agent.pk, 0), "unassigned": rows.get(None, 0)}


def shown(agent) -> dict[str, int]:
    counts = selectors.conversation_counts(agent_id=agent.pk)
    return {"mine": counts.mine, "unassigned": counts.unassigned}


@pytest.fixture
def bea(django_user_model):
    return django_user_model.objects.create_user(username="bea", password="s3cret-pass-word")


@pytest.mark.django_db
def test_the_counts_follow_every_kind_of_change(agent, bea):
    ids = [uuid.uuid4() for _ in range(5)]
    for cid in ids:
        services.conversation_open(conversation_id=cid, timestamp=T0)
    assert shown(agent) == counted(agent) == {"mine": 0, "unassigned": 5}

    services.conversation_assign(conversation_id=ids[0], assignee=agent, by=agent)
    services.conversation_assign(conversation_id=ids[1], assignee=agent, by=bea)
    services.conversation_assign(conversation_id=ids[2], assignee=bea, by=bea)
    assert shown(agent) == counted(agent) == {"mine": 2, "unassigned": 2}
    services.conversation_assign(conversation_id=ids[2], assignee=agent, by=agent)  # reassigned
    services.conversation_assign(conversation_id=ids[1], assignee=None, by=agent)  # given back
    assert shown(agent) == counted(agent) == {"mine": 2, "unassigned": 3}
    assert shown(bea) == counted(bea) == {"mine": 0, "unassigned": 3}

    services.conversation_close_by_agent(conversation_id=ids[0], agent=agent)  # leaves Mine
    services.conversation_close_by_agent(conversation_id=ids[3], agent=agent)
    assert shown(agent) == counted(agent) == {"mine": 1, "unassigned": 2}
    services.conversation_reopen(conversation_id=ids[0], agent=agent)
    assert shown(agent) == counted(agent) == {"mine": 2, "unassigned": 2}

    # Outside the services: a delete, a bulk update, an agent removed.
    Conversation.objects.filter(pk=ids[4]).delete()
    Conversation.objects.filter(pk__in=ids[:2]).update(assignee=bea)
    assert shown(agent) == counted(agent)
    assert shown(bea) == counted(bea) == {"mine": 2, "unassigned": 0}
    bea.delete()
    assert shown(agent) == counted(agent) == {"mine": 1, "unassigned": 2}


@pytest.mark.django_db
def test_every_change_is_recorded_with_who_and_when(agent, bea):
    cid = uuid.uuid4()
    services.conversation_open(conversation_id=cid, timestamp=T0)
    services.conversation_assign(conversation_id=cid, assignee=bea, by=agent)
    again = services.conversation_assign(conversation_id=cid, assignee=bea, by=agent)
    assert again.result == services.Result.DUPLICATE
    services.conversation_assign(conversation_id=cid, assignee=None, by=bea)
    log = list(Assignment.objects.filter(conversation_id=cid).order_by("at", "id"))
    assert [(a.assignee_id, a.assigned_by_id) for a in log] == [(bea.pk, agent.pk), (None, bea.pk)]
    assert Conversation.objects.get(pk=cid).assigned_at == log[-1].at


@pytest.mark.django_db
def test_a_reply_hook_takes_only_a_conversation_nobody_has(agent, bea):
    cid = uuid.uuid4()
    services.conversation_open(conversation_id=cid, timestamp=T0)
    services.conversation_assign(conversation_id=cid, assignee=bea, by=bea, only_if_unassigned=True)
    services.conversation_assign(
        conversation_id=cid, assignee=agent, by=agent, only_if_unassigned=True
    )
    assert Conversation.objects.get(pk=cid).assignee == bea


@pytest.mark.django_db
def test_agents_assign_from_the_thread_and_the_tabs_filter(agent, agent_client, bea):
    mine, theirs, nobodys = (uuid.uuid4() for _ in range(3))
    for cid in (mine, theirs, nobodys):
        services.conversation_open(conversation_id=cid, timestamp=T0)
    url = reverse("inbox:conversation-assign", args=[mine])
    response = agent_client.post(url, {"assignee": "me"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "Assigned to ana" in markup.text(response.content, "conversation-assignee")
    agent_client.post(reverse("inbox:conversation-assign", args=[theirs]), {"assignee": "bea"})
    bad = agent_client.post(
        reverse("inbox:conversation-assign", args=[nobodys]), {"assignee": "zz"}
    )
    assert bad.status_code == 400

    def rows(query: str) -> set[str]:
        page = agent_client.get(f"/?{query}").content.decode()
        return {cid for cid in map(str, (mine, theirs, nobodys)) if f"conversation-{cid}" in page}

    assert rows("assignee=me") == {str(mine)}
    assert rows("assignee=none") == {str(nobodys)}
    assert rows("assignee=bea") == {str(theirs)}
    assert rows("") == {str(mine), str(theirs), str(nobodys)}
    page = agent_client.get("/").content
    assert markup.attr(page, f"conversation-{theirs}", "data-assignee") == "bea"
    assert markup.attr(page, f"conversation-{nobodys}", "data-assignee") == ""
    bea_client = Client()
    bea_client.force_login(bea)
    assert "conversation-" + str(theirs) in bea_client.get("/?assignee=me").content.decode()


@pytest.mark.django_db
def test_list_query_count_does_not_grow_with_agents(agent_client, django_assert_max_num_queries):
    for n in range(30):
        user = get_user_model().objects.create_user(username=f"agent{n}")
        cid = uuid.uuid4()
        services.conversation_open(conversation_id=cid, timestamp=T0)
        services.conversation_assign(conversation_id=cid, assignee=user, by=user)
    for query in ("", "assignee=me", "assignee=none", "assignee=agent3"):
        with django_assert_max_num_queries(6):
            agent_client.get(f"/?{query}")


@pytest.mark.django_db(transaction=True)
def test_concurrent_assignments_end_with_one_assignee(django_user_model):
    agents = [django_user_model.objects.create_user(username=f"a{n}") for n in range(8)]
    cid = uuid.uuid4()
    services.conversation_open(conversation_id=cid, timestamp=T0)
    start = threading.Barrier(len(agents))

    def take(agent) -> None:
        start.wait()
        try:
            services.conversation_assign(conversation_id=cid, assignee=agent, by=agent)
        finally:
            connection.close()

    threads = [threading.Thread(target=take, args=(a,)) for a in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    conversation = Conversation.objects.get(pk=cid)
    log = list(Assignment.objects.filter(conversation_id=cid).order_by("at", "id"))
    assert len(log) == len(agents)
    # The one assignee is the last change recorded, and the counts agree.
    assert conversation.assignee_id == log[-1].assignee_id
    assert Conversation.objects.filter(status="OPEN", assignee__isnull=False).count() == 1
    assert sum(selectors.conversation_counts(agent_id=a.pk).mine for a in agents) == 1


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
