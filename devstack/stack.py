"""The whole local stack in one object: DynamoDB Local, moto, real Airflow, the MWAA emulator
and the Lambda runner driving the handlers from template.yaml.

    with LocalStack(StackConfig()) as stack:
        stack.s3.put_object(Bucket="landing", Key="sales/2026-11-21.csv", Body=b"...")

Everything binds to 127.0.0.1; ``stop()`` stops every process and thread it started.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.config import Config

from devstack.airflow import AirflowServer, set_variable, start_airflow, wait_for_dag
from devstack.airflow_install import release
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
from devstack.runner import FunctionLogFile, LambdaRunner
from devstack.stack_routes import (
    AIRFLOW_CREDENTIALS_SECRET,
    StackRoutes,
    check_routes_file,
    check_transport,
    fit_routes,
)

DEMO_DIR = Path(__file__).resolve().parent / "demo"
DEMO_ROUTES = DEMO_DIR / "routes.yaml"
TEMPLATE = REPO_ROOT / "template.yaml"
REGION = DUMMY_CREDENTIALS["region_name"]
#: where file sets write their manifests (the template's SetManifestLocation, so the functions
#: may write there and routes may name a location under it); the stack creates the bucket
MANIFEST_BUCKET = "dagtrigger-manifests"
SET_MANIFEST_LOCATION = f"s3://{MANIFEST_BUCKET}/"
#: the Airflow Variable the sample DAGs' boto3 clients take S3's endpoint from (moto's here)
S3_ENDPOINT_VARIABLE = "dagtrigger_s3_endpoint_url"


@dataclass(frozen=True)
class StackConfig:
    #: the Airflow to run: a major (3: the newest, 2: MWAA's newest Airflow 2) or a version key
    #: of devstack.airflow_install.AIRFLOW_RELEASES ("3.0": MWAA's newest Airflow 3)
    airflow_version: str = "3"
    #: the emulator's environment when the routes file names no MWAA environment
    mwaa_environment: str = "dagtrigger-demo"
    #: the user's routes file; the stack runs a copy fitted to it (`devstack.stack_routes`)
    routes_file: Path = DEMO_ROUTES
    #: replaces the transport of every environment of the routes file (None: keep theirs)
    transport: str | None = None
    #: the bucket files are dropped in, when the routes file's S3 routes name it
    source_bucket: str = "landing"
    state_dir: Path = STATE_DIR / "stack"
    #: shorter than the template's batching window so the demo does not sit waiting
    batching_window_seconds: float = 1.0
    extra_function_env: dict[str, str] = field(default_factory=dict)
    conf_sink: Path | None = None  # where the sample DAGs write the conf they received
    #: where the functions' logs go (None: this process's stdout and stderr)
    function_log: Path | None = None
    #: also show the functions' logs on the console (with `function_log`)
    echo_function_logs: bool = False
    #: run every handler in this process, one at a time, instead of in execution environments of
    #: their own (for tools that hook into the handlers' work here, e.g. a botocore event hook)
    in_process_functions: bool = False


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
        self.routes: StackRoutes | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start every part; on any failure stop what was started and re-raise."""
        with stopped_on_failure(self):
            self._start()

    def _start(self) -> None:
        config = self.config
        # A bad routes file or transport fails here, before anything starts.
        check_transport(config.transport)
        check_routes_file(config.routes_file)
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
                    config.airflow_version,
                    state_dir=config.state_dir / f"airflow-{release(config.airflow_version).key}",
                    extra_env=extra,
                )
            except BaseException as exc:  # reported on the main thread
                airflow_error.append(exc)

        self._progress(
            f"starting Apache Airflow {release(config.airflow_version).version} "
            "(api-server, scheduler, dag-processor) on 127.0.0.1"
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

        self.routes = routes = fit_routes(
            config.routes_file,
            config.state_dir / "routes.yaml",
            airflow_major=self.airflow.major,
            airflow_base_url=self.airflow.base_url,
            transport=config.transport,
        )
        self._progress("starting the MWAA emulator in front of Airflow")
        self.emulator = MwaaEmulator(config.state_dir / "mwaa")
        self.emulator.start()
        for name in routes.mwaa_environments or (config.mwaa_environment,):
            self.emulator.add_environment(
                name,
                self.airflow,
                # InvokeRestApi runs as the Airflow role of the caller: "User" is enough to trigger.
                rest_api_credentials=(self.airflow.user_username, self.airflow.user_password),
            )
        if routes.uses_airflow_rest:
            self.secretsmanager.create_secret(
                Name=AIRFLOW_CREDENTIALS_SECRET,
                SecretString=json.dumps(
                    {"username": self.airflow.user_username, "password": self.airflow.user_password}
                ),
            )

        self._progress("provisioning template.yaml's resources and starting the Lambda runner")
        function_env = {
            **self.emulator.client_environment(),
            "MWAA_INJECT_HOST_PREFIX": "false",
            "ROUTES_LOCATION": f"file:{routes.path}",
            "ROUTES_CACHE_SECONDS": "0",
            **config.extra_function_env,
        }
        parameters = {
            # Every environment of the routes file (each MWAA one is an emulator environment,
            # all in front of the one local Airflow): the functions refuse routes naming others.
            "MwaaEnvironmentNames": ",".join(routes.environment_names),
            "SourceBucketNames": ",".join(self.source_buckets),
            "CreateSourceBucket": "false",
            "SetManifestLocation": SET_MANIFEST_LOCATION,
        }
        if config.transport is not None:
            parameters["MwaaTransport"] = config.transport
        self.runner = LambdaRunner(
            TEMPLATE,
            moto_endpoint=self.moto.endpoint_url,
            dynamodb_endpoint=self.dynamodb_local.endpoint_url,
            extra_env=function_env,
            parameter_overrides=parameters,
            batching_window_seconds=config.batching_window_seconds,
            in_process=config.in_process_functions,
            function_log=(
                FunctionLogFile(config.function_log, echo=config.echo_function_logs)
                if config.function_log
                else None
            ),
        )
        self.runner.provision()
        self.runner.start()
        for bucket in self.source_buckets:
            self.s3.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
            )
        self.s3.create_bucket(Bucket=MANIFEST_BUCKET)
        # The sample DAG load_export reads manifests with boto3: here from moto.
        set_variable(self.airflow, S3_ENDPOINT_VARIABLE, self.moto.endpoint_url)

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
        self.routes = None

    @property
    def source_buckets(self) -> tuple[str, ...]:
        """The buckets whose new objects reach the functions: those the S3 routes name."""
        assert self.routes is not None, "the stack is not started"
        return self.routes.buckets or (self.config.source_bucket,)

    @property
    def source_bucket(self) -> str:
        """The bucket to drop files in: the configured one if a route names it, else the first."""
        buckets = self.source_buckets
        return self.config.source_bucket if self.config.source_bucket in buckets else buckets[0]

    @property
    def mwaa_environment(self) -> str:
        """The routes file's first MWAA environment (the template grants every one)."""
        assert self.routes is not None, "the stack is not started"
        return next(iter(self.routes.mwaa_environments), self.config.mwaa_environment)

    def resources(self) -> dict[str, str]:
        """What a user, or the `dagtrigger` command, needs to drive the running stack by hand
        (``make up`` writes it to its state file as ``resources``)."""
        airflow, moto, dynamodb_local = self.airflow, self.moto, self.dynamodb_local
        emulator, runner = self.emulator, self.runner
        if not (airflow and moto and dynamodb_local and emulator and runner and self.routes):
            raise RuntimeError("the stack is not started")
        provisioned = runner.resources
        return {
            "region": REGION,
            "moto_endpoint": moto.endpoint_url,
            "dynamodb_endpoint": dynamodb_local.endpoint_url,
            "table": provisioned["TriggerHistoryTable"].name,
            "queue_url": provisioned.queue_url(provisioned["S3EventsQueue"].arn),
            "dlq_url": provisioned.queue_url(provisioned["S3EventsDeadLetterQueue"].arn),
            "bucket": self.source_bucket,
            "api_url": runner.http_api_url,
            "event_bus": "default",
            "airflow_url": airflow.base_url,
            "airflow_user": airflow.username,
            "airflow_password": airflow.password,
            "mwaa_endpoint": emulator.control_plane_url,
            "mwaa_environment": self.mwaa_environment,
            "routes_file": str(self.routes.path),
        }

    def memory_pss_bytes(self) -> int:
        """Proportional set size of the whole stack: every server process and this launcher
        (which hosts the MWAA emulator and the Lambda runner), and the functions' execution
        environments."""
        pids = [os.getpid()]
        if self.runner is not None:
            pids += self.runner.function_pids()
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

    # ------------------------------------------------------------------ scenes

    @contextmanager
    def s3_events_held_back(self, bucket: str | None = None) -> Iterator[None]:
        """S3 sends no event for what is written to ``bucket`` (the source bucket) meanwhile:
        its EventBridge notifications are off, so a test or demo delivers events in its order."""
        s3, name = self.s3, bucket or self.source_bucket
        s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration={})
        try:
            yield
        finally:
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )

    @contextmanager
    def s3_routes_added(self, *routes: dict[str, Any]) -> Iterator[None]:
        """The stack's routes file with ``routes`` added to its S3 routes (the functions read
        it again on every event), as it was afterwards."""
        assert self.routes is not None, "the stack is not started"
        path = self.routes.path
        original = path.read_text(encoding="utf-8")
        document = yaml.safe_load(original)
        document["s3"].extend(routes)
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        try:
            yield
        finally:
            path.write_text(original, encoding="utf-8")
