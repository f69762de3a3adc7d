"""Request headers as API Gateway HTTP APIs deliver them.

Names arrive lower-cased and a repeated header arrives once, its values joined by commas
(HTTP's own rule for combining field lines). Callers may still pass mixed-case names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from dagtrigger.sources.webhooks.errors import SignatureError, SignatureFailure

# What HTTP strips around a field value (optional whitespace).
_OPTIONAL_WHITESPACE = " \t"
# Identifiers (delivery ids) are visible ASCII: the ledger keys on them and logs show them.
_IDENTIFIER = re.compile(r"[\x21-\x7e]{1,256}")


def split_list(value: str) -> list[str]:
    """The non-empty members of a comma-separated header value, stripped of whitespace."""
    members = (member.strip(_OPTIONAL_WHITESPACE) for member in value.split(","))
    return [member for member in members if member]


class RequestHeaders:
    """Case-insensitive, read-only access to one request's headers."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._values: dict[str, str] = {}
        for name, value in headers.items():
            key = name.lower()
            self._values[key] = f"{self._values[key]},{value}" if key in self._values else value

    def required(self, name: str) -> str:
        """The value of ``name``, stripped; a missing or blank header is a SignatureError."""
        value = self._values.get(name.lower(), "").strip(_OPTIONAL_WHITESPACE)
        if not value:
            raise SignatureError(SignatureFailure.MISSING_HEADER, f"the {name} header is missing")
        return value

    def required_single(self, name: str) -> str:
        """A header that must carry one value; identical repeats (joined by commas) collapse."""
        distinct = set(split_list(self.required(name)))
        if len(distinct) != 1:
            raise SignatureError(
                SignatureFailure.BAD_FORMAT, f"the {name} header must carry exactly one value"
            )
        return distinct.pop()

    def has(self, name: str) -> bool:
        return bool(self._values.get(name.lower(), "").strip(_OPTIONAL_WHITESPACE))


def required_identifier(headers: RequestHeaders, name: str) -> str:
    return _checked_identifier(headers.required_single(name), name)


def optional_identifier(headers: RequestHeaders, name: str | None) -> str | None:
    if name is None or not headers.has(name):
        return None
    return required_identifier(headers, name)


def _checked_identifier(value: str, name: str) -> str:
    if not _IDENTIFIER.fullmatch(value):
        raise SignatureError(
            SignatureFailure.BAD_FORMAT,
            f"the {name} header is not 1 to 256 visible ASCII characters",
        )
    return value
