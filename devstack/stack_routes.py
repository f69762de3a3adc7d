"""The routes file the local stack runs with: the user's, checked, then fitted to this stack.

The local stack has one Airflow and one MWAA emulator, so they serve every environment of the
routes file: an MWAA environment (``invoke_rest_api`` or ``cli``) becomes an emulator
environment of the same name in front of the local Airflow, told its major version; an
``airflow_rest`` one is pointed at the local Airflow's API, with its trigger user's credentials
in (moto's) Secrets Manager. A chosen transport replaces every environment's own. The fitted
copy is written under the stack's state folder; the user's file is never changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from dagtrigger.transports.base import TransportKind

if TYPE_CHECKING:
    from dagtrigger.routes import RoutesFile

#: the transports `make up TRANSPORT=...` accepts: those a routes file's environment may name
TRANSPORTS: tuple[str, ...] = tuple(kind.value for kind in TransportKind)
MWAA_TRANSPORTS = frozenset({TransportKind.INVOKE_REST_API.value, TransportKind.CLI.value})
#: where an airflow_rest environment finds the local Airflow's trigger user
AIRFLOW_CREDENTIALS_SECRET = "devstack/airflow-credentials"  # noqa: S105 - a name, not a secret
_AIRFLOW_REST_ONLY = ("base_url", "credentials_secret", "allow_plain_http")


class RoutesFileError(ValueError):
    """The routes file cannot run on the local stack; the message says why, field and line."""


@dataclass(frozen=True)
class DropExample:
    """An object to drop that starts a run of the routes file's first active S3 route."""

    bucket: str
    key: str
    route: str
    dag_id: str
    #: False when the route's glob, regex or size bounds may refuse the example key
    certain: bool


@dataclass(frozen=True)
class StackRoutes:
    """The fitted routes file and what the stack must provide for it."""

    path: Path
    source: Path
    #: MWAA environment names, in file order (the emulator serves each)
    mwaa_environments: tuple[str, ...]
    #: every environment name, whatever its transport, in file order: what the template's
    #: MwaaEnvironmentNames grants (the functions refuse a routes file naming another)
    environment_names: tuple[str, ...]
    #: every bucket an S3 route listens to, in file order
    buckets: tuple[str, ...]
    uses_airflow_rest: bool
    #: the transport of each environment alias, as the stack runs it
    transports: dict[str, str]
    drop_example: DropExample | None = None


def check_transport(transport: str | None) -> str | None:
    if transport is not None and transport not in TRANSPORTS:
        raise RoutesFileError(
            f"unknown transport {transport!r}: choose one of {', '.join(TRANSPORTS)}"
        )
    return transport


def check_routes_file(path: Path) -> None:
    """Raise `RoutesFileError` with the routes loader's own message if `path` is not valid."""
    _parse(_read(path), source=str(path))


def fit_routes(
    source: Path,
    destination: Path,
    *,
    airflow_major: int,
    airflow_base_url: str,
    transport: str | None = None,
) -> StackRoutes:
    """Write `source` fitted to the local stack (see the module docstring) to `destination`."""
    check_transport(transport)
    text = _read(source)
    _parse(text, source=str(source))
    document: dict[str, Any] = yaml.safe_load(text)
    for environment in document["environments"].values():
        if transport is not None:
            environment["transport"] = transport
        environment["airflow_major"] = airflow_major
        kind = environment.setdefault("transport", TransportKind.INVOKE_REST_API.value)
        for name in _AIRFLOW_REST_ONLY:
            environment.pop(name, None)
        if kind == TransportKind.AIRFLOW_REST.value:
            environment.update(
                base_url=airflow_base_url,
                credentials_secret=AIRFLOW_CREDENTIALS_SECRET,
                allow_plain_http=True,
            )
    if transport == TransportKind.CLI.value:
        # The MWAA CLI has no command for asset events: such routes cannot run on this stack.
        from dagtrigger.routes import RoutesFile

        for list_name in RoutesFile.ROUTE_LISTS:
            document[list_name] = [
                route for route in document.get(list_name) or () if "asset" not in route
            ]
    fitted = (
        f"# {source} as the local stack runs it (written by devstack; edit the source instead)\n"
        + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    )
    routes = _parse(fitted, source=f"{destination} (fitted from {source})")
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(fitted, encoding="utf-8")
    transports = {alias: env.transport.value for alias, env in routes.environments.items()}
    buckets = dict.fromkeys(bucket for route in routes.s3 for bucket in route.buckets)
    return StackRoutes(
        path=destination,
        source=source,
        mwaa_environments=tuple(
            dict.fromkeys(
                env.name
                for env in routes.environments.values()
                if env.transport.value in MWAA_TRANSPORTS
            )
        ),
        environment_names=tuple(dict.fromkeys(env.name for env in routes.environments.values())),
        buckets=tuple(buckets),
        uses_airflow_rest=TransportKind.AIRFLOW_REST.value in transports.values(),
        transports=transports,
        drop_example=_drop_example(routes),
    )


def _drop_example(routes: RoutesFile) -> DropExample | None:
    route = next(
        (route for route in routes.s3 if not route.paused and route.dag_id is not None), None
    )
    if route is None:
        return None
    key = f"{route.prefix or ''}{date.today().isoformat()}{route.suffix or '.csv'}"
    return DropExample(
        bucket=route.buckets[0],
        key=key,
        route=route.name,
        dag_id=str(route.dag_id),
        certain=not (route.glob or route.regex or route.min_size or route.max_size),
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise RoutesFileError(f"cannot read routes file {path}: {error.strerror}") from None


def _parse(text: str, *, source: str) -> RoutesFile:
    # Imported here: the loader brings the layer's logging with it, which only this needs.
    from dagtrigger.errors import RoutesConfigError
    from dagtrigger.routes import parse_routes

    try:
        return parse_routes(text, source=source)
    except RoutesConfigError as error:
        raise RoutesFileError(str(error)) from None
