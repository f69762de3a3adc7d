"""HTTP API errors as RFC 9457 problem details (``application/problem+json``).

Every error the API answers carries a stable ``code`` beside the HTTP status, so clients can
branch on the code instead of parsing ``detail``. ``ApiProblem`` is raised by the API services;
the function's exception handlers turn it (and every other exception) into one of these bodies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dagtrigger.errors import DagTriggerError

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:dagtrigger:problem:"


class ProblemCode(StrEnum):
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    VALIDATION_ERROR = "validation_error"
    THROTTLED = "throttled"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


STATUS_OF: Mapping[ProblemCode, HTTPStatus] = {
    ProblemCode.BAD_REQUEST: HTTPStatus.BAD_REQUEST,
    ProblemCode.UNAUTHORIZED: HTTPStatus.UNAUTHORIZED,
    ProblemCode.FORBIDDEN: HTTPStatus.FORBIDDEN,
    ProblemCode.NOT_FOUND: HTTPStatus.NOT_FOUND,
    ProblemCode.CONFLICT: HTTPStatus.CONFLICT,
    ProblemCode.PAYLOAD_TOO_LARGE: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    ProblemCode.VALIDATION_ERROR: HTTPStatus.UNPROCESSABLE_ENTITY,
    ProblemCode.THROTTLED: HTTPStatus.TOO_MANY_REQUESTS,
    ProblemCode.UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
    ProblemCode.INTERNAL: HTTPStatus.INTERNAL_SERVER_ERROR,
}


class FieldError(BaseModel):
    """One invalid input: where it is (``["body", "conf"]``) and what is wrong with it."""

    loc: list[str | int] = Field(description="path to the input: body/query/path/header, then keys")
    msg: str = Field(description="what is wrong")
    type: str = Field(description="machine-readable kind of error")


class Problem(BaseModel):
    """RFC 9457 problem details, plus ``code`` (and ``errors`` for validation problems)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description=f"{PROBLEM_TYPE_PREFIX}<code>")
    title: str = Field(description="the HTTP status phrase")
    status: int = Field(description="the HTTP status code")
    detail: str = Field(description="what went wrong with this request")
    instance: str = Field(description="the request path")
    code: ProblemCode = Field(description="stable machine-readable error code")
    errors: list[FieldError] | None = Field(
        default=None, description="validation_error only: every invalid input"
    )


class ApiProblem(DagTriggerError):
    """An error answered as a problem. ``extensions`` become extra members of the body."""

    def __init__(
        self,
        code: ProblemCode,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
        errors: Sequence[FieldError] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})
        self.errors = list(errors) if errors is not None else None

    @property
    def status(self) -> HTTPStatus:
        return STATUS_OF[self.code]

    def body(self, instance: str) -> dict[str, Any]:
        """The problem document for the request at ``instance`` (its path)."""
        problem = Problem(
            type=PROBLEM_TYPE_PREFIX + self.code.value,
            title=self.status.phrase,
            status=self.status.value,
            detail=self.detail,
            instance=instance,
            code=self.code,
            errors=self.errors,
            **self.extensions,
        )
        return problem.model_dump(mode="json", exclude_none=True)


def unavailable(detail: str, *, retry_after_seconds: int) -> ApiProblem:
    """503 with ``Retry-After``: MWAA throttles or is down, or the ledger is contended."""
    return ApiProblem(
        ProblemCode.UNAVAILABLE, detail, headers={"Retry-After": str(retry_after_seconds)}
    )


def validation_problem(detail: str, *, loc: Sequence[str | int], error_type: str) -> ApiProblem:
    """422 for one input that is well-formed but refers to something that does not fit."""
    return ApiProblem(
        ProblemCode.VALIDATION_ERROR,
        detail,
        errors=[FieldError(loc=list(loc), msg=detail, type=error_type)],
    )
