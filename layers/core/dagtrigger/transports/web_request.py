"""One HTTP request to a web server (Airflow's API, MWAA's CLI endpoint), as transports send it."""

from __future__ import annotations

from typing import Any

import requests

from dagtrigger.errors import TransientTriggerError


def send_request(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: tuple[float, float],
    no_answer: str,
    **arguments: Any,
) -> requests.Response:
    """``session.request`` that follows no redirect; getting no answer at all is transient.

    ``no_answer`` starts the error's message (``"Airflow at https://... did not answer GET"``).
    """
    try:
        # Redirects are not followed: a POST must not turn into a GET, nor an answer come from
        # a page that is not the API (a login form, say).
        return session.request(method, url, timeout=timeout, allow_redirects=False, **arguments)
    except (requests.Timeout, requests.ConnectionError) as exc:
        raise TransientTriggerError(f"{no_answer}: {exc}") from None
