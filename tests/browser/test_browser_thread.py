"""The thread in Debian's Chromium (issue 12): opened from a search at the matching message,
a compact header on a phone, day labels that never cover the text, and pushed bubbles
headed by their day as a full load heads them."""

import uuid
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from inbox.models import Conversation, Message
from tests import factories
from tests.browser.test_browser_accessibility import blocking_violations
from tests.browser.test_browser_live import LIVE, log_in, post
from tests.conftest import T0, new_conversation, new_message

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def long_thread(size: int, match_at: int, *, every: timedelta = timedelta(minutes=7)):
    """A thread of `size` messages over several days, one of them the search's match."""
    conversation = factories.conversation(opened_at=T0)
    Message.objects.bulk_create(
        Message(
            id=uuid.uuid4(),
            conversation=conversation,
            direction="RECEIVED" if n % 2 == 0 else "SENT",
            content="Quero o REEMBOLSO do pedido 4417, por favor"
            if n == match_at
            else f"mensagem número {n} sobre o pedido",
            timestamp=T0 + every * (n + 1),
        )
        for n in range(size)
    )
    # Written in bulk, so the conversation's own fields as the services keep them.
    last = Message.objects.filter(conversation=conversation).latest("timestamp")
    Conversation.objects.filter(pk=conversation.pk).update(
        message_count=size,
        last_message=last,
        last_message_at=last.timestamp,
        last_activity_at=last.timestamp,
    )
    return conversation, Message.objects.get(conversation=conversation, content__contains="REEMB")


def in_view(page: Page, selector: str) -> bool:
    """Whether the element is inside the thread's visible scroll area."""
    return page.evaluate(
        """(selector) => {
          const el = document.querySelector(selector);
          const box = document.querySelector('.thread-scroll').getBoundingClientRect();
          const r = el.getBoundingClientRect();
          return r.top >= box.top && r.bottom <= box.bottom;
        }""",
        selector,
    )


def test_a_search_result_opens_its_thread_at_the_match_and_pages_both_ways(
    page: Page, serve, agent_client
):
    conversation, hit = long_thread(400, match_at=150)
    server = serve()
    log_in(page, server.url, agent_client)
    page.goto(f"{server.url}/?status=all&q=reembolso")
    row = page.locator(f"#conversation-{conversation.id}")
    # The row says why it matched: the matching message, its word marked.
    expect(row.locator("mark")).to_have_text("REEMBOLSO")
    row.locator("a").click()
    match = page.locator(f"#message-{hit.id}")
    expect(match).to_be_visible()
    expect(match.locator("mark")).to_have_text("REEMBOLSO")
    assert in_view(page, f"#message-{hit.id}")
    # Only the thread scrolled to it: the page itself (its top bar) stays where it was.
    assert page.evaluate("document.scrollingElement.scrollTop") == 0
    assert page.locator("#messages > li[id^=message-]").count() == 50
    assert "at=" in page.url
    # Scrolling down loads the later messages up to the thread's end, each once.
    scroller = page.locator(".thread-scroll")
    last = Message.objects.filter(conversation=conversation).latest("timestamp")
    for _ in range(40):
        if page.locator(f"#message-{last.id}").count():
            break
        # The thread is a reversed column: its bottom is scrollTop 0.
        scroller.evaluate("el => { el.scrollTop = 0; }")
        page.wait_for_timeout(300)
    expect(page.locator(f"#message-{last.id}")).to_be_attached(timeout=LIVE)
    ids = page.locator("#messages > li[id^=message-]").evaluate_all("els => els.map(e => e.id)")
    assert len(ids) == len(set(ids))
    # ...and scrolling up the earlier ones, keyset paging both ways from the window.
    first = Message.objects.filter(conversation=conversation).earliest("timestamp")
    for _ in range(40):
        if page.locator(f"#message-{first.id}").count():
            break
        scroller.evaluate("el => { el.scrollTop = -el.scrollHeight; }")
        page.wait_for_timeout(300)
    expect(page.locator(f"#message-{first.id}")).to_be_attached(timeout=LIVE)
    ids = page.locator("#messages > li[id^=message-]").evaluate_all("els => els.map(e => e.id)")
    assert len(ids) == 400 == len(set(ids))
    # One separator per day, each just before that day's first message.
    assert days_in_order(page) == days_of_a_fresh_load(page, server.url, conversation.id)


DAYS = """
() => [...document.querySelectorAll('#messages > li')].filter(
  (li) => li.classList.contains('day-separator') || li.id.startsWith('message-')
).map((li) => li.id.startsWith('message-') ? 'm' : 'day:' + li.textContent.trim())
 .join(' ').replace(/(m )+/g, 'm… ').replace(/( m)+$/, ' m…')
"""


def days_in_order(page: Page) -> str:
    """The thread read as its day labels between runs of messages."""
    return page.evaluate(DAYS)


def days_of_a_fresh_load(page: Page, url: str, conversation_id) -> str:
    fresh = page.context.new_page()
    fresh.goto(f"{url}/conversations/{conversation_id}/?status=all")
    # Everything, to compare with a thread paged both ways.
    for _ in range(40):
        if not fresh.locator("#messages-earlier").count():
            break
        fresh.locator(".thread-scroll").evaluate("el => { el.scrollTop = -el.scrollHeight; }")
        fresh.wait_for_timeout(300)
    seen = days_in_order(fresh)
    fresh.close()
    return seen


@pytest.mark.parametrize("language", ["en-US", "pt-BR"])
def test_the_phone_header_is_compact_and_shows_the_whole_id(
    browser, serve, agent_client, language, tmp_path
):
    context = browser.new_context(locale=language, viewport=PHONE)
    page = context.new_page()
    conversation, _ = long_thread(1234, match_at=3)
    server = serve()
    log_in(page, server.url, agent_client)
    page.goto(f"{server.url}/conversations/{conversation.id}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE)
    header = page.locator("#conversation-header").bounding_box()
    # A back arrow, the id and its count on two lines, the state and the button: no taller
    # than two lines of text, where it used to wrap over five (270 px).
    assert header is not None and header["height"] <= 72, header
    title = page.locator("#thread-title")
    assert title.evaluate("el => el.scrollWidth <= el.clientWidth"), "the id is cut"
    line = page.locator("#thread-meta")
    assert line.evaluate("el => el.getBoundingClientRect().height") < 20, "the count wraps"
    assert line.evaluate("el => el.scrollWidth <= el.clientWidth"), "the count is cut"
    expect(line).to_contain_text("1234 messages" if language == "en-US" else "1234 mensagens")
    assert page.evaluate("document.documentElement.scrollWidth") == PHONE["width"]
    page.screenshot(path=tmp_path / f"phone-header-{language}.png")
    context.close()


OVERLAPS = """
() => {
  const texts = [...document.querySelectorAll('#messages > li[id^=message-] p')];
  const overlapping = [];
  document.querySelectorAll('#messages > .day-separator h2').forEach((label) => {
    const a = label.getBoundingClientRect();
    texts.forEach((p) => {
      const b = p.getBoundingClientRect();
      if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) {
        overlapping.push(label.textContent.trim() + ' over ' + p.textContent.slice(0, 30));
      }
    });
  });
  return overlapping;
}
"""


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_day_label_never_covers_the_text_of_a_message(page: Page, serve, agent_client, viewport):
    page.set_viewport_size(viewport)
    # 120 messages four hours apart: twenty days, five or six bubbles each.
    conversation, _ = long_thread(120, match_at=0, every=timedelta(hours=4))
    server = serve()
    log_in(page, server.url, agent_client)
    page.goto(f"{server.url}/conversations/{conversation.id}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE)
    scroller = page.locator(".thread-scroll")
    height = scroller.evaluate("el => el.scrollHeight - el.clientHeight")
    # Scrolled by every amount that could put a label over a bubble (column-reverse: up is
    # negative).
    for offset in range(0, height, 37):
        scroller.evaluate("(el, y) => { el.scrollTop = -y; }", offset)
        assert page.evaluate(OVERLAPS) == [], offset
    assert blocking_violations(page) == []


def test_a_pushed_bubble_on_a_new_day_brings_its_day_label_once(page: Page, serve, agent_client):
    ident = uuid.uuid4()
    server = serve()
    assert post(server.url, new_conversation(ident, ts=0)) == 201
    assert post(server.url, new_message(ident, ts=60, content="primeiro dia")) == 201
    log_in(page, server.url, agent_client)
    page.goto(f"{server.url}/conversations/{ident}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE)
    assert page.locator("#messages > .day-separator").count() == 1
    day = 86_400
    # Two bubbles the next day, one the day after, and a late one back on the first day.
    for ts, text in [(day, "segundo dia"), (day + 60, "ainda o segundo"), (2 * day, "terceiro")]:
        assert post(server.url, new_message(ident, ts=ts, content=text)) == 201
        expect(page.locator("#messages > li").last).to_contain_text(text, timeout=LIVE)
    assert post(server.url, new_message(ident, ts=120, content="atrasada")) == 201
    expect(page.locator("#messages")).to_contain_text("atrasada", timeout=LIVE)
    expect(page.locator("#messages > .day-separator")).to_have_count(3)
    pushed = days_in_order(page)
    assert pushed == days_of_a_fresh_load(page, server.url, ident)
    assert pushed.count("day:") == 3 and pushed.startswith("day:")
    assert blocking_violations(page) == []
