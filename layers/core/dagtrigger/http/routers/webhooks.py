"""POST /v1/webhooks/{name}: signed webhooks (no IAM: the signature is the authentication)."""

from __future__ import annotations

import base64
from typing import Annotated

from aws_lambda_powertools.event_handler import Request, Response
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dagtrigger.dependencies import Dependencies
from dagtrigger.http.bodies import WebhookAccepted, webhook_response
from dagtrigger.http.problems import documented
from dagtrigger.http.request import api_dependencies, http_event
from dagtrigger.ids import NAME_MAX_LENGTH, NAME_PATTERN
from dagtrigger.sources.webhooks.service import WebhookDelivery, receive_webhook

router = APIGatewayHttpRouter()


@router.post(
    "/v1/webhooks/<name>",
    status_code=202,
    summary="Receive a signed webhook",
    description="The body is any JSON payload, signed as the webhook route's scheme says "
    "(Standard Webhooks, GitHub X-Hub-Signature-256 or a generic HMAC). A delivery is known by "
    "what its signature covers (the body, plus the signed timestamp or Standard Webhooks id "
    "where the scheme signs one), never by an unsigned delivery id: a redelivery or a replay "
    "starts nothing new and is answered with duplicate=true. A signed timestamp outside the "
    "replay window is refused (422). A payload the route's filter rejects is recorded as "
    "IGNORED (202).",
    tags=["Webhooks"],
    security=[],
    responses=documented(202, 400, 401, 404, 413, 422, 503),
)
def receive(
    name: Annotated[str, Path(pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH)],
    request: Request,
    deps: Annotated[Dependencies, Depends(api_dependencies)],
) -> Response[WebhookAccepted]:
    delivery = WebhookDelivery(
        route_name=name,
        body=raw_body(request),
        headers=dict(request.headers),
        received_at=deps.clock(),
    )
    return webhook_response(receive_webhook(delivery, deps))


def raw_body(request: Request) -> bytes:
    """The body exactly as sent: signatures cover bytes, so never re-encode parsed JSON."""
    event = http_event(request)
    body = event.body or ""
    if event.is_base64_encoded:
        return base64.b64decode(body)
    return body.encode("utf-8")
