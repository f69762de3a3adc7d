"""Real Apache Airflow (3.3, 3.0 and 2.11) for the local stack: start on loopback, stop.

`devstack.airflow_install` installs each named version (a bare major means its default). A
server is a set of ManagedProcesses sharing one AIRFLOW_HOME, SQLite database and environment;
`AirflowServer.cli_env()` lets other code run the same Airflow's CLI (the MWAA emulator's
/aws_mwaa/cli does).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

from devstack.airflow_install import VersionSpec, ensure_airflow_venv, release
from devstack.dynamodb_local import DUMMY_CREDENTIALS
from devstack.lifecycle import stopped_on_failure
from devstack.paths import DAGS_DIR, PACKAGE_DIR, write_private_file
from devstack.processes import (
    LOOPBACK,
    ManagedProcess,
    StackError,
    child_env,
    free_port,
    run_to_completion,
    stop_all,
    wait_for_http,
    wait_until,
)
from devstack.procfs import group_pids, pss_bytes

ADMIN_USER = ("admin", "admin")
# A least-privilege account (role "User" on 2.x, "user" on 3.x): enough to trigger DAG runs.
TRIGGER_USER = ("user", "user")
READY_TIMEOUT = 180.0
MIGRATE_TIMEOUT = 300.0
ACCOUNTS_SCRIPT = PACKAGE_DIR / "airflow_accounts.py"


@dataclass
class AirflowServer:
    """A running Airflow: where it answers, who may log in, and the processes behind it."""

    major: int
    version: str
    base_url: str
    username: str
    password: str = field(repr=False)
    home: Path
    venv: Path
    port: int
    user_username: str = TRIGGER_USER[0]
    user_password: str = field(default=TRIGGER_USER[1], repr=False)
    processes: list[ManagedProcess] = field(default_factory=list, repr=False)
    # Holds the JWT and Flask secrets: never put it in a repr or a log line.
    env: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def key(self) -> str:
        """The version's key (major.minor) in devstack.airflow_install.AIRFLOW_RELEASES: "3.0"."""
        return ".".join(self.version.split(".")[:2])

    @property
    def airflow_bin(self) -> Path:
        return self.venv / "bin" / "airflow"

    def cli_env(self) -> dict[str, str]:
        """Environment for this Airflow's `airflow` CLI: the same home, database and config."""
        return dict(self.env)

    def api_prefix(self) -> str:
        return "/api/v2" if self.major >= 3 else "/api/v1"

    def api_url(self, path: str) -> str:
        """Absolute URL of a REST path given relative to the API prefix, e.g. "/dags/x"."""
        return f"{self.base_url}{self.api_prefix()}{path}"

    def api_session(
        self, username: str | None = None, password: str | None = None
    ) -> requests.Session:
        """A requests.Session authenticated as the admin (or the given user) for the REST API."""
        session = requests.Session()
        user = username or self.username
        secret = password if password is not None else self.password
        if self.major >= 3:
            session.headers["Authorization"] = f"Bearer {self._fetch_jwt(user, secret)}"
        else:
            session.auth = (user, secret)
        return session

    def is_running(self) -> bool:
        return bool(self.processes) and all(process.is_running() for process in self.processes)

    def pids(self) -> list[int]:
        """Every live process of every component's process group."""
        return [pid for process in self.processes if process.pid for pid in group_pids(process.pid)]

    def memory_pss_bytes(self) -> int:
        """Proportional set size summed over all the server's process groups."""
        return pss_bytes(self.pids())

    def stop(self) -> None:
        """Stop every component at once (SIGTERM, then SIGKILL after 10 s). Idempotent."""
        stop_all(self.processes)

    def _fetch_jwt(self, username: str, password: str) -> str:
        response = requests.post(
            f"{self.base_url}/auth/token",
            json={"username": username, "password": password},
            timeout=10,
        )
        if response.status_code not in (200, 201):
            raise StackError(
                f"Airflow {self.version}: POST /auth/token for {username!r} answered "
                f"{response.status_code}: {response.text[:200]}"
            )
        token: str = response.json()["access_token"]
        return token


def start_airflow(
    version: VersionSpec,
    *,
    state_dir: Path,
    dags_folder: Path = DAGS_DIR,
    port: int | None = None,
    parallelism: int = 2,
    extra_env: Mapping[str, str] | None = None,
    ready_timeout: float = READY_TIMEOUT,
) -> AirflowServer:
    """Install if needed, migrate the DB, start every component on 127.0.0.1, wait for the API.

    `version` is a key of devstack.airflow_install.AIRFLOW_RELEASES ("3.3", "3.0", "2.11") or a
    bare major (3 or 2) for that major's default version.

    `extra_env` is added to every component's environment (e.g. DAGTRIGGER_CONF_SINK for the
    sample DAGs). On failure, whatever was started is stopped before StackError is raised.
    """
    chosen = release(version)
    venv = ensure_airflow_venv(chosen.key)
    port = port or free_port()
    home = state_dir / "home"
    home.mkdir(parents=True, exist_ok=True)
    server = AirflowServer(
        major=chosen.major,
        version=chosen.version,
        base_url=f"http://{LOOPBACK}:{port}",
        username=ADMIN_USER[0],
        password=ADMIN_USER[1],
        home=home,
        venv=venv,
        port=port,
    )
    settings = _airflow_settings(server, state_dir, dags_folder, parallelism)
    server.env = child_env({**settings, **(extra_env or {})})
    with stopped_on_failure(server):
        _prepare_database(server, state_dir)
        server.processes = _components(server, state_dir)
        for process in server.processes:
            process.start()
        wait_for_http(
            _health_url(server),
            ready_timeout,
            process=server.processes,
            accept=lambda response: response.status_code == 200,
        )
    return server


def wait_for_dag(server: AirflowServer, dag_id: str, timeout: float = 120.0) -> None:
    """Wait until the DAG has been parsed and the REST API knows it."""
    session = server.api_session()

    def dag_is_known() -> bool:
        try:
            return bool(session.get(server.api_url(f"/dags/{dag_id}"), timeout=5).ok)
        except requests.RequestException:
            return False

    wait_until(
        dag_is_known,
        timeout=timeout,
        interval=1.0,
        what=f"DAG {dag_id!r} in Airflow {server.version}",
        process=server.processes,
    )


def set_variable(server: AirflowServer, key: str, value: str) -> None:
    """Create or update the Airflow Variable ``key`` through the REST API, as the admin."""
    session = server.api_session()
    body = {"key": key, "value": value}
    created = session.post(server.api_url("/variables"), json=body, timeout=30)
    if created.status_code == 409:  # Airflow 3 refuses to create it again; 2.x overwrites
        updated = session.patch(server.api_url(f"/variables/{key}"), json=body, timeout=30)
        if not updated.ok:
            raise StackError(
                f"Airflow {server.version}: PATCH variable {key!r} answered "
                f"{updated.status_code}: {updated.text[:200]}"
            )
    elif not created.ok:
        raise StackError(
            f"Airflow {server.version}: POST variable {key!r} answered "
            f"{created.status_code}: {created.text[:200]}"
        )


def _persistent_secrets(state_dir: Path) -> dict[str, str]:
    """Secrets made once per state directory, so restarts keep sessions, tokens and Variables."""
    path = state_dir / "secrets.json"
    existing = json.loads(path.read_text()) if path.exists() else {}
    made = {
        "jwt_secret": existing.get("jwt_secret") or secrets.token_hex(32),  # 64 bytes of hex
        "secret_key": existing.get("secret_key") or secrets.token_hex(32),
        "fernet_key": existing.get("fernet_key")
        or base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }
    if made != existing:
        state_dir.mkdir(parents=True, exist_ok=True)
        write_private_file(path, json.dumps(made))
    return made


def _airflow_settings(
    server: AirflowServer, state_dir: Path, dags_folder: Path, parallelism: int
) -> dict[str, str]:
    """Airflow's configuration, as AIRFLOW__* variables: the shared part, then the major's."""
    secrets_ = _persistent_secrets(state_dir)
    if server.major >= 3:
        by_major = _airflow3_settings(server, secrets_)
    else:
        by_major = _airflow2_settings(server, secrets_)
    return {
        "AIRFLOW_HOME": str(server.home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__FERNET_KEY": secrets_["fernet_key"],
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{server.home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(server.home / "logs"),
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "PATH": f"{server.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "NO_PROXY": LOOPBACK,
        "no_proxy": LOOPBACK,
        # DAGs' boto3 clients (load_export reads file-set manifests) reach only the local
        # stack's moto (the Variable dagtrigger_s3_endpoint_url), never with a user's own keys.
        "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": DUMMY_CREDENTIALS["region_name"],
        **by_major,
    }


def _airflow3_settings(server: AirflowServer, secrets_: dict[str, str]) -> dict[str, str]:
    # MWAA runs FAB's auth manager on Airflow 3 (aws/amazon-mwaa-docker-images,
    # images/airflow/3.0.6/python/mwaa/config/airflow.py), whose roles (Admin, Op, User ...) are
    # the ones IAM maps to; the accounts are made in the database as on Airflow 2.
    return {
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{server.base_url}/execution/",
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
        ),
        "AIRFLOW__API__HOST": LOOPBACK,
        "AIRFLOW__API__PORT": str(server.port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__BASE_URL": server.base_url,
        "AIRFLOW__API__SECRET_KEY": secrets_["secret_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets_["jwt_secret"],
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
    }


def _airflow2_settings(server: AirflowServer, secrets_: dict[str, str]) -> dict[str, str]:
    # Airflow 2 keeps its users in the metadata DB: no passwords file.
    return {
        "AIRFLOW__CORE__EXECUTOR": "SequentialExecutor",  # the only one SQLite allows on 2.x
        "AIRFLOW__API__AUTH_BACKENDS": (
            "airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session"
        ),
        "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": LOOPBACK,
        "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(server.port),
        "AIRFLOW__WEBSERVER__BASE_URL": server.base_url,
        "AIRFLOW__WEBSERVER__WORKERS": "1",
        "AIRFLOW__WEBSERVER__SECRET_KEY": secrets_["secret_key"],
        "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    }


def _prepare_database(server: AirflowServer, state_dir: Path) -> None:
    """Migrate the DB and create the accounts, unless this state dir already has both."""
    done_stamp = state_dir / f".prepared-{server.version}"
    if done_stamp.exists() and (server.home / "airflow.db").exists():
        return  # each CLI start-up costs seconds; a restart on the same state needs neither
    airflow = str(server.airflow_bin)
    logs = state_dir / "logs"
    run_to_completion(
        f"airflow-{server.key} db migrate",
        [airflow, "db", "migrate"],
        env=server.env,
        cwd=server.home,
        log_path=logs / "db-migrate.log",
        timeout=MIGRATE_TIMEOUT,
    )
    # The accounts live in the database (FAB's auth manager, as on MWAA, on Airflow 3 and 2).
    accounts_file = state_dir / "accounts.json"
    write_private_file(accounts_file, json.dumps(_fab_accounts()))
    run_to_completion(
        f"airflow-{server.key} create accounts",
        [
            str(server.venv / "bin" / "python"),
            "-P",  # keep devstack/ off sys.path: its airflow.py would shadow the real one
            str(ACCOUNTS_SCRIPT),
            str(accounts_file),
        ],
        env=server.env,
        cwd=server.home,
        log_path=logs / "create-accounts.log",
        timeout=MIGRATE_TIMEOUT,
    )
    done_stamp.touch()


def _fab_accounts() -> list[dict[str, str]]:
    return [
        {
            "username": username,
            "password": password,
            "role": role,
            "firstname": username.title(),
            "lastname": "Devstack",
            "email": f"{username}@devstack.invalid",
        }
        for (username, password), role in ((ADMIN_USER, "Admin"), (TRIGGER_USER, "User"))
    ]


def _components(server: AirflowServer, state_dir: Path) -> list[ManagedProcess]:
    """The API/web server first (readiness is judged on it), then the background components."""
    airflow = str(server.airflow_bin)
    if server.major >= 3:
        commands = {
            "api-server": [airflow, "api-server"],
            "scheduler": [airflow, "scheduler", "--skip-serve-logs"],
            "dag-processor": [airflow, "dag-processor"],
        }
    else:
        commands = {
            "webserver": [airflow, "webserver", "-w", "1", "-H", LOOPBACK, "-p", str(server.port)],
            "scheduler": [airflow, "scheduler", "--skip-serve-logs"],
        }
    return [
        ManagedProcess(
            f"airflow-{server.key} {name}",
            argv,
            env=server.env,
            cwd=server.home,
            log_path=state_dir / "logs" / f"{name}.log",
        )
        for name, argv in commands.items()
    ]


def _health_url(server: AirflowServer) -> str:
    if server.major >= 3:
        return f"{server.base_url}/api/v2/monitor/health"
    return f"{server.base_url}/health"
