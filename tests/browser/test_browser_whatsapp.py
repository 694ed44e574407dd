"""A WhatsApp customer in Debian's Chromium, end to end (README, "Connect WhatsApp"): a real
server and worker, the stand-in Graph API of the demo on 127.0.0.1.

A customer's messages (Meta's documented payloads: a text, then a photo) arrive through the
signed webhook and appear live with the customer's name; the agent replies with Enter; the
stand-in Graph API takes it and its statuses turn the ticks; the photo's Download link hands
over the file; the thread passes axe at a desktop's and a phone's size. Redis carries the
worker's changes to the page, as in tests/browser/test_browser_replies.py.
"""

import json
import random
import uuid
from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from devtools.whatsapp import DEMO_IMAGE, DEMO_MEDIA_ID, DemoGraph
from inbox.models import Conversation, WhatsAppTemplate
from tests import whatsapp_payloads as wa
from tests.browser.test_browser_live import log_in
from tests.browser.test_browser_replies import LIVE
from tests.browser.test_browser_replies import worker as worker  # a fixture, used by name
from tests.conftest import free_port

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TOKEN = "browser-access-token"


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_a_whatsapp_customer_is_answered_and_the_ticks_turn(
    browser,
    serve,
    worker,
    agent_client,
    redis_url,
    width,
    height,
):
    graph_url = f"http://127.0.0.1:{free_port()}"
    env = {
        "WHATSAPP_APP_SECRET": wa.APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": "browser-verify",
        "WHATSAPP_ACCESS_TOKEN": TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
        "WHATSAPP_GRAPH_URL": graph_url,
        "REDIS_URL": redis_url,
        "CHANNEL_LAYER_PREFIX": f"test-{uuid.uuid4().hex[:8]}",
    }
    server = serve(**env)
    worker(**env)
    deliver = wa.poster(server.url)
    graph = DemoGraph(
        url=graph_url,
        token=TOKEN,
        deliver=deliver,
        rng=random.Random(2),
        delays=(0.3, 0.8, 1.5, 60.0),
        answer=False,
    )
    graph.start()
    try:
        context = browser.new_context(locale="en-US", viewport={"width": width, "height": height})
        page = context.new_page()
        log_in(page, server.url, agent_client)
        page.goto(f"{server.url}/")
        expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=LIVE)

        now = wa.ts(timezone.now(), -5)
        assert (
            deliver(
                wa.text("wamid.BROWSER1", "Oi! Vocês têm em azul?", name="Sheena Nelson", at=now)
            )
            == 200
        )
        conversation = Conversation.objects.get()
        row = page.locator(f"#conversation-{conversation.id}")
        expect(row).to_contain_text("Sheena Nelson", timeout=LIVE)
        expect(row).to_contain_text("Oi! Vocês têm em azul?")
        image = dict(wa.IMAGE, id=DEMO_MEDIA_ID, mime_type="image/png")
        assert (
            deliver(
                wa.envelope(
                    wa.value(
                        contacts=[wa.contact()],
                        messages=[
                            wa.message("wamid.BROWSER2", "image", image=image, at=f"{int(now) + 1}")
                        ],
                    )
                )
            )
            == 200
        )
        expect(row).to_contain_text("Image: Is this the model?", timeout=LIVE)
        page.goto(f"{server.url}/conversations/{conversation.id}/")
        bubbles = page.locator("#messages > li[data-direction=RECEIVED]")
        expect(bubbles).to_have_count(2, timeout=LIVE)
        photo = bubbles.nth(1)
        expect(photo.locator("[data-kind-label]")).to_contain_text("Image")
        expect(photo).to_contain_text("Is this the model?")
        expect(page.locator("#whatsapp-window")).to_have_attribute("data-window", "open")

        # The Download link hands over the file WhatsApp holds, through the server.
        with page.expect_download() as download:
            photo.get_by_role("link", name="Download").click()
        with open(download.value.path(), "rb") as file:
            assert file.read() == DEMO_IMAGE

        box = page.locator("#reply-content")
        box.click()
        box.type("Temos sim! <b>Azul</b> e verde.")
        box.press("Enter")
        expect(box).to_have_value("", timeout=LIVE)
        reply = page.locator("#messages > li[data-direction=SENT]")
        expect(reply).to_have_count(1, timeout=LIVE)
        expect(reply.locator("p")).to_have_text("Temos sim! <b>Azul</b> e verde.")
        # WhatsApp's own ticks: sent, delivered, read, as the stand-in reports them.
        for state in ("SENT", "DELIVERED", "READ"):
            expect(reply).to_have_attribute("data-delivery", state, timeout=LIVE)
        assert graph.sent[0]["to"] == "16505551234"
        assert graph.sent[0]["text"]["body"] == "Temos sim! <b>Azul</b> e verde."

        results = Axe().run(page)
        blocking = [
            f"{v['id']}: {v['help']}"
            for v in results.response["violations"]
            if v["impact"] in {"serious", "critical"}
        ]
        assert not blocking, blocking
        context.close()
    finally:
        graph.stop()


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_after_the_window_the_agent_sends_a_template_from_the_composer(
    browser, live_server, agent, settings, width, height
):
    settings.WHATSAPP_APP_SECRET = wa.APP_SECRET
    settings.WHATSAPP_ACCESS_TOKEN = TOKEN
    settings.WHATSAPP_PHONE_NUMBER_ID = "106540352242922"
    settings.WHATSAPP_GRAPH_URL = "http://127.0.0.1:9"  # nothing is delivered here
    WhatsAppTemplate.objects.create(
        name="follow_up",
        language="pt_BR",
        body="Olá {{1}}, ainda precisa de ajuda?",
        parameters="Nome",
    )
    two_days_ago = wa.ts(timezone.now() - timedelta(days=2))
    raw = json.dumps(wa.text("wamid.OLD", "Vocês abrem sábado?", at=two_days_ago)).encode()
    Client().post(
        "/webhook/whatsapp/",
        raw,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=wa.sign(raw),
    )
    conversation = Conversation.objects.get()

    context = browser.new_context(locale="en-US", viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "ana")
    page.fill("input[name=password]", "s3cret-pass-word")
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/conversations/{conversation.id}/")
    expect(page.locator("#reply-content")).to_be_disabled()
    expect(page.locator("#reply-help")).to_contain_text("24-hour window has closed")
    expect(page.locator("#whatsapp-window")).to_have_attribute("data-window", "closed")
    results = Axe().run(page)
    blocking = [
        f"{v['id']}: {v['help']}"
        for v in results.response["violations"]
        if v["impact"] in {"serious", "critical"}
    ]
    assert not blocking, blocking

    page.get_by_label("Nome").fill("Sheena")
    page.get_by_role("button", name="Send template follow_up").click()
    sent = page.locator("#messages > li[data-direction=SENT]")
    expect(sent).to_have_count(1, timeout=LIVE)
    expect(sent).to_contain_text("Olá Sheena, ainda precisa de ajuda?")
    expect(sent.locator("[data-kind=template]")).to_have_count(1)
    context.close()
