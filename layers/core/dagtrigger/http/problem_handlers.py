"""Every error the API answers, mapped once to RFC 9457 problem details.

Services raise ``ApiProblem`` for what they refuse; the other exceptions arriving here are
translated by kind. No body ever carries a stack trace or an exception's internals: an
unexpected error is logged in full and answered with a bare 500.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import ValidationError

from dagtrigger.api import ApiProblem, ProblemCode
from dagtrigger.api.problems import FieldError, unavailable
from dagtrigger.errors import (
    InvalidCursorError,
    LedgerContentionError,
    TransientTriggerError,
    TriggerFailedError,
)
from dagtrigger.http.responses import problem_response
from dagtrigger.observability import logger
from dagtrigger.sources.schedules import ScheduleManagementError

#: Retry-After for a 503 raised outside a service that knows its own setting
DEFAULT_RETRY_AFTER_SECONDS = 30

_SCHEDULE_PROBLEMS: dict[int, ProblemCode] = {
    404: ProblemCode.NOT_FOUND,
    409: ProblemCode.CONFLICT,
    422: ProblemCode.VALIDATION_ERROR,
    429: ProblemCode.THROTTLED,
}


def register_problem_handlers(app: APIGatewayHttpResolver) -> None:
    def answer(problem: ApiProblem) -> Response[str]:
        return problem_response(problem, app.current_event.path)

    handlers: dict[type[Exception], Callable[[Any], ApiProblem]] = {
        ApiProblem: lambda problem: problem,
        RequestValidationError: _request_validation_problem,
        ValidationError: _validation_problem,
        NotFoundError: lambda _: ApiProblem(
            ProblemCode.NOT_FOUND,
            f"no route for {app.current_event.http_method} {app.current_event.path}",
        ),
        InvalidCursorError: lambda exc: ApiProblem(
            ProblemCode.BAD_REQUEST, f"invalid cursor: {exc}"
        ),
        TriggerFailedError: lambda exc: unavailable(
            f"Airflow is unavailable: {exc.message}",
            retry_after_seconds=DEFAULT_RETRY_AFTER_SECONDS,
        ),
        TransientTriggerError: lambda exc: unavailable(
            f"Airflow is unavailable: {exc.message}",
            retry_after_seconds=DEFAULT_RETRY_AFTER_SECONDS,
        ),
        LedgerContentionError: lambda _: unavailable(
            "the trigger history is busy with this trigger; retry shortly", retry_after_seconds=1
        ),
        ScheduleManagementError: _schedule_problem,
        Exception: _internal_problem,
    }
    for exception_class, to_problem in handlers.items():
        app.exception_handler(exception_class)(_handler(to_problem, answer))


def _handler(
    to_problem: Callable[[Any], ApiProblem], answer: Callable[[ApiProblem], Response[str]]
) -> Callable[[Exception], Response[str]]:
    def handle(exc: Exception) -> Response[str]:
        return answer(to_problem(exc))

    return handle


def _request_validation_problem(exc: RequestValidationError) -> ApiProblem:
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        return ApiProblem(ProblemCode.BAD_REQUEST, "the request body is not valid JSON")
    return _field_problems(errors)


def _validation_problem(exc: ValidationError) -> ApiProblem:
    return _field_problems(exc.errors(), prefix=("body",))


def _field_problems(errors: Sequence[Any], *, prefix: tuple[str, ...] = ()) -> ApiProblem:
    """422 listing each invalid input by location; pydantic's message, never the input."""
    fields = [
        FieldError(
            loc=[*prefix, *error.get("loc", ())],
            msg=str(error.get("msg", "invalid")),
            type=str(error.get("type", "value_error")),
        )
        for error in errors
    ]
    summary = "; ".join(f"{'.'.join(map(str, field.loc))}: {field.msg}" for field in fields)
    return ApiProblem(ProblemCode.VALIDATION_ERROR, f"invalid request: {summary}", errors=fields)


def _schedule_problem(exc: ScheduleManagementError) -> ApiProblem:
    code = _SCHEDULE_PROBLEMS.get(exc.http_status)
    if code is None:
        logger.exception("schedule management failed", extra={"aws_code": exc.aws_code})
        return ApiProblem(ProblemCode.INTERNAL, "schedule management failed")
    if code is ProblemCode.THROTTLED:
        retry_after = {"Retry-After": str(DEFAULT_RETRY_AFTER_SECONDS)}
        return ApiProblem(code, exc.message, headers=retry_after)
    return ApiProblem(code, exc.message)


def _internal_problem(exc: Exception) -> ApiProblem:
    logger.exception("unexpected error while answering a request")
    return ApiProblem(ProblemCode.INTERNAL, "an internal error occurred; it has been logged")
