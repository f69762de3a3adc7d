"""MWAA's control plane (the boto3 ``mwaa`` client) as both MWAA transports use it.

Its botocore errors become retryable or permanent trigger errors, and ``GetEnvironment`` tells
an environment's Airflow major version when the configuration does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from dagtrigger.errors import (
    AccessRefusedError,
    DagTriggerError,
    RejectedError,
    TransientTriggerError,
)
from dagtrigger.transports.base import EnvironmentRef
from dagtrigger.transports.keyed_cache import KeyedCache

# botocore's own throttling codes (botocore.retries.standard) plus MWAA's HTTP 429 name.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequests",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "InternalServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
#: our identity refused: a role without permission, an expired or revoked credential; or our
#: setup names an environment MWAA does not have (deleted, being recreated, another region).
#: Neither is the event's fault: the event is kept and an alarm is raised.
ACCESS_REFUSED_CODES = {
    "ResourceNotFoundException": "environment_not_found",
    "AccessDeniedException": "mwaa_access_denied",
    "AccessDenied": "mwaa_access_denied",
    "UnrecognizedClientException": "aws_credentials_refused",
    "InvalidClientTokenId": "aws_credentials_refused",
    "InvalidSignatureException": "aws_credentials_refused",
    "SignatureDoesNotMatch": "aws_credentials_refused",
    "ExpiredToken": "aws_credentials_expired",
    "ExpiredTokenException": "aws_credentials_expired",
}
PERMANENT_CODES = {
    "ValidationException": "mwaa_validation_error",
}


def client_error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def client_error_message(error: ClientError) -> str:
    details = error.response.get("Error", {})
    return str(details.get("Message") or details.get("message") or client_error_code(error))


def http_status_of(error: ClientError) -> int | None:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def classify_mwaa_error(error: ClientError, *, environment: str, action: str) -> DagTriggerError:
    """An MWAA control-plane error (not a RestApi* one): retryable, refused access or permanent."""
    code = client_error_code(error)
    reason = client_error_message(error)
    message = f"MWAA {action} on environment {environment!r} failed: {code}: {reason}"
    status = http_status_of(error)
    if code in THROTTLING_CODES or code in TRANSIENT_CODES or status == 429:
        return TransientTriggerError(message, http_status=status)
    if code in ACCESS_REFUSED_CODES:
        return AccessRefusedError(ACCESS_REFUSED_CODES[code], message, http_status=status)
    if code in PERMANENT_CODES:
        return RejectedError(PERMANENT_CODES[code], message, http_status=status)
    if status is not None and status >= 500:
        return TransientTriggerError(message, http_status=status)
    return RejectedError("mwaa_error", message, http_status=status)


def classify_botocore_failure(
    error: BotoCoreError, *, environment: str, action: str
) -> DagTriggerError:
    """Connection failures and read timeouts are worth retrying; other client faults are bugs."""
    message = f"MWAA {action} on environment {environment!r} failed: {error}"
    # HTTPClientError covers read timeouts and connections closed mid-answer.
    if isinstance(error, BotoConnectionError | HTTPClientError):
        return TransientTriggerError(message)
    # A parameter validation error or similar: the request itself is wrong and stays wrong.
    return RejectedError("mwaa_request_invalid", message)


@contextmanager
def mwaa_errors_classified(*, environment: str, action: str) -> Iterator[None]:
    """Raise botocore failures of an MWAA control-plane call as ``classify_mwaa_error`` says."""
    try:
        yield
    except ClientError as error:
        raise classify_mwaa_error(error, environment=environment, action=action) from error
    except BotoCoreError as error:
        raise classify_botocore_failure(error, environment=environment, action=action) from error


def parse_airflow_major(version: str) -> int:
    major, _, _ = version.strip().partition(".")
    if not major.isdigit():
        raise RejectedError("unknown_airflow_version", f"cannot read Airflow version {version!r}")
    return int(major)


class AirflowMajorResolver:
    """The environment's Airflow major version: configured, or asked of GetEnvironment once."""

    def __init__(self, mwaa_client: Any) -> None:
        self._client = mwaa_client
        self._majors: KeyedCache[str, int] = KeyedCache(self._ask_mwaa)

    def major(self, environment: EnvironmentRef) -> int:
        if environment.airflow_major is not None:
            return environment.airflow_major
        return self._majors.get(environment.name)

    def _ask_mwaa(self, name: str) -> int:
        with mwaa_errors_classified(environment=name, action="GetEnvironment"):
            reply = self._client.get_environment(Name=name)
        version = reply.get("Environment", {}).get("AirflowVersion")
        if not version:
            raise RejectedError(
                "unknown_airflow_version", f"GetEnvironment for {name!r} returned no AirflowVersion"
            )
        return parse_airflow_major(str(version))
