"""UpdateExpression text built from attribute names and values, all as placeholders."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class UpdateExpression:
    """Builds an UpdateExpression with placeholders for every name and value."""

    def __init__(self) -> None:
        self._sets: list[str] = []
        self._adds: list[str] = []
        self._deletes: list[str] = []
        self._removes: list[str] = []
        self._names: dict[str, str] = {}
        self._values: dict[str, Any] = {}

    def _name(self, attribute: str) -> str:
        placeholder = f"#u{len(self._names)}"
        self._names[placeholder] = attribute
        return placeholder

    def _value(self, value: Any) -> str:
        placeholder = f":u{len(self._values)}"
        self._values[placeholder] = value
        return placeholder

    def set(self, attribute: str, value: Any) -> None:
        self._sets.append(f"{self._name(attribute)} = {self._value(value)}")

    def append(self, attribute: str, entry: Any) -> None:
        name = self._name(attribute)
        empty, new = self._value([]), self._value([entry])
        self._sets.append(f"{name} = list_append(if_not_exists({name}, {empty}), {new})")

    def add(self, attribute: str, amount: int) -> None:
        self._adds.append(f"{self._name(attribute)} {self._value(amount)}")

    def delete(self, attribute: str, elements: Iterable[str]) -> None:
        """Take ``elements`` out of a string set (DynamoDB drops a set left empty)."""
        self._deletes.append(f"{self._name(attribute)} {self._value(set(elements))}")

    def remove(self, attribute: str) -> None:
        self._removes.append(self._name(attribute))

    def render(self) -> dict[str, Any]:
        clauses = [
            f"{keyword} {', '.join(parts)}"
            for keyword, parts in (
                ("SET", self._sets),
                ("ADD", self._adds),
                ("DELETE", self._deletes),
                ("REMOVE", self._removes),
            )
            if parts
        ]
        return {
            "UpdateExpression": " ".join(clauses),
            "ExpressionAttributeNames": self._names,
            "ExpressionAttributeValues": self._values,
        }
