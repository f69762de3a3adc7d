"""Each function's cold start imports only what it uses.

Every handler module is imported in a fresh interpreter, as a new Lambda instance imports it
(its settings from the environment, the bundled routes validated), and the modules it left
loaded are compared with the ones it has no use for: another transport's code, HTTP clients a
function never calls, the OpenAPI models only ``GET /v1/openapi.json`` needs. Import time
itself is measured by ``make bench`` (bench/cold_start.py), not here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: loaded only when an environment uses the transport, or a request needs them
NEVER_AT_COLD_START = {
    "dagtrigger.transports.mwaa_cli",
    "dagtrigger.transports.airflow_rest",
    "aws_lambda_powertools.event_handler.openapi.models",
    "aws_xray_sdk.ext.sqlite3.patch",
    "sqlite3",
}
#: the bundled routes use InvokeRestApi, which needs no HTTP client of ours
HTTP_CLIENTS = {"requests"}

FUNCTIONS = {
    "s3_events": NEVER_AT_COLD_START | HTTP_CLIENTS,
    "schedules": NEVER_AT_COLD_START | HTTP_CLIENTS,
    "reconciler": NEVER_AT_COLD_START | HTTP_CLIENTS,
    # webhooks' secrets come through boto3; the API's routers import no HTTP client either
    "api": NEVER_AT_COLD_START | HTTP_CLIENTS,
}

_PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after_import(function: str) -> set[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("POWERTOOLS_", "AWS_", "ROUTES_", "TABLE_"))
    }
    env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "footprint",
            "AWS_SECRET_ACCESS_KEY": "footprint",
            "AWS_LAMBDA_FUNCTION_NAME": f"footprint-{function}",
            # as on Lambda: Powertools' Tracer is active (and patches libraries) only there
            "LAMBDA_TASK_ROOT": str(REPO / "functions" / function),
            "TABLE_NAME": "footprint-history",
            "POWERTOOLS_METRICS_NAMESPACE": "dagtrigger",
        }
    )
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, f"functions.{function}.app"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_a_cold_start_leaves_unused_modules_unimported(function: str) -> None:
    # Given a fresh interpreter with the function's settings
    # When its handler module is imported (the cold start)
    loaded = _modules_after_import(function)

    # Then it loaded its own service, and none of what it has no use for
    assert f"functions.{function}.app" in loaded
    assert "dagtrigger.dependencies" in loaded
    assert sorted(FUNCTIONS[function] & loaded) == []
