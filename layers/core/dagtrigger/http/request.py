"""What route handlers receive through ``Depends``: the services' dependencies and the caller.

``handle`` (in the api function's app.py) puts the ``Dependencies`` into the resolver's context
for each invocation, so tests pass their own the same way the Lambda handler passes the real
ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, cast

from aws_lambda_powertools.event_handler import Request
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from dagtrigger.dependencies import Dependencies
from dagtrigger.ledger.cursor import MAX_CURSOR_CHARS
from dagtrigger.settings import Settings

DEPENDENCIES_KEY = "dependencies"
#: who made a request that carries no IAM identity
ANONYMOUS_CALLER = "anonymous"
#: management routes are IAM-signed (SigV4); the scheme's name in the OpenAPI document
SIGV4 = "sigv4"
IAM_SIGNED: list[dict[str, list[str]]] = [{SIGV4: []}]


def api_dependencies(request: Request) -> Dependencies:
    return cast(Dependencies, request.context[DEPENDENCIES_KEY])


def deployment_settings(context: Mapping[str, Any]) -> Settings:
    """The settings of the deployment answering the request in ``context``."""
    return cast(Dependencies, context[DEPENDENCIES_KEY]).settings


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


# Query parameters of the history routes.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="most items in the page")]
Cursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_CURSOR_CHARS,
        description="next_cursor of the previous page",
    ),
]
