"""The providers' doors: one webhook view per provider (`POST /webhook/`: the generic one).

What every door shares lives here: the method, the content type, the body limit, the
signature, the delivery log, and a 503 when the store cannot take the delivery. A view
adds only its provider's parsing (`inbox.providers`) and hands the commands to the
services. Every answer is JSON that names the problem, and every authenticated delivery is
written to the delivery log.
"""

import hashlib
import hmac
import logging
from collections.abc import Callable
from uuid import UUID

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from inbox import db, writer
from inbox.models import WebhookDelivery
from inbox.providers import whatsapp
from inbox.providers.generic import Event, InvalidEvent, event_parse
from inbox.services import Outcome, Result, command_apply
from inbox.services.whatsapp import whatsapp_message_id

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
# A form is never an event. Refused by name, unread: the server does not parse form bodies
# either (README, "Connections, limits and shutdown").
FORM_TYPES = {"multipart/form-data", "application/x-www-form-urlencoded"}

_STATUS = {
    Result.CREATED: 201,
    Result.CLOSED: 200,
    Result.DUPLICATE: 200,
    Result.CONFLICT: 409,
    Result.NOT_FOUND: 404,
    Result.HELD: 202,
    Result.UPDATED: 200,
}


def _error(status: int, error: str, detail: str, **extra: object) -> JsonResponse:
    return JsonResponse({"error": error, "detail": detail, **extra}, status=status)


def _read_body(request: HttpRequest, limit: int) -> bytes | None:
    """The raw body, or None when it is larger than `limit` bytes.

    Read from the stream rather than `request.body`, whose own size check answers with
    Django's generic 400 instead of our 413.
    """
    declared = request.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = request.read(limit + 1)
    return None if len(body) > limit else body


def _signature_valid(body: bytes, header: str, secret: str) -> bool:
    """Hex is hex in either case (some providers send upper case), compared in constant
    time; lowering the header costs the same whatever the secret."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().lower().encode())


def _body_or_refusal(request: HttpRequest, *, secret: str) -> bytes | JsonResponse:
    """The authenticated raw body of a POST, or the answer refusing the request.

    Checked cheapest first, and nothing is read that is refused unread: the method, the
    content type, the size (before the rest arrives), then the signature when `secret`
    is set.
    """
    if request.method != "POST":
        response = _error(
            405, "method_not_allowed", f"{request.method} is not allowed; POST one event"
        )
        response["Allow"] = "POST"
        return response

    if request.content_type in FORM_TYPES:
        logger.warning("webhook: refused a %s body (events are JSON)", request.content_type)
        return _error(
            400,
            "unsupported_content_type",
            f"the body is {request.content_type}; post one JSON event (application/json)",
            content_type=request.content_type,
        )

    body = _read_body(request, settings.WEBHOOK_MAX_BYTES)
    if body is None:
        return _error(
            413,
            "payload_too_large",
            f"the body is larger than WEBHOOK_MAX_BYTES ({settings.WEBHOOK_MAX_BYTES} bytes)",
        )

    if secret:
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not signature:
            return _error(401, "signature_missing", f"the {SIGNATURE_HEADER} header is missing")
        if not _signature_valid(body, signature, secret):
            return _error(
                401,
                "signature_invalid",
                f"{SIGNATURE_HEADER} is not sha256=<hex HMAC-SHA256 of the body>",
            )
    return body


def _unless_store_unavailable(deliver: Callable[[], JsonResponse]) -> JsonResponse:
    try:
        return deliver()
    except (OperationalError, InterfaceError):
        # The store is unreachable or locked: nothing was written, so tell the provider to
        # come back rather than pretend (2xx) or crash (500).
        logger.exception("webhook: the database refused the delivery")
        response = _error(
            503, "store_unavailable", "the event could not be stored now; retry later"
        )
        response["Retry-After"] = "5"
        return response


def _log_delivery(body: bytes, events: list[Event], status: int, outcome: str, detail: str) -> None:
    """One row per request, whatever number of events its body carried (`item_count`)."""
    first = events[0] if events else None
    WebhookDelivery.objects.create(
        # The raw bytes as text; NUL is escaped because PostgreSQL's text cannot hold it.
        body=body.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00"),
        event_type=first.type if first else "",
        event_id=first.data.id if first else None,
        item_count=len(events),
        status_code=status,
        outcome=outcome,
        # An error message can quote the input, NUL included (pydantic's "found `\x00`").
        detail=detail.replace("\x00", "\\x00"),
    )


@csrf_exempt
def webhook(request: HttpRequest) -> JsonResponse:
    """The generic provider: one JSON event per POST (README, "The webhook")."""
    body = _body_or_refusal(request, secret=settings.WEBHOOK_SECRET)
    if isinstance(body, JsonResponse):
        return body
    return _unless_store_unavailable(lambda: _generic_deliver(body))


def _generic_deliver(body: bytes) -> JsonResponse:
    try:
        event = event_parse(body)
    except InvalidEvent as exc:
        problem = str(exc)
        writer.apply(lambda: _log_delivery(body, [], 400, "invalid", problem))
        return _error(
            400,
            "invalid_event",
            str(exc),
            errors=[{"field": e.field, "message": e.message} for e in exc.errors],
        )

    def store() -> tuple[Outcome, int]:
        outcome = command_apply(command=event.command())
        status = _STATUS[outcome.result]
        _log_delivery(body, [event], status, outcome.result, outcome.detail)
        return outcome, status

    # The event and its log line commit together: a delivery the store could not take is
    # answered 503 with nothing half-written, and the provider's retry starts clean. On
    # SQLite it commits with the deliveries that arrived meanwhile (inbox/writer.py).
    outcome, status = writer.apply(store)
    if status >= 400:
        return _error(status, outcome.result, outcome.detail)
    return JsonResponse({"result": outcome.result, "detail": outcome.detail}, status=status)


def _whatsapp_verify(request: HttpRequest) -> HttpResponse:
    """Meta's verification handshake: echo hub.challenge, as plain text, to the one who
    knows WHATSAPP_VERIFY_TOKEN (compared in constant time); 403 to anyone else."""
    token = settings.WHATSAPP_VERIFY_TOKEN
    mode = request.GET.get("hub.mode", "")
    given = request.GET.get("hub.verify_token", "")
    challenge = request.GET.get("hub.challenge")
    if not token:
        return HttpResponse(
            "WHATSAPP_VERIFY_TOKEN is not set", status=403, content_type="text/plain"
        )
    if mode != "subscribe" or challenge is None:
        return HttpResponse(
            "hub.mode=subscribe and hub.challenge are required",
            status=403,
            content_type="text/plain",
        )
    if not hmac.compare_digest(given.encode(), token.encode()):
        return HttpResponse("hub.verify_token is wrong", status=403, content_type="text/plain")
    return HttpResponse(challenge, content_type="text/plain; charset=utf-8")


@csrf_exempt
def whatsapp_webhook(request: HttpRequest) -> HttpResponse:
    """WhatsApp Business Cloud API: the verification GET, and Meta's signed envelopes
    (README, "Connect WhatsApp")."""
    if request.method == "GET":
        return _whatsapp_verify(request)
    if not settings.WHATSAPP_APP_SECRET:
        # Nothing can be authenticated, so nothing is taken.
        return _error(404, "whatsapp_off", "the WhatsApp channel is off (WHATSAPP_APP_SECRET)")
    body = _body_or_refusal(request, secret=settings.WHATSAPP_APP_SECRET)
    if isinstance(body, JsonResponse):
        return body
    return _unless_store_unavailable(lambda: _whatsapp_deliver(body))


def _whatsapp_log(
    body: bytes, count: int, status: int, outcome: str, detail: str, first: UUID | None
) -> None:
    """The delivery log's row for one envelope; `detail` has a line per item."""
    WebhookDelivery.objects.create(
        body=body.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00"),
        event_type="whatsapp",
        event_id=first,
        item_count=count,
        status_code=status,
        outcome=outcome,
        detail=detail.replace("\x00", "\\x00"),
    )


def _whatsapp_deliver(body: bytes) -> JsonResponse:
    try:
        items = whatsapp.envelope_parse(body)
    except InvalidEvent as exc:
        with db.write(atomic=False):
            _whatsapp_log(body, 0, 400, "invalid", str(exc), None)
        return _error(
            400,
            "invalid_envelope",
            str(exc),
            errors=[{"field": e.field, "message": e.message} for e in exc.errors],
        )
    answers = []
    # One transaction per item, then the log line: a transaction holding every customer's
    # locks of a batch could deadlock with another batch naming them in another order (on
    # PostgreSQL). A store that fails midway answers 503 (unless_store_unavailable); Meta's
    # retry redoes the body, and the items already stored are duplicates by their wamids.
    for item in items:
        if item.command is None:
            answers.append({"item": item.where, "result": "ignored", "detail": item.note})
            continue
        with db.write():
            outcome = command_apply(command=item.command)
        answers.append(
            {"item": item.where, "result": str(outcome.result), "detail": outcome.detail}
        )
    first = next((i.command.wamid for i in items if i.command is not None), None)
    with db.write(atomic=False):
        _whatsapp_log(
            body,
            len(items),
            200,
            "accepted",
            "\n".join(f"{a['item']}: {a['result']}: {a['detail']}" for a in answers),
            whatsapp_message_id(first) if first else None,
        )
    # Always 200 once stored: Meta retries anything else for days, and a conflict would
    # not change on a retry. What happened to each item is in the answer and the log.
    return JsonResponse({"result": "accepted", "items": answers})
