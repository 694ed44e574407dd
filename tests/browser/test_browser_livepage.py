"""The live page never lies (issue 12), in Debian's Chromium against a real server process.

While events stream in, everything the page shows that depends on a conversation's state
(the tabs' counts, the rows, the open thread's header, bubbles and placeholder) ends up as a
fresh load of the same URL shows it; and the list stays still under the agent's pointer,
holding its updates behind a "N new updates" bar.
"""

import time
import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_browser_live import LIVE, log_in, post
from tests.conftest import WAIT_LIMIT, close_conversation, new_conversation, new_message

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What the agent reads, times left out (a fresh load renders "now" a moment later).
SNAPSHOT = """
() => {
  const text = (el) => {
    if (!el) return null;
    const copy = el.cloneNode(true);
    copy.querySelectorAll("time").forEach((t) => t.remove());
    return copy.textContent.replace(/\\s+/g, " ").trim();
  };
  const empty = document.getElementById("messages-empty");
  return {
    tabs: [...document.querySelectorAll("[id^=tab-count-]")].map((e) => e.id + "=" + text(e)),
    rows: [...document.querySelectorAll("#conversation-list > li")].map(
      (li) => li.id + " " + li.dataset.status + " " + text(li)
    ),
    header: text(document.getElementById("conversation-header")),
    bubbles: [...document.querySelectorAll("#messages > [id^=message-]")].map(
      (li) => li.id + " " + text(li)
    ),
    placeholder: empty ? empty.checkVisibility() : null,
  };
}
"""


def snapshot(page: Page) -> dict:
    return page.evaluate(SNAPSHOT)


def settles_to(page: Page, expected: dict) -> dict:
    """The page's snapshot once it equals `expected`, or the last one after WAIT_LIMIT."""
    deadline = time.monotonic() + WAIT_LIMIT
    seen = snapshot(page)
    while seen != expected and time.monotonic() < deadline:
        page.wait_for_timeout(100)
        seen = snapshot(page)
    return seen


def row_ids(page: Page) -> list[str]:
    return page.locator("#conversation-list > li").evaluate_all("rows => rows.map(r => r.id)")


def test_a_streamed_page_reads_as_a_fresh_load(page: Page, serve, agent_client):
    server = serve()
    opened = uuid.uuid4()
    others = [uuid.uuid4() for _ in range(4)]
    assert post(server.url, new_conversation(opened, ts=0)) == 201
    for n, ident in enumerate(others, start=1):
        assert post(server.url, new_conversation(ident, ts=n)) == 201
    log_in(page, server.url, agent_client)
    page.goto(f"{server.url}/conversations/{opened}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE)
    expect(page.locator("#messages-empty")).to_be_visible()
    expect(page.locator("#conversation-header")).to_contain_text("0 messages")
    # The pointer away from the list: nothing is held back in this test.
    page.mouse.move(1200, 880)

    # Fifty mixed events: new conversations, messages into the open thread and others,
    # closes (and a message into the open thread after it reopens).
    ts = 10
    open_ones, closed = list(others), []
    for n in range(50):
        ts += 1
        if n % 10 == 0:
            ident = uuid.uuid4()
            open_ones.append(ident)
            assert post(server.url, new_conversation(ident, ts=ts)) == 201
        elif n % 10 in (1, 4, 7):
            direction = "SENT" if n % 2 else "RECEIVED"
            event = new_message(opened, ts=ts, direction=direction, content=f"Mensagem {n}")
            assert post(server.url, event) == 201
        elif n % 10 == 9:
            closed.append(open_ones.pop(0))
            assert post(server.url, close_conversation(closed[-1], ts=ts)) == 200
        else:
            target = open_ones[n % len(open_ones)]
            assert post(server.url, new_message(target, ts=ts, content=f"Outra {n}")) == 201
    # The placeholder went away with the first live message; the header counts them all.
    expect(page.locator("#messages-empty")).to_be_hidden(timeout=LIVE)
    expect(page.locator("#conversation-header")).to_contain_text("15 messages", timeout=LIVE)

    fresh = page.context.new_page()
    fresh.goto(page.url)
    expected = snapshot(fresh)
    assert expected["placeholder"] is False
    assert settles_to(page, expected) == expected

    # Closed and reopened from the page: still one state everywhere.
    page.get_by_role("button", name="Close").click()
    expect(page.locator("#conversation-status")).to_have_attribute("data-status", "CLOSED")
    page.get_by_role("button", name="Reopen").click()
    expect(page.locator("#conversation-status")).to_have_attribute("data-status", "OPEN")
    ts += 1
    assert post(server.url, new_message(opened, ts=ts + 3600, content="De volta")) == 201
    expect(page.locator("#conversation-header")).to_contain_text("16 messages", timeout=LIVE)
    fresh.reload()
    expected = snapshot(fresh)
    assert settles_to(page, expected) == expected


def test_the_list_stays_still_under_the_pointer(page: Page, serve, agent_client):
    server = serve()
    idents = [uuid.uuid4() for _ in range(6)]
    for n, ident in enumerate(idents):
        assert post(server.url, new_conversation(ident, ts=n)) == 201
    log_in(page, server.url, agent_client)
    page.goto(f"{server.url}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE)
    before = row_ids(page)
    bar = page.locator("#list-updates")
    expect(bar).to_be_hidden()

    # The agent's pointer rests on the third row; the bottom two conversations get messages.
    page.locator("#conversation-list > li").nth(2).hover()
    for ts, ident in ((100, idents[0]), (101, idents[1]), (102, idents[0])):
        assert post(server.url, new_message(ident, ts=ts)) == 201
    expect(bar).to_have_text("2 new updates", timeout=LIVE)
    assert row_ids(page) == before, "rows moved under the pointer"
    # Counts wait with the rows: a new conversation is held too.
    assert post(server.url, new_conversation(uuid.uuid4(), ts=103)) == 201
    expect(bar).to_have_text("3 new updates", timeout=LIVE)
    assert row_ids(page) == before
    assert page.locator("#tab-count-open").text_content().strip() == "6"

    bar.click()
    expect(bar).to_be_hidden()
    fresh = page.context.new_page()
    fresh.goto(f"{server.url}/")
    assert row_ids(page) == row_ids(fresh)
    assert page.locator("#tab-count-open").text_content().strip() == "7"

    # Held again while the pointer is on the list, applied as soon as it leaves.
    page.locator("#conversation-list > li").nth(3).hover()
    assert post(server.url, new_message(idents[3], ts=200)) == 201
    expect(bar).to_have_text("1 new update", timeout=LIVE)
    page.mouse.move(1200, 880)
    expect(bar).to_be_hidden(timeout=LIVE)
    expect(page.locator("#conversation-list > li").first).to_have_id(f"conversation-{idents[3]}")


def test_a_scrolled_list_holds_its_updates_until_back_at_the_top(page: Page, serve, agent_client):
    server = serve()
    idents = [uuid.uuid4() for _ in range(30)]
    for n, ident in enumerate(idents):
        assert post(server.url, new_conversation(ident, ts=n)) == 201
    log_in(page, server.url, agent_client)
    page.goto(f"{server.url}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE)
    page.mouse.move(1200, 880)
    page.locator("#list-scroll").evaluate("el => { el.scrollTop = 300; }")
    before = row_ids(page)
    assert post(server.url, new_message(idents[0], ts=100)) == 201
    bar = page.locator("#list-updates")
    expect(bar).to_have_text("1 new update", timeout=LIVE)
    assert row_ids(page) == before
    page.locator("#list-scroll").evaluate("el => { el.scrollTop = 0; }")
    expect(bar).to_be_hidden(timeout=LIVE)
    expect(page.locator("#conversation-list > li").first).to_have_id(f"conversation-{idents[0]}")


@pytest.mark.parametrize("language", ["en", "pt-br"])
def test_a_time_reads_the_same_on_a_load_an_htmx_answer_and_a_push(
    page: Page, serve, agent_client, language
):
    server = serve()
    viewed, other, pushed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for n, ident in enumerate((viewed, other)):
        assert post(server.url, new_conversation(ident, ts=n)) == 201
    assert post(server.url, new_message(viewed, ts=2)) == 201  # under the day's separator
    log_in(page, server.url, agent_client)
    page.context.add_cookies([{"name": "django_language", "value": language, "url": server.url}])
    page.goto(f"{server.url}/conversations/{viewed}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE)
    assert post(server.url, new_message(viewed, ts=3, message_id=pushed)) == 201
    bubble_time = page.locator(f"#message-{pushed} time")
    expect(bubble_time).to_be_visible(timeout=LIVE)

    def times() -> list[str]:
        # The bubble's, the day separator's and the header's "Started" time.
        return [
            bubble_time.inner_text(),
            page.locator("#messages .day-separator time").first.inner_text(),
            page.locator("#conversation-header time").first.inner_text(),
        ]

    page.wait_for_timeout(300)  # the push's refetch-free render settles
    by_push = times()
    page.reload()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE)
    assert times()[0] == by_push[0]
    by_load = times()
    # An htmx answer: another thread, then back to this one from the list.
    page.locator(f"#conversation-{other} a").click()
    expect(page.locator("#conversation-thread")).to_have_attribute(
        "data-conversation-id", str(other)
    )
    page.locator(f"#conversation-{viewed} a").click()
    expect(page.locator("#conversation-thread")).to_have_attribute(
        "data-conversation-id", str(viewed)
    )
    page.wait_for_timeout(500)  # the socket follows and refetches what the page shows
    assert times() == by_load
