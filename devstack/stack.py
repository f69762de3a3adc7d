"""The whole local stack in one object: DynamoDB Local, moto, real Airflow, the MWAA emulator
and the Lambda runner driving the handlers from template.yaml.

    with LocalStack(StackConfig()) as stack:
        stack.s3.put_object(Bucket="landing", Key="sales/2026-11-21.csv", Body=b"...")

Everything binds to 127.0.0.1; ``stop()`` stops every process and thread it started.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from devstack.airflow import AirflowServer, start_airflow, wait_for_dag
from devstack.dynamodb_local import (
    DUMMY_CREDENTIALS,
    DynamoDBLocal,
    ensure_dynamodb_local,
    start_dynamodb_local,
)
from devstack.lifecycle import Service, stopped_on_failure
from devstack.moto_server import MotoServer, start_moto
from devstack.mwaa_emulator import MwaaEmulator
from devstack.paths import REPO_ROOT, STATE_DIR
from devstack.procfs import pss_bytes
from devstack.runner import LambdaRunner

DEMO_DIR = Path(__file__).resolve().parent / "demo"
DEMO_ROUTES = DEMO_DIR / "routes.yaml"
TEMPLATE = REPO_ROOT / "template.yaml"
REGION = DUMMY_CREDENTIALS["region_name"]


@dataclass(frozen=True)
class StackConfig:
    airflow_major: int = 3
    mwaa_environment: str = "dagtrigger-demo"
    routes_file: Path = DEMO_ROUTES
    source_bucket: str = "landing"
    state_dir: Path = STATE_DIR / "stack"
    #: shorter than the template's batching window so the demo does not sit waiting
    batching_window_seconds: float = 1.0
    extra_function_env: dict[str, str] = field(default_factory=dict)
    conf_sink: Path | None = None  # where the sample DAGs write the conf they received


class LocalStack(Service):
    def __init__(
        self,
        config: StackConfig,
        *,
        progress: Callable[[str], None] = print,
        airflow: AirflowServer | None = None,
    ) -> None:
        """``airflow``: a running Airflow to use (and leave running) instead of starting one."""
        self.config = config
        self._progress = progress
        self._given_airflow = airflow
        self.dynamodb_local: DynamoDBLocal | None = None
        self.moto: MotoServer | None = None
        self.airflow: AirflowServer | None = None
        self.emulator: MwaaEmulator | None = None
        self.runner: LambdaRunner | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start every part; on any failure stop what was started and re-raise."""
        with stopped_on_failure(self):
            self._start()

    def _start(self) -> None:
        config = self.config
        config.state_dir.mkdir(parents=True, exist_ok=True)
        airflow_box: dict[str, AirflowServer] = {}
        airflow_error: list[BaseException] = []

        def boot_airflow() -> None:
            if self._given_airflow is not None:
                airflow_box["server"] = self._given_airflow
                return
            try:
                extra = {"DAGTRIGGER_CONF_SINK": str(config.conf_sink)} if config.conf_sink else {}
                airflow_box["server"] = start_airflow(
                    config.airflow_major,
                    state_dir=config.state_dir / f"airflow-{config.airflow_major}",
                    extra_env=extra,
                )
            except BaseException as exc:  # reported on the main thread
                airflow_error.append(exc)

        self._progress(
            f"starting Apache Airflow {config.airflow_major} (api-server, scheduler, "
            "dag-processor) on 127.0.0.1"
        )
        airflow_thread = threading.Thread(target=boot_airflow, name="airflow-boot", daemon=True)
        airflow_thread.start()

        try:
            self._progress("starting DynamoDB Local (Amazon's jar, Java 17)")
            ensure_dynamodb_local()
            self.dynamodb_local = start_dynamodb_local(state_dir=config.state_dir / "dynamodb")
            self._progress("starting moto server (S3, SQS, EventBridge, Scheduler)")
            self.moto = start_moto(state_dir=config.state_dir / "moto")
        finally:
            # Wait for Airflow even when the above failed, so that stop() stops it too.
            airflow_thread.join()
            self.airflow = airflow_box.get("server")
        if airflow_error:
            raise airflow_error[0]
        assert self.airflow is not None
        self._progress(f"Airflow {self.airflow.version} is up at {self.airflow.base_url}")
        wait_for_dag(self.airflow, "ingest_sales")

        self._progress("starting the MWAA emulator in front of Airflow")
        self.emulator = MwaaEmulator(config.state_dir / "mwaa")
        self.emulator.start()
        self.emulator.add_environment(
            config.mwaa_environment,
            self.airflow,
            # InvokeRestApi runs as the Airflow role of the caller: "User" is enough to trigger.
            rest_api_credentials=(self.airflow.user_username, self.airflow.user_password),
        )

        self._progress("provisioning template.yaml's resources and starting the Lambda runner")
        function_env = {
            **self.emulator.client_environment(),
            "MWAA_INJECT_HOST_PREFIX": "false",
            "ROUTES_LOCATION": f"file:{config.routes_file}",
            "ROUTES_CACHE_SECONDS": "0",
            **config.extra_function_env,
        }
        self.runner = LambdaRunner(
            TEMPLATE,
            moto_endpoint=self.moto.endpoint_url,
            dynamodb_endpoint=self.dynamodb_local.endpoint_url,
            extra_env=function_env,
            parameter_overrides={
                "MwaaEnvironmentName": config.mwaa_environment,
                "SourceBucketNames": config.source_bucket,
                "CreateSourceBucket": "false",
            },
            batching_window_seconds=config.batching_window_seconds,
        )
        self.runner.provision()
        self.runner.start()
        self.s3.put_bucket_versioning(
            Bucket=config.source_bucket, VersioningConfiguration={"Status": "Enabled"}
        )

    def stop(self) -> None:
        """Stop the runner's threads, the emulator and every process. Safe to call twice."""
        owned_airflow = self.airflow if self.airflow is not self._given_airflow else None
        for part in (self.runner, self.emulator, owned_airflow, self.moto, self.dynamodb_local):
            if part is not None:
                try:
                    part.stop()
                except Exception as exc:  # keep stopping the rest
                    self._progress(f"warning: stopping {type(part).__name__} failed: {exc}")
        self.runner = self.emulator = self.airflow = None
        self.moto = self.dynamodb_local = None

    def memory_pss_bytes(self) -> int:
        """Proportional set size of the whole stack: every server process and this launcher
        (which hosts the MWAA emulator and the Lambda runner)."""
        pids = [os.getpid()]
        if self.airflow is not None:
            pids += self.airflow.pids()
        for server in (self.dynamodb_local, self.moto):
            if server is not None:
                pids += server.process.group_pids()
        return pss_bytes(pids)

    # ------------------------------------------------------------------ clients

    def moto_client(self, service: str) -> Any:
        """A boto3 client of `service` (s3, sqs, events, ...) on the stack's moto server."""
        assert self.moto is not None, "the stack is not started"
        return boto3.client(service, endpoint_url=self.moto.endpoint_url, **DUMMY_CREDENTIALS)

    s3 = property(lambda self: self.moto_client("s3"))
    sqs = property(lambda self: self.moto_client("sqs"))
    events = property(lambda self: self.moto_client("events"))
    secretsmanager = property(lambda self: self.moto_client("secretsmanager"))
    scheduler = property(lambda self: self.moto_client("scheduler"))

    def history_table(self) -> Any:
        assert self.dynamodb_local is not None
        assert self.runner is not None
        resources = self.runner.resources
        resource = boto3.resource(
            "dynamodb",
            endpoint_url=self.dynamodb_local.endpoint_url,
            config=Config(retries={"mode": "standard"}),
            **DUMMY_CREDENTIALS,
        )
        return resource.Table(resources["TriggerHistoryTable"].name)
