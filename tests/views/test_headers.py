"""The security headers every answer carries (README "Headers and content security policy").

A strict Content-Security-Policy (no inline script or style, no eval, no framing), a
Permissions-Policy that turns off the browser features the inbox never uses, and
`Cache-Control: no-store` so that no logged-in page, API answer or htmx fragment is kept by
the browser or a shared cache. The probes and the static files are the exceptions.
"""

import copy
import json
import os
import re
import subprocess
import sys
import uuid

import pytest
from django.contrib.staticfiles import finders
from django.test import Client, override_settings

from tests.conftest import new_conversation, new_message

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    parsed = {}
    for part in header.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


def assert_strict_policy(response, *, host: str = "testserver") -> None:
    policy = directives(response)
    assert policy["default-src"] == ["'self'"]
    scripts = policy["script-src"]
    assert "'self'" in scripts
    assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"} & set(scripts)
    assert policy["style-src"] == ["'self'"]
    # 'self' covers ws: and wss: only in browsers that follow CSP level 3: the host's own
    # socket origins are named.
    assert set(policy["connect-src"]) == {"'self'", f"ws://{host}", f"wss://{host}"}
    assert policy["img-src"] == ["'self'", "data:"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert "report-uri" not in policy


def assert_private(response) -> None:
    assert "no-store" in response["Cache-Control"]
    permissions = response["Permissions-Policy"]
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in permissions


@pytest.fixture
def conversation(post_event) -> uuid.UUID:
    ident = uuid.uuid4()
    post_event(new_conversation(ident, ts=0))
    post_event(new_message(ident, ts=1))
    return ident


def test_pages_carry_a_strict_policy_with_a_fresh_nonce_on_every_script(agent_client, conversation):
    nonces = []
    for _ in range(2):
        response = agent_client.get(f"/conversations/{conversation}/")
        assert response.status_code == 200
        assert_strict_policy(response)
        assert_private(response)
        [nonce] = [s for s in directives(response)["script-src"] if s.startswith("'nonce-")]
        nonce = nonce.removeprefix("'nonce-").removesuffix("'")
        html = response.content.decode()
        scripts = re.findall(r"<script\b[^>]*>", html)
        assert scripts, "the page loads its scripts"
        assert all(f'nonce="{nonce}"' in tag for tag in scripts), scripts
        # No inline script or style, nor handlers in attributes: the policy would block them.
        assert not re.search(r"<script\b(?![^>]*\bsrc=)[^>]*>", html)
        assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=|\shx-on", html)
        nonces.append(nonce)
    assert nonces[0] != nonces[1]


def test_htmx_is_told_never_to_eval_nor_inject_styles(agent_client):
    html = agent_client.get("/").content.decode()
    [config] = re.findall(r'<meta name="htmx-config" content=\'([^\']*)\'>', html)
    config = json.loads(config)
    assert config["allowEval"] is False
    assert config["includeIndicatorStyles"] is False
    assert config["allowScriptTags"] is False


def test_htmx_answers_and_the_api_carry_the_headers(agent_client, conversation):
    answers = [
        agent_client.get(
            "/conversations/", {"status": "all"}, headers={"HX-Target": "list-results", **HTMX}
        ),
        agent_client.get(
            f"/conversations/{conversation}/", headers={"HX-Target": "thread-pane", **HTMX}
        ),
        agent_client.post(f"/conversations/{conversation}/close/", headers=HTMX),
        agent_client.get("/api/conversations/"),
        agent_client.get(f"/api/conversations/{conversation}/"),
    ]
    for response in answers:
        assert response.status_code == 200, response
        assert_strict_policy(response)
        assert_private(response)


def test_the_login_page_the_webhook_and_errors_carry_the_headers(client, post_event):
    login = client.get("/accounts/login/")
    assert login.status_code == 200
    webhook = post_event(new_conversation(uuid.uuid4()))
    assert webhook.status_code == 201
    refused = post_event(b"{not json")
    assert refused.status_code == 400
    for response in (login, webhook, refused, client.get("/", follow=False)):
        assert_strict_policy(response)
        assert_private(response)


def test_a_page_that_is_not_found_carries_the_headers(agent_client):
    response = agent_client.get(f"/conversations/{uuid.uuid4()}/")
    assert response.status_code == 404
    assert_strict_policy(response)
    assert_private(response)


def test_the_socket_origins_follow_the_host_and_its_scheme(agent):
    client = Client(HTTP_HOST="localhost:8000")
    client.force_login(agent)
    assert_strict_policy(client.get("/"), host="localhost:8000")


@override_settings(WHITENOISE_USE_FINDERS=True)
def test_the_liveness_probe_and_static_files_are_left_cacheable():
    # /readyz says no-store itself; neither probe needs the middleware's work. WhiteNoise
    # serves from the finders here, as under DEBUG (a Client builds its middleware anew).
    client = Client()
    assert finders.find("inbox/live.js")
    assert "no-store" not in client.get("/healthz").get("Cache-Control", "")
    static = client.get("/static/inbox/live.js")
    assert static.status_code == 200
    assert "no-store" not in static.get("Cache-Control", "")


def test_csp_report_uri_adds_the_report_uri_directive(client):
    from django.conf import settings

    read = "import django; django.setup(); from django.conf import settings as s; import json; "
    read += "print(json.dumps(s.CONTENT_SECURITY_POLICY['DIRECTIVES'].get('report-uri')))"
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings"}
    environment["CSP_REPORT_URI"] = "https://reports.example/csp"
    configured = subprocess.run(  # noqa: S603
        [sys.executable, "-c", read],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        check=True,
        text=True,
    )
    report_uri = json.loads(configured.stdout)
    assert report_uri == "https://reports.example/csp"
    policy = copy.deepcopy(settings.CONTENT_SECURITY_POLICY)
    policy["DIRECTIVES"]["report-uri"] = report_uri
    with override_settings(CONTENT_SECURITY_POLICY=policy):
        response = client.get("/accounts/login/")
    assert directives(response)["report-uri"] == ["https://reports.example/csp"]
