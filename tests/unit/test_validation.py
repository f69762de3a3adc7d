"""field_problems and format_location: the one reading of pydantic's validation errors."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from dagtrigger.validation import (
    FieldProblem,
    FieldProblems,
    field_problems,
    format_location,
    short_repr,
)


class _Window(BaseModel):
    start: int = Field(ge=0)
    end: int

    @model_validator(mode="after")
    def _ordered(self) -> _Window:
        if self.start > self.end:
            raise FieldProblems([(("end",), f"must not be before start ({self.start})")])
        return self


class _Plan(BaseModel):
    name: str = Field(pattern=r"^[a-z]+$")
    windows: list[_Window]

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == "all":
            raise ValueError("is reserved")
        return value


def problems_of(document: dict[str, Any]) -> list[FieldProblem]:
    with pytest.raises(ValidationError) as raised:
        _Plan.model_validate(document)
    return field_problems(raised.value)


def test_a_model_validators_field_problems_land_on_their_own_fields() -> None:
    # Given a window whose model validator finds its end before its start
    problems = problems_of(
        {"name": "nightly", "windows": [{"start": 0, "end": 1}, {"start": 5, "end": 2}]}
    )

    # Then the problem sits on that window's end field, with the end's value
    assert problems == [
        FieldProblem(("windows", 1, "end"), "must not be before start (5)", "value_error", 2)
    ]


def test_field_errors_keep_their_type_and_input_and_lose_the_value_error_prefix() -> None:
    problems = problems_of({"name": "all", "windows": [{"start": -1, "end": 1}]})

    assert [(p.location, p.message, p.type, p.input) for p in problems] == [
        (("name",), "is reserved", "value_error", "all"),
        (
            ("windows", 0, "start"),
            "Input should be greater than or equal to 0",
            "greater_than_equal",
            -1,
        ),
    ]


def test_the_errors_a_framework_hands_on_read_the_same_as_the_exception() -> None:
    with pytest.raises(ValidationError) as raised:
        _Plan.model_validate({"name": "Upper", "windows": [{"start": 3, "end": 1}]})

    assert field_problems(raised.value.errors()) == field_problems(raised.value)
    assert [problem.location for problem in field_problems(raised.value)] == [
        ("name",),
        ("windows", 0, "end"),
    ]


def test_field_problems_read_as_one_message_where_nobody_expands_them() -> None:
    problems = FieldProblems([(("s3", 0, "name"), "used twice"), (("version",), "unknown")])

    assert str(problems) == "s3[0].name: used twice; version: unknown"


@pytest.mark.parametrize(
    ("location", "text"),
    [
        (("s3", 2, "dag_id"), "s3[2].dag_id"),
        (("environments", "prod", "base_url"), "environments.prod.base_url"),
        ((0, "key"), "[0].key"),
        (("environments", "Prod", "[key]"), "environments.Prod (the key)"),
        ((), "(top level)"),
    ],
)
def test_locations_read_as_paths(location: tuple[str | int, ...], text: str) -> None:
    assert format_location(location) == text


def test_the_empty_location_takes_the_callers_name() -> None:
    assert format_location((), top_level="input") == "input"


def test_long_values_are_cut_to_80_characters() -> None:
    assert short_repr("abc") == "'abc'"
    shown = short_repr("x" * 200)
    assert len(shown) == 80
    assert shown.endswith("xx…")
