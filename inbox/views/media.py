"""The Download link of a WhatsApp image, voice note, video, document or sticker.

WhatsApp keeps a customer's media; the webhook only gives its id (README, "Connect
WhatsApp"). Fetched only when an agent asks, never in the webhook's path: the Graph API
says where the file is (`GET /<media id>`, with the access token), then the file is
streamed through to the agent chunk by chunk, never held whole in memory, and cut off at
WHATSAPP_MEDIA_MAX_BYTES. Both requests are tried again on a connection error, a timeout,
429 or 5xx (three tries, 0.5 s then 1 s apart). An async view: a slow download holds no
worker thread.
"""

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from uuid import UUID

import httpx
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.translation import gettext

from inbox.models import Message
from inbox.providers import graph

TRIES = 3
BACKOFF = 0.5
CHUNK = 64 * 1024
MEDIA_KINDS = ("image", "audio", "video", "document", "sticker")


def _refusal(status: int, reason: str) -> HttpResponse:
    response = HttpResponse(reason, status=status, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


async def _tried(send: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response | str:
    """The response, retried while Graph is busy or unreachable; the last error's text."""
    error = ""
    for attempt in range(TRIES):
        if attempt:
            await asyncio.sleep(BACKOFF * 2 ** (attempt - 1))
        try:
            response = await send()
        except httpx.TransportError as exc:
            error = f"connection error: {exc!r}"
            continue
        if response.status_code == 429 or response.status_code >= 500:
            error = f"{response.status_code}"
            await response.aclose()
            continue
        return response
    return error


def _filename(message: Message, mime_type: str) -> str:
    name = (message.attachment or {}).get("filename") or ""
    # Only what every browser and header parser reads the same way.
    name = re.sub(r"[^A-Za-z0-9._ -]", "_", name).strip(" .")[:100]
    if not name:
        extension = mime_type.split("/")[-1].split(";")[0] if "/" in mime_type else "bin"
        name = f"{message.kind}-{message.id}.{re.sub(r'[^a-z0-9]', '', extension) or 'bin'}"
    return name


async def message_media(
    request: HttpRequest, conversation_id: str, message_id: str
) -> HttpResponse:
    user = await request.auser()
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if request.method not in ("GET", "HEAD"):
        response = _refusal(405, gettext("Only GET downloads a file."))
        response["Allow"] = "GET"
        return response
    try:
        conversation, ident = UUID(conversation_id), UUID(message_id)
    except ValueError:
        return _refusal(404, gettext("No such message."))
    message = await Message.objects.filter(pk=ident, conversation_id=conversation).afirst()
    media_id = ((message.attachment or {}).get("media_id") if message else None) or ""
    if message is None or message.kind not in MEDIA_KINDS or not media_id:
        return _refusal(404, gettext("This message has no file to download."))
    if not settings.WHATSAPP_ACCESS_TOKEN:
        return _refusal(409, gettext("WhatsApp is not configured (WHATSAPP_ACCESS_TOKEN)."))

    limit = settings.WHATSAPP_MEDIA_MAX_BYTES
    client = httpx.AsyncClient(timeout=settings.PROVIDER_TIMEOUT, headers=graph.headers())
    streaming = False
    try:
        found = await _tried(lambda: client.get(graph.media_url(media_id)))
        if isinstance(found, str):
            return _refusal(502, gettext("WhatsApp did not answer: %s") % found)
        if found.status_code != 200:
            # 400/404: Meta no longer has it (media is kept for a limited time).
            return _refusal(
                404, gettext("WhatsApp no longer has this file (%s).") % found.status_code
            )
        try:
            meta = found.json()
            url = meta["url"]
            size = int(meta.get("file_size") or 0)
        except (ValueError, KeyError, TypeError):
            return _refusal(502, gettext("WhatsApp's answer named no file."))
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            return _refusal(502, gettext("WhatsApp's answer named no file."))
        if size > limit:
            return _refusal(413, gettext("The file is larger than %d bytes.") % limit)
        file = await _tried(lambda: client.send(client.build_request("GET", url), stream=True))
        if isinstance(file, str):
            return _refusal(502, gettext("WhatsApp did not hand over the file: %s") % file)
        if file.status_code != 200:
            await file.aclose()
            return _refusal(
                404, gettext("WhatsApp no longer has this file (%s).") % file.status_code
            )
        declared = file.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            await file.aclose()
            return _refusal(413, gettext("The file is larger than %d bytes.") % limit)
        mime_type = str(meta.get("mime_type") or file.headers.get("Content-Type") or "")
        mime_type = mime_type if re.fullmatch(r"[\w.+-]+/[\w.+-]+", mime_type) else ""

        async def chunks() -> AsyncIterator[bytes]:
            sent = 0
            try:
                async for chunk in file.aiter_bytes(CHUNK):
                    sent += len(chunk)
                    if sent > limit:
                        # Past the limit that no header announced: stop here. The
                        # browser sees a cut download, never a file past the limit.
                        return
                    yield chunk
            finally:
                await file.aclose()
                await client.aclose()

        response = StreamingHttpResponse(
            chunks(), content_type=mime_type or "application/octet-stream"
        )
        # Always a download, never rendered in our origin (an SVG or HTML "image").
        response["Content-Disposition"] = f'attachment; filename="{_filename(message, mime_type)}"'
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, no-store"
        if declared.isdigit():
            response["Content-Length"] = declared
        streaming = True
        return response
    finally:
        if not streaming:
            await client.aclose()
