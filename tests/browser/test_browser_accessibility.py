"""axe-core in Chromium on every view of the inbox, at a desktop's and a phone's size.

README "Accessibility": no violation of serious or critical impact on the login page, the
list, an open thread, a closed thread, search results and an empty search. One page walks
through every view, so each size costs one browser and one data set.
"""

import uuid
from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import Page, expect

from inbox import services
from inbox.models import Message
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BLOCKING = {"serious", "critical"}


def conversation(*, days_ago: float, messages: list[tuple[str, str]], closed: bool) -> str:
    """A conversation whose messages span two days (so its thread has day separators)."""
    start = timezone.now() - timedelta(days=days_ago)
    made = factories.conversation(
        opened_at=start,
        messages=messages,
        every=timedelta(hours=20),
        first_after=timedelta(hours=1),
        closed_at=start + timedelta(hours=20 * len(messages) + 1) if closed else None,
    )
    return str(made.id)


def blocking_violations(page: Page) -> list[str]:
    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']}: "
        + "; ".join(node["target"][0] for node in v["nodes"][:5])
        + "".join(f"\n    {node['failureSummary']}" for node in v["nodes"][:2])
        for v in results.response["violations"]
        if v["impact"] in BLOCKING
    ]


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_every_view_is_free_of_serious_accessibility_violations(
    browser, live_server, agent, width, height, settings
):
    # Replies on: the composer is enabled, and the thread below has one in each state.
    settings.PROVIDER_URL = "http://127.0.0.1:9/messages"
    open_id = conversation(
        days_ago=2,
        messages=[
            ("RECEIVED", "Olá! Quero informações sobre o plano premium."),
            ("SENT", "Oi! O premium inclui suporte 24h."),
            ("RECEIVED", "E qual é o valor mensal?"),
        ],
        closed=False,
    )
    closed_id = conversation(
        days_ago=4,
        messages=[("RECEIVED", "Obrigado pela ajuda!"), ("SENT", "Nós que agradecemos.")],
        closed=True,
    )
    replies_id = conversation(
        days_ago=1, messages=[("RECEIVED", "Meu pedido não chegou.")], closed=False
    )
    for state in ("PENDING", "SENT", "DELIVERED", "READ", "FAILED"):
        reply = services.message_reply(
            conversation_id=uuid.UUID(replies_id), content=f"Resposta {state}", agent=agent
        )
        Message.objects.filter(pk=reply.id).update(
            delivery=state, error="Número inválido" if state == "FAILED" else None
        )
    # And an internal note among them (README "Triage").
    services.note_add(
        conversation_id=uuid.UUID(replies_id), content="Cliente VIP: prioridade", agent=agent
    )
    context = browser.new_context(
        locale="en-US", viewport={"width": width, "height": height}, timezone_id="UTC"
    )
    page = context.new_page()
    found: dict[str, list[str]] = {}

    def check(view: str) -> None:
        found[view] = blocking_violations(page)

    page.goto(f"{live_server.url}/accounts/login/")
    check("login")
    page.fill("input[name=username]", "ana")
    page.fill("input[name=password]", "s3cret-pass-word")
    page.click("button[type=submit]")
    expect(page.locator(f"#conversation-{open_id}")).to_be_visible()
    # Unread to Ana: bold, with its dot (README "Triage").
    expect(page.locator(f"#conversation-{open_id} [data-unread-dot]")).to_be_visible()
    check("list")

    page.goto(f"{live_server.url}/conversations/{open_id}/")
    expect(page.locator("#messages > li[id^=message-]")).to_have_count(3)
    check("open thread")

    page.goto(f"{live_server.url}/conversations/{closed_id}/?status=closed")
    expect(page.locator("#conversation-status")).to_have_attribute("data-status", "CLOSED")
    check("closed thread")

    page.goto(f"{live_server.url}/conversations/{replies_id}/")
    expect(page.locator("#messages > li[data-delivery]")).to_have_count(5)
    expect(page.locator("#messages > li[data-note]")).to_have_count(1)
    check("thread with replies in every delivery state and a note")
    # A refused reply: the reason shows in the composer.
    page.locator("#reply-content").fill("   ")
    page.locator("#reply-content").press("Enter")
    expect(page.locator("#reply-error")).not_to_be_empty()
    check("refused reply")
    page.locator("label:has(input[name=mode][value=note])").click()
    expect(page.locator("#reply-form")).to_have_attribute("data-mode", "note")
    check("composer writing a note")

    page.goto(f"{live_server.url}/?status=all&q=premium")
    expect(page.locator("#conversation-list > li[id^=conversation-]")).to_have_count(1)
    check("search results")

    page.goto(f"{live_server.url}/?status=all&q=nada-encontrado")
    expect(page.locator("#list-empty")).to_be_visible()
    check("empty search")

    # Triage's views: Ana's replies made the replies' conversation hers.
    page.goto(f"{live_server.url}/?assignee=me")
    expect(page.locator(f"#conversation-{replies_id}")).to_be_visible()
    check("Mine")
    page.goto(f"{live_server.url}/?assignee=none")
    expect(page.locator(f"#conversation-{open_id}")).to_be_visible()
    check("Unassigned")
    page.goto(f"{live_server.url}/?sort=waiting")
    expect(page.locator(f"#conversation-{open_id}")).to_be_visible()
    check("longest waiting first")
    context.close()

    report = [f"{view}: {line}" for view, lines in found.items() for line in lines]
    assert not report, "\n".join(report)
