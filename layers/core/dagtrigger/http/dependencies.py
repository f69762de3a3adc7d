"""What route handlers receive through ``Depends``: the services' dependencies and the caller.

``handle`` (in app.py) puts the ``ApiDependencies`` into the resolver's context for each
invocation, so tests pass their own the same way the Lambda handler passes the real ones.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, cast

from aws_lambda_powertools.event_handler import Request
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from dagtrigger.api import ApiDependencies, Problem
from dagtrigger.api.idempotency import ANONYMOUS_CALLER
from dagtrigger.api.problems import PROBLEM_CONTENT_TYPE

DEPENDENCIES_KEY = "api_dependencies"
#: management routes are IAM-signed (SigV4); the scheme's name in the OpenAPI document
SIGV4 = "sigv4"
IAM_SIGNED: list[dict[str, list[str]]] = [{SIGV4: []}]


def api_dependencies(request: Request) -> ApiDependencies:
    return cast(ApiDependencies, request.context[DEPENDENCIES_KEY])


def http_event(request: Request) -> APIGatewayProxyEventV2:
    return cast(APIGatewayProxyEventV2, request.resolved_event)


def caller_identity(request: Request) -> str:
    """Who signed the request (IAM): the user ARN, else account and caller id."""
    iam = http_event(request).request_context.authorizer.iam
    if iam.user_arn:
        return iam.user_arn
    if iam.account_id or iam.caller_id:
        return f"account:{iam.account_id}:{iam.caller_id}"
    return ANONYMOUS_CALLER


def documented(success: int, *problems: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI responses of a route: its success (schema from the return type) and problems."""
    success_entry: OpenAPIResponse = {"description": HTTPStatus(success).phrase}
    if success == HTTPStatus.NO_CONTENT:
        success_entry["content"] = {}
    content: dict[str, Any] = {PROBLEM_CONTENT_TYPE: {"model": Problem}}
    responses: dict[int, OpenAPIResponse] = {success: success_entry}
    for status in problems:
        responses[status] = {"description": HTTPStatus(status).phrase, "content": content}
    return responses
