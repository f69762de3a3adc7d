"""Building HTTP responses: JSON bodies from response models, problems as problem+json."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import TypeVar

from aws_lambda_powertools.event_handler import Response, content_types
from pydantic import BaseModel

from dagtrigger.api import ApiProblem
from dagtrigger.api.problems import PROBLEM_CONTENT_TYPE

Model = TypeVar("Model", bound=BaseModel)


def json_response(
    status: int, body: Model, *, headers: Mapping[str, str] | None = None
) -> Response[Model]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers=dict(headers or {}),
    )


def problem_response(problem: ApiProblem, instance: str) -> Response[str]:
    return Response(
        status_code=problem.status.value,
        content_type=PROBLEM_CONTENT_TYPE,
        body=json.dumps(problem.body(instance), ensure_ascii=False, separators=(",", ":")),
        headers=problem.headers,
    )


def no_content() -> Response[None]:
    return Response(status_code=HTTPStatus.NO_CONTENT.value, body=None)
