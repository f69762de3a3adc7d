"""Every error the API answers, mapped once to RFC 9457 problem details.

Services raise domain errors (``dagtrigger.errors``) and never pick a status; ``problem_for``
is the one place that does. Every problem carries a stable ``code`` beside the HTTP status, so
clients branch on the code instead of parsing ``detail``. No body ever carries a stack trace
or an exception's internals: an unexpected error is logged in full and answered with a bare 500.
A 503 or 429 says when to come back with the deployment's ``RETRY_AFTER_SECONDS``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as NoRouteError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dagtrigger.errors import (
    ConflictError,
    InvalidRequestError,
    LedgerContentionError,
    MalformedRequestError,
    NotFoundError,
    PayloadTooLargeError,
    RejectedError,
    RequestError,
    ThrottledError,
    TransientTriggerError,
    TriggerFailedError,
    UnauthenticatedError,
    UnavailableError,
)
from dagtrigger.http.request import deployment_settings
from dagtrigger.observability import logger
from dagtrigger.validation import field_problems

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:dagtrigger:problem:"
UNAUTHENTIC = "the request could not be authenticated"
#: a contended ledger record settles within milliseconds: come back at once
CONTENTION_RETRY_AFTER_SECONDS = 1


class ProblemCode(StrEnum):
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
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
    ProblemCode.UNSUPPORTED_MEDIA_TYPE: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    ProblemCode.VALIDATION_ERROR: HTTPStatus.UNPROCESSABLE_ENTITY,
    ProblemCode.THROTTLED: HTTPStatus.TOO_MANY_REQUESTS,
    ProblemCode.UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
    ProblemCode.INTERNAL: HTTPStatus.INTERNAL_SERVER_ERROR,
}

#: the problem each kind of refused request is answered with
_REQUEST_PROBLEMS: Mapping[type[RequestError], ProblemCode] = {
    NotFoundError: ProblemCode.NOT_FOUND,
    ConflictError: ProblemCode.CONFLICT,
    InvalidRequestError: ProblemCode.VALIDATION_ERROR,
    MalformedRequestError: ProblemCode.BAD_REQUEST,
    PayloadTooLargeError: ProblemCode.PAYLOAD_TOO_LARGE,
    UnauthenticatedError: ProblemCode.UNAUTHORIZED,
    ThrottledError: ProblemCode.THROTTLED,
    UnavailableError: ProblemCode.UNAVAILABLE,
}

#: rejection codes whose cause is the caller's input, and the problem each one is answered with
_CLIENT_REJECTIONS: Mapping[str, ProblemCode] = {
    "dag_not_found": ProblemCode.NOT_FOUND,
    "conf_too_large": ProblemCode.PAYLOAD_TOO_LARGE,
    "conf_not_object": ProblemCode.VALIDATION_ERROR,
    "conf_not_json": ProblemCode.VALIDATION_ERROR,
    "conf_rejected": ProblemCode.VALIDATION_ERROR,
    "bad_request": ProblemCode.VALIDATION_ERROR,
    "template_error": ProblemCode.VALIDATION_ERROR,
}

#: problems that say when to try again
_RETRY_LATER = frozenset({ProblemCode.UNAVAILABLE, ProblemCode.THROTTLED})

#: media types Powertools parses itself (and can fail on) before a route runs; no route takes them
_FORM_MEDIA_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
NOT_JSON_MEDIA_TYPE = "request bodies must be JSON, sent as Content-Type: application/json"
NOT_UTF8_BODY = "the request body is not UTF-8 text, so it cannot be JSON"


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


@dataclass(frozen=True)
class ProblemAnswer:
    """What a problem says, before it is put on the wire for one request."""

    code: ProblemCode
    detail: str
    retry_after_seconds: int | None = None
    extensions: Mapping[str, Any] = field(default_factory=dict)
    errors: Sequence[FieldError] | None = None

    @property
    def status(self) -> HTTPStatus:
        return STATUS_OF[self.code]

    def response(self, instance: str) -> Response[str]:
        problem = Problem(
            type=PROBLEM_TYPE_PREFIX + self.code.value,
            title=self.status.phrase,
            status=self.status.value,
            detail=self.detail,
            instance=instance,
            code=self.code,
            errors=list(self.errors) if self.errors is not None else None,
            **self.extensions,
        )
        headers = {}
        if self.retry_after_seconds is not None:
            headers["Retry-After"] = str(self.retry_after_seconds)
        body = problem.model_dump(mode="json", exclude_none=True)
        return Response(
            status_code=self.status.value,
            content_type=PROBLEM_CONTENT_TYPE,
            body=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
            headers=headers,
        )


def problem_for(
    exc: Exception,
    *,
    retry_after_seconds: int,
    request_line: str,
    body: RequestBody | None = None,
) -> ProblemAnswer:
    """The answer to ``exc`` raised while answering ``request_line`` (``GET /v1/x``), whose body
    is ``body``; 503s and 429s ask to come back after ``retry_after_seconds``."""
    if isinstance(exc, NoRouteError):
        return ProblemAnswer(ProblemCode.NOT_FOUND, f"no route for {request_line}")
    answer = _unreadable_body(exc, body or RequestBody()) or _answer(exc)
    if answer.code in _RETRY_LATER and answer.retry_after_seconds is None:
        return replace(answer, retry_after_seconds=retry_after_seconds)
    return answer


def register_problem_handlers(app: APIGatewayHttpResolver) -> None:
    """Answer every exception a route raises with ``problem_for``."""

    def answer(exc: Exception) -> Response[str]:
        event = app.current_event
        problem = problem_for(
            exc,
            retry_after_seconds=deployment_settings(app.context).retry_after_seconds,
            request_line=f"{event.http_method} {event.path}",
            body=RequestBody.of(event),
        )
        return problem.response(event.path)

    for root in (
        RequestError,
        RejectedError,
        TriggerFailedError,
        TransientTriggerError,
        LedgerContentionError,
        RequestValidationError,
        ValidationError,
        NoRouteError,
        Exception,
    ):
        app.exception_handler(root)(answer)


@dataclass(frozen=True)
class RequestBody:
    """What the answer to an error needs to know of the request's body.

    Powertools reads the body of a route that takes one before the route runs (JSON, and forms,
    which none of ours take); an error raised while reading it is the request's fault.
    """

    present: bool = False
    media_type: str = ""  # lower case, without parameters: "application/json"
    utf8: bool = True

    @classmethod
    def of(cls, event: BaseProxyEvent) -> RequestBody:
        body, media_type = event.body, event.headers.get("content-type") or ""
        return cls(
            present=bool(body),
            media_type=media_type.split(";", 1)[0].strip().lower(),
            utf8=not (body and event.is_base64_encoded) or _decodes_to_utf8(body),
        )


def _decodes_to_utf8(base64_text: str) -> bool:
    try:
        base64.b64decode(base64_text).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return True


def _unreadable_body(exc: Exception, body: RequestBody) -> ProblemAnswer | None:
    """The refusal of a body that could not be read, when ``exc`` is what reading it raised."""
    not_json = ProblemAnswer(
        ProblemCode.UNSUPPORTED_MEDIA_TYPE, f"{NOT_JSON_MEDIA_TYPE}, not {body.media_type!r}"
    )
    if isinstance(exc, RequestUnsupportedContentType):
        return not_json
    # A form is parsed from its headers even when the body is empty (a multipart without a
    # boundary fails before the body is looked at): refused for its media type either way.
    if body.media_type in _FORM_MEDIA_TYPES and (
        isinstance(exc, ValueError | UnicodeError)
        or (isinstance(exc, RequestValidationError) and _about_the_body(exc))
    ):
        return not_json
    if not body.present:
        return None
    if isinstance(exc, UnicodeDecodeError) and not body.utf8:
        return ProblemAnswer(ProblemCode.BAD_REQUEST, NOT_UTF8_BODY)
    return None


def _about_the_body(exc: RequestValidationError) -> bool:
    return any(tuple(error.get("loc") or ())[:1] == ("body",) for error in exc.errors())


def _answer(exc: Exception) -> ProblemAnswer:
    if isinstance(exc, RequestError):
        return _refused_request(exc)
    if isinstance(exc, RejectedError):
        return _rejection(exc)
    if isinstance(exc, TriggerFailedError):
        return ProblemAnswer(ProblemCode.UNAVAILABLE, exc.message)
    if isinstance(exc, TransientTriggerError):
        return ProblemAnswer(ProblemCode.UNAVAILABLE, f"Airflow is unavailable: {exc.message}")
    if isinstance(exc, LedgerContentionError):
        return ProblemAnswer(
            ProblemCode.UNAVAILABLE,
            "the trigger history is busy with this trigger; retry shortly",
            retry_after_seconds=CONTENTION_RETRY_AFTER_SECONDS,
        )
    if isinstance(exc, RequestValidationError):
        kinds = {error.get("type") for error in exc.errors()}
        if "json_invalid" in kinds:
            return ProblemAnswer(ProblemCode.BAD_REQUEST, _invalid_json(exc.errors()))
        if "string_unicode" in kinds:
            return ProblemAnswer(
                ProblemCode.BAD_REQUEST,
                "the request body is not valid UTF-8 JSON: it escapes a lone surrogate",
            )
        return _invalid_fields(exc.errors(), prefix=())
    if isinstance(exc, ValidationError):
        return _invalid_fields(exc.errors(), prefix=("body",))
    logger.exception("unexpected error while answering a request")
    return ProblemAnswer(ProblemCode.INTERNAL, "an internal error occurred; it has been logged")


def _invalid_json(errors: Sequence[Any]) -> str:
    """``the request body is not valid JSON: Expecting value (at character 9)``."""
    error = next(error for error in errors if error.get("type") == "json_invalid")
    reason = (error.get("ctx") or {}).get("error")
    if not reason:
        return "the request body is not valid JSON"
    position = next((part for part in error.get("loc", ())[1:] if isinstance(part, int)), 0)
    where = f" (at character {position})" if position else ""
    return f"the request body is not valid JSON: {reason}{where}"


def _refused_request(exc: RequestError) -> ProblemAnswer:
    code = next(
        (problem for kind, problem in _REQUEST_PROBLEMS.items() if isinstance(exc, kind)),
        ProblemCode.BAD_REQUEST,
    )
    detail = UNAUTHENTIC if code is ProblemCode.UNAUTHORIZED else exc.message
    errors = None
    if exc.location is not None:
        error_type = exc.code or "value_error"
        errors = [FieldError(loc=list(exc.location), msg=exc.message, type=error_type)]
    return ProblemAnswer(code, detail, exc.retry_in_seconds, exc.details, errors)


def _rejection(exc: RejectedError) -> ProblemAnswer:
    """A rejected trigger: 404 for an unknown DAG, 413/422 for a bad conf, else ours (500)."""
    extensions = {"trigger_id": exc.trigger_id, "reject_code": exc.code} if exc.trigger_id else {}
    code = _CLIENT_REJECTIONS.get(exc.code)
    if code is None:
        return ProblemAnswer(
            ProblemCode.INTERNAL,
            f"Airflow refused trigger {exc.trigger_id!r} for a reason of ours ({exc.code}); "
            "see the trigger record",
            extensions=extensions,
        )
    return ProblemAnswer(code, exc.message, extensions=extensions)


def _invalid_fields(errors: Sequence[Any], *, prefix: tuple[str, ...]) -> ProblemAnswer:
    """422 listing each invalid input by location; pydantic's message, never the input."""
    fields = [
        FieldError(loc=[*prefix, *problem.location], msg=problem.message, type=problem.type)
        for problem in field_problems(errors)
    ]
    summary = "; ".join(f"{'.'.join(map(str, error.loc))}: {error.msg}" for error in fields)
    return ProblemAnswer(ProblemCode.VALIDATION_ERROR, f"invalid request: {summary}", errors=fields)


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
