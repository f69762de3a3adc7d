"""POST /v1/webhooks/{name}: signed webhooks (no IAM: the signature is the authentication)."""

from __future__ import annotations

import base64
from typing import Annotated

from aws_lambda_powertools.event_handler import Request, Response
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dagtrigger.api import ApiDependencies, WebhookDelivery, receive_webhook
from dagtrigger.api.models import WebhookAccepted
from dagtrigger.http.dependencies import api_dependencies, documented, http_event
from dagtrigger.http.responses import json_response
from dagtrigger.ids import NAME_PATTERN

router = APIGatewayHttpRouter()


@router.post(
    "/v1/webhooks/<name>",
    status_code=202,
    summary="Receive a signed webhook",
    description="The body is any JSON payload, signed as the webhook route's scheme says "
    "(Standard Webhooks, GitHub X-Hub-Signature-256 or a generic HMAC). The delivery id is the "
    "idempotency key: a redelivery starts nothing new. A payload the route's filter rejects is "
    "recorded as IGNORED (202).",
    tags=["Webhooks"],
    security=[],
    responses=documented(202, 400, 401, 404, 413, 422, 503),
)
def receive(
    name: Annotated[str, Path(pattern=NAME_PATTERN, max_length=64)],
    request: Request,
    deps: Annotated[ApiDependencies, Depends(api_dependencies)],
) -> Response[WebhookAccepted]:
    delivery = WebhookDelivery(
        route_name=name,
        body=raw_body(request),
        headers=dict(request.headers),
        received_at=deps.core.clock(),
    )
    return json_response(202, receive_webhook(delivery, deps).body)


def raw_body(request: Request) -> bytes:
    """The body exactly as sent: signatures cover bytes, so never re-encode parsed JSON."""
    event = http_event(request)
    body = event.body or ""
    if event.is_base64_encoded:
        return base64.b64decode(body)
    return body.encode("utf-8")
