"""Meta's Graph API, what the WhatsApp channel calls: /messages to send, /<media id> to fetch.

The base URL is WHATSAPP_GRAPH_URL (tests and the demo point it at a stub on 127.0.0.1);
every call carries the access token as a bearer token. Errors come back as Graph's
`{"error": {"code", "message", "error_data": {"details"}}}`, turned here into a reason an
agent can read (`delivery_reason`) and a verdict: retry, or fail now.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings
from django.utils.translation import gettext, gettext_lazy

# Graph's codes that mean "not now": throttling, or Meta's side briefly broken. Retried with
# the reply pipeline's backoff; every other 4xx is final.
RETRYABLE_CODES = {1, 2, 4, 17, 341, 80007, 130429, 131000, 131016, 131056, 133004}

# The codes an agent meets, in words (README, "Connect WhatsApp", Meta's error-code page).
REASONS = {
    131047: gettext_lazy(
        "More than 24 hours have passed since the customer last wrote: WhatsApp only "
        "delivers an approved template now."
    ),
    131026: gettext_lazy(
        "WhatsApp could not deliver it: the number may not be on WhatsApp, or the "
        "customer's app is too old."
    ),
    131049: gettext_lazy("Meta chose not to deliver this marketing message to this customer."),
    131050: gettext_lazy("The customer has stopped marketing messages from this business."),
    131051: gettext_lazy("WhatsApp does not support this type of message."),
    131052: gettext_lazy("The customer's media could not be downloaded."),
    131053: gettext_lazy("The media could not be uploaded to WhatsApp."),
    131056: gettext_lazy("Too many messages to this customer in a short time; wait and retry."),
    130429: gettext_lazy("WhatsApp's rate limit for this number was reached; wait and retry."),
    131021: gettext_lazy("The business number cannot message itself."),
    131031: gettext_lazy("The business account is locked by Meta."),
    131042: gettext_lazy("The business account has a payment problem."),
    132000: gettext_lazy("The template's parameters do not match its approved text."),
    132001: gettext_lazy("The template does not exist in that language, or is not approved."),
    132015: gettext_lazy("The template is paused for low quality."),
    132016: gettext_lazy("The template is disabled for low quality."),
    190: gettext_lazy(
        "The WhatsApp access token has expired or is invalid (WHATSAPP_ACCESS_TOKEN)."
    ),
    100: gettext_lazy("WhatsApp refused a parameter of the request."),
    368: gettext_lazy("The business number is temporarily blocked for policy violations."),
}
_CODE = re.compile(r"^WhatsApp error (\d+)")


def delivery_reason(error: str | None) -> str:
    """A stored error as the failed bubble says it: the code's meaning in the agent's
    language, then what WhatsApp said. Other providers' errors are shown as they are."""
    if not error:
        return ""
    match = _CODE.match(error)
    if match is None:
        return error
    reason = REASONS.get(int(match.group(1)))
    return f"{reason} ({error})" if reason else error


def configured() -> bool:
    """Whether replies can go out: a token and the number to send from."""
    return bool(settings.WHATSAPP_ACCESS_TOKEN and settings.WHATSAPP_PHONE_NUMBER_ID)


def _base() -> str:
    return f"{settings.WHATSAPP_GRAPH_URL.rstrip('/')}/{settings.WHATSAPP_API_VERSION}"


def headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.WHATSAPP_ACCESS_TOKEN}"}


def messages_url() -> str:
    return f"{_base()}/{settings.WHATSAPP_PHONE_NUMBER_ID}/messages"


def media_url(media_id: str) -> str:
    return f"{_base()}/{media_id}"


def text_body(*, to: str, text: str) -> dict[str, Any]:
    """A text message (Meta's "Send messages": type text)."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"preview_url": False, "body": text},
    }


def template_body(*, to: str, name: str, language: str, parameters: list[str]) -> dict[str, Any]:
    """A template message: the body's {{1}}, {{2}}, ... filled in order."""
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    if parameters:
        template["components"] = [
            {"type": "body", "parameters": [{"type": "text", "text": p} for p in parameters]}
        ]
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": template,
    }


@dataclass(frozen=True)
class Sent:
    """What one POST to /messages came to."""

    outcome: str  # sent, retry, failed
    status_code: int | None
    error: str
    wamid: str | None = None


def graph_error(response: httpx.Response) -> tuple[int | None, str]:
    """Graph's error code and our stored text for it (`WhatsApp error <code>: ...`)."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict) or not isinstance(error.get("code"), int):
        return None, f"{response.status_code}: {response.text}"
    details = (
        (error.get("error_data") or {}).get("details")
        if isinstance(error.get("error_data"), dict)
        else None
    )
    text = f"WhatsApp error {error['code']}: {error.get('message', '')}"
    if details:
        text += f" ({details})"
    return error["code"], text


def message_send(body: dict[str, Any], *, timeout: float) -> Sent:
    """POST one message; the wamid of a message Graph took."""
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    try:
        response = httpx.post(
            messages_url(),
            content=content,
            headers={**headers(), "Content-Type": "application/json"},
            timeout=timeout,
        )
    except httpx.TimeoutException as exc:
        return Sent("retry", None, f"timeout after {timeout} s: {exc!r}")
    except httpx.TransportError as exc:
        return Sent("retry", None, f"connection error: {exc!r}")
    status = response.status_code
    if 200 <= status < 300:
        try:
            wamid = response.json()["messages"][0]["id"]
        except (ValueError, KeyError, IndexError, TypeError):
            wamid = None
        if not isinstance(wamid, str) or not 0 < len(wamid) <= 128:
            # Taken, by the status, but with no id its statuses could never find it.
            return Sent("sent", status, gettext("WhatsApp answered without a message id."))
        return Sent("sent", status, "", wamid)
    code, error = graph_error(response)
    if status == 429 or status >= 500 or code in RETRYABLE_CODES:
        return Sent("retry", status, error)
    return Sent("failed", status, error)
