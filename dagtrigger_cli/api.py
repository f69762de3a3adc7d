"""Calls to a dagtrigger HTTP API, SigV4-signed with botocore as API Gateway's IAM auth wants."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlencode

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from dagtrigger_cli.target import Target

TIMEOUT_SECONDS = (5, 35)  # connect; read (API Gateway answers within 30 s)
_OS_ERROR = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


class ApiError(Exception):
    """The API refused a request: its status and problem details (RFC 9457)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """``no trigger with id 't-…' (404 Not Found)``: API Gateway's own answers (403, 404
        without a route) carry only a ``message``."""
        detail = self.problem.get("detail") or self.problem.get("message") or "no details"
        title = self.problem.get("title") or _reason_phrase(self.status)
        status = str(self.status) if title.lower() == detail.lower() else f"{self.status} {title}"
        return f"{detail} ({status})".replace("\n", " ")


class ApiUnreachableError(requests.RequestException):
    """No answer from the API: nothing listens there, or it did not answer in time."""


@dataclass
class ApiClient:
    target: Target
    http: requests.Session | None = None

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None, *, headers: dict[str, str] | None = None) -> Any:
        return self.request("POST", path, body=body, headers=headers)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send a signed request; the answer's JSON, or ``ApiError`` for a 4xx/5xx answer."""
        # Encoded as SigV4's canonical query is (%20, %2F): botocore signs the query as sent.
        query = urlencode(
            {k: v for k, v in (params or {}).items() if v is not None}, quote_via=quote, safe=""
        )
        url = self.target.api_url.rstrip("/") + path + (f"?{query}" if query else "")
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        signed = AWSRequest(method=method, url=url, data=data, headers=dict(headers or {}))
        if data is not None:
            signed.headers["Content-Type"] = "application/json"
        credentials = self.target.session.get_credentials()
        if credentials is None:
            raise ApiError(
                401,
                {
                    "title": "not signed",
                    "detail": "no AWS credentials found: pass --profile, or set AWS_PROFILE or "
                    "AWS_ACCESS_KEY_ID",
                },
            )
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", self.target.region).add_auth(
            signed
        )
        http = self.http or requests.Session()
        try:
            answer = http.request(
                method, url, data=data, headers=dict(signed.headers), timeout=TIMEOUT_SECONDS
            )
        except requests.Timeout:
            raise ApiUnreachableError(
                f"{self.target.api_url} did not answer within {TIMEOUT_SECONDS[1]} s"
            ) from None
        except requests.ConnectionError as error:
            found = _OS_ERROR.search(str(error))
            reason = found.group(1).strip().lower() if found else "could not connect"
            raise ApiUnreachableError(f"{self.target.api_url}: {reason}") from None
        payload = _json_or_text(answer)
        if answer.status_code >= 400:
            raise ApiError(answer.status_code, payload if isinstance(payload, dict) else {})
        return payload


def _reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "HTTP error"


def _json_or_text(answer: requests.Response) -> Any:
    if not answer.content:
        return None
    try:
        return answer.json()
    except ValueError:
        return {"detail": answer.text[:500]}
