"""The baseline side: bench/baseline/sample_handler.py invoked as Lambda invokes it for S3.

S3 invokes the function asynchronously, once per event: Lambda scales out (here a thread pool,
50 by default) and retries a failed invocation twice (after 1 and 2 minutes on AWS; scaled
to the runner's 1 s and 2 s here). The handler runs unchanged; it only needs pointing at the
emulator, as a user would by configuration: its variables (environment, DAG, endpoint), no
host prefix (``AWS_DISABLE_HOST_PREFIX_INJECTION``, botocore's own setting: the emulator is on
127.0.0.1), and trust in the emulator's local CA for its ``http.client.HTTPSConnection``
(``SSL_CERT_FILE``, read by OpenSSL's default verify paths; the sample passes no context).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.events import DAG_ID, PutObject, eventbridge_event
from devstack.dynamodb_local import DUMMY_CREDENTIALS

SAMPLE = Path(__file__).resolve().parent / "baseline" / "sample_handler.py"
RETRY_DELAYS = (1.0, 2.0)


@contextlib.contextmanager
def environment(variables: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class BaselineOutcome:
    invocations: int = 0  # every attempt, retries included
    events: int = 0
    succeeded: int = 0  # events whose some attempt succeeded
    failed: int = 0  # events that failed all three attempts
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class SampleLambda:
    """The sample's module loaded with the emulator's settings; invoke it per event."""

    def __init__(
        self,
        *,
        mwaa_endpoint: str,
        environment_name: str,
        ca_bundle: Path,
        concurrency: int = 50,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        self._ca_bundle = ca_bundle
        self._concurrency = concurrency
        self._retry_delays = retry_delays
        variables = {
            "MWAA_ENVIRONMENT_NAME": environment_name,
            "DAG_ID": DAG_ID,
            "MWAA_ENDPOINT_URL": mwaa_endpoint,
            "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
            "AWS_DEFAULT_REGION": DUMMY_CREDENTIALS["region_name"],
            "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIALS["aws_secret_access_key"],
        }
        with environment(variables):
            self.module = _load(SAMPLE)

    def invoke_all(self, objects: list[PutObject]) -> BaselineOutcome:
        """One asynchronous invocation per object's event, retried twice on failure."""
        outcome = BaselineOutcome(events=len(objects))
        lock = threading.Lock()

        def one(obj: PutObject) -> None:
            event = {"Records": [{"body": json.dumps(eventbridge_event(obj))}]}
            for attempt in range(len(self._retry_delays) + 1):
                if attempt:
                    time.sleep(self._retry_delays[attempt - 1])
                try:
                    self.module.lambda_handler(event, None)
                except Exception as error:  # what Lambda records as a failed invocation
                    name = type(error).__name__
                    with lock:
                        outcome.invocations += 1
                        outcome.errors[name] = outcome.errors.get(name, 0) + 1
                    continue
                with lock:
                    outcome.invocations += 1
                    outcome.succeeded += 1
                return
            with lock:
                outcome.failed += 1

        started = time.monotonic()
        with (
            environment({"SSL_CERT_FILE": str(self._ca_bundle)}),
            ThreadPoolExecutor(max_workers=self._concurrency) as pool,
        ):
            list(pool.map(one, objects))
        outcome.seconds = time.monotonic() - started
        return outcome


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_sample_handler", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def describe_errors(errors: Mapping[str, Any]) -> str:
    return ", ".join(f"{name} x{count}" for name, count in sorted(errors.items())) or "none"
