from urllib.parse import parse_qs

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.chatops.interactions import slack_interaction_handle
from apps.chatops.payloads import MalformedPayload
from apps.chatops.slack import slack_config, slack_missing_settings, slack_request_problem

# Slack's largest interaction payloads (a submitted dialog with its blocks) are tens of KB.
MAX_BODY_BYTES = 1024 * 1024


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message, "status": status}, status=status)


@csrf_exempt  # Slack cannot send a CSRF token; the request signature authenticates it instead.
@require_POST
def slack_interactions(request: HttpRequest) -> HttpResponse:
    """Slack's interactivity Request URL: button clicks and dialog submissions."""
    config = slack_config()
    if config is None:
        return _error(
            404,
            "Slack approvals are off on this opsdash: set "
            + ", ".join(slack_missing_settings())
            + ".",
        )
    try:
        size = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        size = 0
    if size > MAX_BODY_BYTES:
        return _error(413, f"The body is larger than {MAX_BODY_BYTES} bytes.")
    body = request.body
    problem = slack_request_problem(
        config,
        body=body,
        timestamp=request.headers.get("X-Slack-Request-Timestamp"),
        signature=request.headers.get("X-Slack-Signature"),
    )
    if problem:
        return _error(401, problem)
    try:
        fields = parse_qs(
            body.decode("utf-8"), strict_parsing=True, max_num_fields=20, errors="strict"
        )
    except (UnicodeDecodeError, ValueError):
        return _error(400, "The body must be form-encoded UTF-8 with a payload field.")
    payload = fields.get("payload") or [""]
    if not payload[0]:
        return _error(400, "The body has no payload field (Slack sends payload=<JSON>).")
    try:
        reply = slack_interaction_handle(config=config, payload=payload[0])
    except MalformedPayload as exc:
        return _error(400, str(exc))
    if reply.body is None:
        return HttpResponse(status=200)
    return JsonResponse(reply.body)
