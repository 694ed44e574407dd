"""`POST /internal/notify/`: a worker's delivery changes, published by this server (README,
"Replies", "Live ticks"); the checks and the publishing are `inbox.live.notify`'s."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from inbox.live import notify


@csrf_exempt  # signed by the worker, not posted by a browser
@require_POST
def worker_notice(request: HttpRequest) -> JsonResponse:
    try:
        published = notify.notice_publish(
            request.body, request.headers.get(notify.SIGNATURE_HEADER, "")
        )
    except notify.InvalidNotice as refused:
        return JsonResponse({"error": str(refused)}, status=refused.status)
    return JsonResponse({"published": published}, status=202)
