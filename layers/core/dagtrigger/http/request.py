"""What route handlers receive through ``Depends``: the services' dependencies and the caller.

``handle`` (in the api function's app.py) puts the ``Dependencies`` into the resolver's context
for each invocation, so tests pass their own the same way the Lambda handler passes the real
ones.
"""

from __future__ import annotations

import json
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


# Request bodies.
#: deepest nesting a JSON request body may have; deeper bodies are refused as invalid JSON (400)
MAX_JSON_DEPTH = 64


def read_json_body(text: str) -> Any:
    """The resolver's JSON reader: ``json.loads``, where a body too deep or with a number too
    long to read is invalid JSON (a 400 saying so), never an error of ours.

    Python's parser recurses once per level and refuses integers of more than 4,300 digits with
    a plain ``ValueError``; pydantic refuses to serialise a few hundred levels. ``JSONDecodeError``
    is what Powertools turns into a validation error.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError(_too_deep(), text, 0) from None
    except ValueError as exc:
        reason = str(exc).split(":", 1)[0]  # "Exceeds the limit (4300 digits) for integer ..."
        raise json.JSONDecodeError(f"a value cannot be read: {reason}", text, 0) from None
    if _nesting_depth(document, limit=MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise json.JSONDecodeError(_too_deep(), text, 0)
    return document


def _too_deep() -> str:
    return f"it nests arrays and objects deeper than {MAX_JSON_DEPTH} levels"


def _nesting_depth(document: Any, *, limit: int) -> int:
    """How deep ``document`` nests arrays and objects (a scalar is 0), counted up to ``limit + 1``
    without recursion."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            break
        pending.extend((child, depth + 1) for child in children)
    return deepest
