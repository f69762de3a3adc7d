"""Calls to a dagtrigger HTTP API, SigV4-signed with botocore as API Gateway's IAM auth wants."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from dagtrigger_cli.target import Target

TIMEOUT_SECONDS = (5, 35)  # connect; read (API Gateway answers within 30 s)


class ApiError(Exception):
    """The API refused a request: its status and problem details (RFC 9457)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(self.message)

    @property
    def message(self) -> str:
        detail = self.problem.get("detail") or self.problem.get("message") or "no details"
        title = self.problem.get("title") or f"HTTP {self.status}"
        return f"{title} ({self.status}): {detail}"


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
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None})
        url = self.target.api_url.rstrip("/") + path + (f"?{query}" if query else "")
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        signed = AWSRequest(method=method, url=url, data=data, headers=dict(headers or {}))
        if data is not None:
            signed.headers["Content-Type"] = "application/json"
        credentials = self.target.session.get_credentials()
        if credentials is None:
            raise ApiError(401, {"title": "no AWS credentials", "detail": "configure a profile"})
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", self.target.region).add_auth(
            signed
        )
        http = self.http or requests.Session()
        answer = http.request(
            method, url, data=data, headers=dict(signed.headers), timeout=TIMEOUT_SECONDS
        )
        payload = _json_or_text(answer)
        if answer.status_code >= 400:
            raise ApiError(answer.status_code, payload if isinstance(payload, dict) else {})
        return payload


def _json_or_text(answer: requests.Response) -> Any:
    if not answer.content:
        return None
    try:
        return answer.json()
    except ValueError:
        return {"detail": answer.text[:500]}
