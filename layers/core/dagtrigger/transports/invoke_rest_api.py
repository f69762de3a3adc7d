"""MWAA ``InvokeRestApi``: Airflow's REST API through the MWAA control plane (Airflow >= 2.4.3).

The ``Path`` is relative to the Airflow API root MWAA picks for the environment's version and is
at most 64 characters (botocore model ``RestApiPath``; botocore itself checks only the minimum).
Airflow's 4xx answers arrive as ``RestApiClientException`` and 5xx as ``RestApiServerException``,
both carrying ``RestApiStatusCode`` and ``RestApiResponse``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dagtrigger.clock import utc_now
from dagtrigger.transports.airflow_api import (
    AirflowApiTransport,
    AirflowApiTrigger,
    ApiReply,
)
from dagtrigger.transports.base import EnvironmentRef
from dagtrigger.transports.factory import TransportParts
from dagtrigger.transports.mwaa_environment import (
    AirflowMajorResolver,
    classify_botocore_failure,
    classify_mwaa_error,
    client_error_code,
)

#: botocore's ``RestApiPath`` maximum length
INVOKE_REST_API_MAX_PATH = 64
_AIRFLOW_ANSWER_CODES = frozenset({"RestApiClientException", "RestApiServerException"})


class InvokeRestApiCarrier:
    """One ``mwaa.invoke_rest_api`` call per Airflow request; Airflow's errors become replies."""

    max_path_length: int | None = INVOKE_REST_API_MAX_PATH

    def __init__(
        self, environment: EnvironmentRef, mwaa_client: Any, resolver: AirflowMajorResolver
    ) -> None:
        self._environment = environment
        self._client = mwaa_client
        self._resolver = resolver

    def airflow_major(self) -> int:
        return self._resolver.major(self._environment)

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
    ) -> ApiReply:
        arguments: dict[str, Any] = {"Name": self._environment.name, "Path": path, "Method": method}
        if body is not None:
            arguments["Body"] = dict(body)
        if query is not None:
            arguments["QueryParameters"] = dict(query)
        try:
            response = self._client.invoke_rest_api(**arguments)
        except ClientError as error:
            if client_error_code(error) in _AIRFLOW_ANSWER_CODES:
                return _reply_from_error(error)
            raise classify_mwaa_error(
                error, environment=self._environment.name, action=f"InvokeRestApi {method} {path}"
            ) from error
        except BotoCoreError as error:
            raise classify_botocore_failure(
                error, environment=self._environment.name, action=f"InvokeRestApi {method} {path}"
            ) from error
        return ApiReply(
            int(response.get("RestApiStatusCode", 200)), response.get("RestApiResponse")
        )


def _reply_from_error(error: ClientError) -> ApiReply:
    response = error.response
    status = response.get("RestApiStatusCode")
    if status is None:  # not expected, but the exception class alone still tells 4xx from 5xx
        status = 500 if client_error_code(error) == "RestApiServerException" else 400
    body = response.get("RestApiResponse")
    if body is None:
        body = response.get("Error", {}).get("Message", "")
    return ApiReply(int(status), body)


class InvokeRestApiTransport(AirflowApiTransport):
    """``AirflowTransport`` over MWAA ``InvokeRestApi`` for one environment."""

    def __init__(
        self,
        environment: EnvironmentRef,
        mwaa_client: Any,
        *,
        resolver: AirflowMajorResolver | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        carrier = InvokeRestApiCarrier(
            environment, mwaa_client, resolver or AirflowMajorResolver(mwaa_client)
        )
        api = AirflowApiTrigger(
            carrier, path_too_long_code="dag_id_too_long_for_invoke_rest_api", now=now
        )
        super().__init__(environment, api)


def build(environment: EnvironmentRef, parts: TransportParts) -> InvokeRestApiTransport:
    return InvokeRestApiTransport(environment, parts.mwaa_client())
