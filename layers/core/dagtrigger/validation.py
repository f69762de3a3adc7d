"""Pydantic validation errors as problems a person can read: where, what, of which kind.

Every reader of a ``ValidationError`` (the settings, the routes file, the S3 parser, the
schedule input, the HTTP API) starts from ``field_problems`` and ``format_location``,
and adds only its own touch: upper-cased variable names, YAML line numbers, hints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

Location = tuple[str | int, ...]

_SHORT_REPR_CHARS = 80


class FieldProblems(ValueError):
    """Problems a model validator found, each with the field it belongs to.

    Pydantic places a model validator's error on the model itself; ``field_problems``
    expands this one so every problem keeps its own field path, as a field's error would.
    """

    def __init__(self, problems: Sequence[tuple[Location, str]]) -> None:
        super().__init__("; ".join(f"{format_location(loc)}: {msg}" for loc, msg in problems))
        self.problems = problems


@dataclass(frozen=True)
class FieldProblem:
    """One invalid input: where it is, what is wrong, pydantic's error type, and the value."""

    location: Location
    message: str
    type: str
    input: Any


def field_problems(
    errors: ValidationError | Iterable[Mapping[str, Any]],
) -> list[FieldProblem]:
    """One problem per pydantic error, and one per field for a ``FieldProblems``.

    ``errors`` is a ``ValidationError`` or its ``errors()`` (as a framework hands them on).
    Messages lose pydantic's ``"Value error, "`` prefix, which says nothing to a reader.
    """
    if isinstance(errors, ValidationError):
        errors = errors.errors()
    problems: list[FieldProblem] = []
    for error in errors:
        location = tuple(error.get("loc", ()))
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, FieldProblems):
            problems.extend(
                FieldProblem(
                    location + loc, message, "value_error", _value_at(error.get("input"), loc)
                )
                for loc, message in cause.problems
            )
            continue
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(
            FieldProblem(
                location, message, str(error.get("type", "value_error")), error.get("input")
            )
        )
    return problems


def format_location(location: Location, *, top_level: str = "(top level)") -> str:
    """``("s3", 2, "dag_id")`` as ``s3[2].dag_id``; ``top_level`` names the empty location."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part == "[key]":  # pydantic's step for an invalid key of a mapping
            text += " (the key)"
        else:
            text += f".{part}" if text else str(part)
    return text or top_level


def short_repr(value: Any) -> str:
    """``repr(value)``, cut to at most 80 characters."""
    text = repr(value)
    if len(text) <= _SHORT_REPR_CHARS:
        return text
    return text[: _SHORT_REPR_CHARS - 1] + "…"


def _value_at(document: Any, location: Location) -> Any:
    """What ``location`` points at inside a model's input; None where it leads nowhere."""
    for part in location:
        if isinstance(document, Mapping):
            document = document.get(part)
        elif isinstance(document, list) and isinstance(part, int) and 0 <= part < len(document):
            document = document[part]
        else:
            return None
    return document
