"""Callers' credentials as AWS judges them: expired, revoked, or no longer allowed to act.

AWS checks who signed a request before any operation runs, so a refused credential fails every
call of that caller whatever the operation, while other callers go on working. What the control
plane answers, as AWS's REST-JSON front ends do (code in ``x-amzn-ErrorType``, HTTP 403):

* ``expired``: the session token's lifetime ended (a role session not refreshed):
  ``ExpiredTokenException``, "The security token included in the request is expired".
* ``revoked``: the access key was deleted or deactivated, or the session was revoked:
  ``UnrecognizedClientException``, "The security token included in the request is invalid.".
* ``denied``: the credential is valid but its policy no longer allows the action (a permission
  removed from the role): ``AccessDeniedException``, "User: <principal> is not authorized to
  perform: airflow:<operation> on resource: <environment ARN>".

A caller is named by the access key id of its SigV4 ``Credential=`` scope.
"""

from __future__ import annotations

import re
import threading
from enum import StrEnum

from devstack.mwaa_emulator.errors import MwaaError

_CREDENTIAL_SCOPE = re.compile(r"Credential=(?P<access_key_id>[^/,\s]+)/")


class CredentialState(StrEnum):
    EXPIRED = "expired"
    REVOKED = "revoked"
    DENIED = "denied"


def access_key_id_of(authorization: str) -> str | None:
    """The access key id of a SigV4 ``Authorization`` header, or None when it names none."""
    match = _CREDENTIAL_SCOPE.search(authorization)
    return match.group("access_key_id") if match else None


class CredentialPolicy:
    """Which access keys the control plane refuses, and how (thread-safe)."""

    def __init__(self, *, account_id: str) -> None:
        self._account_id = account_id
        self._refused: dict[str, CredentialState] = {}
        self._lock = threading.Lock()

    def refuse(self, access_key_id: str, state: CredentialState | str) -> None:
        if not access_key_id:
            raise ValueError("an access key id is needed to refuse a credential")
        if state not in set(CredentialState):
            known = ", ".join(str(known) for known in CredentialState)
            raise ValueError(f"unknown credential state {state!r}; use one of {known} (or valid)")
        with self._lock:
            self._refused[access_key_id] = CredentialState(state)

    def restore(self, access_key_id: str | None = None) -> None:
        """Accept `access_key_id` again (every refused key when None): the fix was made."""
        with self._lock:
            if access_key_id is None:
                self._refused.clear()
            else:
                self._refused.pop(access_key_id, None)

    def describe(self) -> dict[str, str]:
        with self._lock:
            return {key: str(state) for key, state in self._refused.items()}

    def check(self, access_key_id: str | None, *, operation: str, resource_arn: str) -> None:
        """Raise the error AWS answers when this caller's credential is refused."""
        if access_key_id is None:
            return
        with self._lock:
            state = self._refused.get(access_key_id)
        if state is CredentialState.EXPIRED:
            raise MwaaError(
                "ExpiredTokenException", "The security token included in the request is expired"
            )
        if state is CredentialState.REVOKED:
            raise MwaaError(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        if state is CredentialState.DENIED:
            principal = f"arn:aws:sts::{self._account_id}:assumed-role/dagtrigger/{access_key_id}"
            raise MwaaError(
                "AccessDeniedException",
                f"User: {principal} is not authorized to perform: airflow:{operation} "
                f"on resource: {resource_arn}",
            )
