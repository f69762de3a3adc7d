"""MWAA's error answers, shaped so botocore raises the modeled exception class.

botocore's rest-json parser takes the error code from the ``x-amzn-ErrorType`` header and the
message from the body's ``message`` (or ``Message``) key; the members of a modeled error shape
(``RestApiStatusCode``, ``RestApiResponse``) are read from the JSON body and land at the top level
of ``ClientError.response``. HTTP statuses follow botocore's service model for MWAA
(``botocore.session.get_session().get_service_model("mwaa")``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Shape name -> HTTP status, from the MWAA service model (2020-07-01). Both RestApi* exceptions
# are modeled as 400: the Airflow status travels in RestApiStatusCode, not in the HTTP status
# (aws/aws-sdk-go-v2#3101: "the 400 is the AWS service-level status code").
MODELED_ERROR_STATUS: dict[str, int] = {
    "AccessDeniedException": 403,
    "InternalServerException": 500,
    "ResourceNotFoundException": 404,
    "RestApiClientException": 400,
    "RestApiServerException": 400,
    "ServiceUnavailableException": 503,
    "ValidationException": 400,
}
# Not in the MWAA model: the "Common Errors" every AWS API Reference (MWAA's included) lists, sent
# by AWS front ends before any operation runs, with the code in x-amzn-ErrorType: an expired
# session token (ExpiredTokenException, 403), an access key AWS no longer knows, deleted or revoked
# (UnrecognizedClientException, 403), an unknown operation (UnknownOperationException, 404), and
# request throttling (ThrottlingException, documented as HTTP 400, not 429; botocore retries it by
# its code). Recorded with their sources in tests/contract/mwaa_documented/.
UNMODELED_ERROR_STATUS: dict[str, int] = {
    "ThrottlingException": 400,
    "MissingAuthenticationTokenException": 403,
    "ExpiredTokenException": 403,
    "UnrecognizedClientException": 403,
    "UnknownOperationException": 404,
}
ERROR_STATUS: dict[str, int] = {**MODELED_ERROR_STATUS, **UNMODELED_ERROR_STATUS}


@dataclass
class MwaaError(Exception):
    """An error answer of the control plane: shape name, message and extra body members."""

    shape: str
    message: str = ""
    members: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.shape not in ERROR_STATUS:
            raise ValueError(
                f"unknown MWAA error shape {self.shape!r}; use one of {sorted(ERROR_STATUS)}"
            )
        super().__init__(f"{self.shape}: {self.message}")

    @property
    def status(self) -> int:
        return ERROR_STATUS[self.shape]

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = dict(self.members)
        if self.message:
            # AccessDeniedException's model member is "Message"; every other shape's is "message".
            key = "Message" if self.shape == "AccessDeniedException" else "message"
            body[key] = self.message
        return body


def validation_error(message: str) -> MwaaError:
    return MwaaError("ValidationException", message)


def not_found(environment: str) -> MwaaError:
    return MwaaError("ResourceNotFoundException", f"Environment {environment} not found.")


def rest_api_error(status_code: int, response: Any) -> MwaaError:
    """Airflow's 4xx becomes RestApiClientException, its 5xx RestApiServerException.

    Real MWAA leaves the message empty and carries Airflow's status and JSON body (the Airflow
    provider's MwaaHook tests record such an answer: HTTP 400, Code RestApiClientException,
    Message "", RestApiStatusCode 404, RestApiResponse {"detail": ..., "status": 404, ...}).
    """
    shape = "RestApiServerException" if status_code >= 500 else "RestApiClientException"
    return MwaaError(shape, "", {"RestApiStatusCode": status_code, "RestApiResponse": response})
