"""`dagtrigger routes check FILE` and `dagtrigger routes test FILE ...`: a routes file on this
machine, checked by the loader the functions use and dry-run by their own routing (the layer's
``dagtrigger.dry_run``). Offline: no stack, no AWS calls, nothing triggered."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table
from rich.text import Text

from dagtrigger.clock import utc_now
from dagtrigger.conf import compact_json
from dagtrigger.dry_run import DryRunEvent, DryRunLimits, DryRunReport, dry_run
from dagtrigger.errors import MalformedRequestError, RoutesConfigError
from dagtrigger.routes import RoutesFile, parse_routes
from dagtrigger.routes.model import RouteBase, S3Route, WebhookRoute
from dagtrigger.trigger.verdict import RouteVerdict, Verdict
from dagtrigger.validation import field_problems, format_location, short_repr
from dagtrigger_cli.output import console, fail, print_json

app = typer.Typer(
    no_args_is_help=True,
    help="Check a routes file, and dry-run events against it (offline: nothing is triggered).",
)

RoutesPath = Annotated[Path, typer.Argument(help="the routes file (YAML or JSON)")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON, for scripts")]

#: the option that gives each field of a dry-run event, to name it in errors
_OPTION_OF = {
    ("s3", "bucket"): "--bucket",
    ("s3", "key"): "--key",
    ("s3", "size"): "--size",
    ("s3", "version_id"): "--version-id",
    ("s3", "etag"): "--etag",
    ("s3", "sequencer"): "--sequencer",
    ("s3", "event_time"): "--event-time",
    ("webhook", "name"): "--webhook",
    ("webhook", "body"): "--payload",
    ("webhook", "headers"): "--header",
    ("webhook", "received_at"): "--received-at",
    ("schedule", "route"): "--schedule",
    ("schedule", "schedule_arn"): "--schedule-arn",
    ("schedule", "scheduled_time"): "--scheduled-time",
    ("schedule", "conf"): "--conf",
}
#: pydantic errors whose message does not show the value at fault
_SHOW_VALUE = frozenset(
    {"string_pattern_mismatch", "datetime_from_date_parsing", "datetime_parsing"}
)
_VERDICT_STYLES = {
    Verdict.TRIGGER: "green",
    Verdict.REJECT: "yellow",
    Verdict.PAUSED: "dim",
    Verdict.NO_MATCH: "dim",
    Verdict.OTHER_SOURCE: "dim",
}


# ------------------------------------------------------------------------------------- check


@app.command()
def check(file: RoutesPath, as_json: AsJson = False) -> None:
    """Validate a routes file: each problem with its field and line (exit 1), else a summary.

    The file is read by the loader the functions use: a file that passes here loads in the
    stack.
    """
    try:
        routes = parse_routes(_read_text(file), source=str(file))
    except RoutesConfigError as invalid:
        _report_problems(file, invalid, as_json=as_json)
        raise typer.Exit(code=1) from None
    if as_json:
        print_json({"file": str(file), "valid": True, **_summary_document(routes)})
        return
    _print_summary(file, routes)


def _report_problems(file: Path, invalid: RoutesConfigError, *, as_json: bool) -> None:
    problems = invalid.problems
    if as_json:
        listed = [
            {"location": problem.location, "line": problem.line, "message": problem.message}
            for problem in problems
        ]
        print_json({"file": str(file), "valid": False, "problems": listed})
        return
    count = len(problems)
    console.print(
        Text(f"{file} is not a valid routes file ({count} problem{'s' if count != 1 else ''}):")
    )
    for problem in problems:
        console.print(Text(f"  {problem}"))


def _summary_document(routes: RoutesFile) -> dict[str, Any]:
    return {
        "environments": {
            alias: environment.model_dump(mode="json", exclude_none=True)
            for alias, environment in routes.environments.items()
        },
        "routes": [
            {
                "kind": kind,
                "name": route.name,
                "environment": route.environment,
                "dag_id": route.dag_id,
                **({"asset": route.asset} if route.asset is not None else {}),
                "matches": _what_it_matches(route),
                "conf": _conf_form(route),
                "paused": route.paused,
            }
            for kind, _, route in routes.iter_routes()
        ],
    }


def _print_summary(file: Path, routes: RoutesFile) -> None:
    counts = ", ".join(_count(len(getattr(routes, kind)), kind) for kind in RoutesFile.ROUTE_LISTS)
    total = sum(1 for _ in routes.iter_routes())
    environments_count = _count(len(routes.environments), "environment")
    console.print(
        Text(f"{file} is valid: {environments_count}, {_count(total, 'route')} ({counts})")
    )
    environments = Table(title="Environments", title_justify="left")
    for column in ("alias", "name", "transport", "Airflow"):
        environments.add_column(column)
    for alias, environment in routes.environments.items():
        major = environment.airflow_major
        environments.add_row(
            Text(alias),
            Text(environment.name),
            Text(environment.transport.value),
            Text(str(major) if major else "from MWAA"),
        )
    console.print(environments)
    table = Table(title="Routes", title_justify="left")
    for column in ("source", "route", "environment", "target", "matches", "conf", "state"):
        table.add_column(column, overflow="fold")
    for kind, _, route in routes.iter_routes():
        table.add_row(
            Text(kind),
            Text(route.name),
            Text(route.environment),
            Text(route.target),
            Text(_what_it_matches(route)),
            Text(_conf_form(route)),
            Text("paused", style="yellow") if route.paused else Text("live"),
        )
    console.print(table)


def _count(number: int, word: str) -> str:
    """``1 route``, ``3 routes``; a list's name (s3, webhooks) stays as it is."""
    plural = word if word.endswith("s") or word == "s3" else f"{word}s"
    return f"{number} {word if number == 1 else plural}"


def _what_it_matches(route: RouteBase) -> str:
    if isinstance(route, S3Route):
        filters = [f"buckets {', '.join(route.buckets)}"]
        for name in ("prefix", "suffix", "glob", "regex", "min_size", "max_size"):
            value = getattr(route, name)
            if value is not None:
                filters.append(f"{name} {value}")
        return "; ".join(filters)
    if isinstance(route, WebhookRoute):
        matches = f"POST /v1/webhooks/{route.name} ({route.scheme})"
        return f"{matches}; filter {route.filter}" if route.filter else matches
    return "a schedule whose input names this route"


def _conf_form(route: RouteBase) -> str:
    if route.extra is not None:
        return "extra"
    if route.conf is not None:
        return "conf"
    if route.conf_template is not None:
        return "conf_template"
    if isinstance(route, WebhookRoute) and route.conf_jmespath is not None:
        return "conf_jmespath"
    return "default"


# -------------------------------------------------------------------------------------- test


@app.command("test")
def dry_run_event(
    file: RoutesPath,
    bucket: Annotated[str | None, typer.Option(help="S3: the object's bucket")] = None,
    key: Annotated[str | None, typer.Option(help="S3: the object's key, as stored")] = None,
    size: Annotated[int | None, typer.Option(help="S3: the object's size in bytes")] = None,
    version_id: Annotated[str | None, typer.Option(help="S3: the object's version id")] = None,
    etag: Annotated[str | None, typer.Option(help="S3: the object's ETag")] = None,
    sequencer: Annotated[str | None, typer.Option(help="S3: the event's sequencer")] = None,
    event_time: Annotated[
        str | None, typer.Option(help="S3: when the object was created (ISO 8601); default now")
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="S3: the bucket's region; default AWS_REGION")
    ] = None,
    webhook: Annotated[str | None, typer.Option(help="webhook: the route's name")] = None,
    payload: Annotated[
        Path | None, typer.Option(help="webhook: a file holding the body (JSON), as sent")
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option(help="webhook: a request header, 'Name: value' (repeatable)"),
    ] = None,
    received_at: Annotated[
        str | None, typer.Option(help="webhook: when it arrives (ISO 8601); default now")
    ] = None,
    schedule: Annotated[
        str | None, typer.Option(help="schedule: the route a schedule's input names")
    ] = None,
    schedule_arn: Annotated[
        str | None, typer.Option(help="schedule: the schedule's ARN (the run id derives from it)")
    ] = None,
    scheduled_time: Annotated[
        str | None, typer.Option(help="schedule: the scheduled time (ISO 8601); default now")
    ] = None,
    conf: Annotated[
        str | None, typer.Option(help="schedule: the schedule's own conf (a JSON object)")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Dry-run one event against a routes file: nothing is triggered or written.

    The event is an S3 object (--bucket, --key), a webhook delivery (--webhook, --payload) or a
    schedule fire (--schedule). The answer shows the routes it matches, each with its DAG,
    rendered conf and the dag_run_id the stack would use, and why every other route does not
    match. A webhook's signature is not checked.
    """
    given: dict[str, dict[str, Any]] = {
        "--bucket": {"bucket": bucket, "key": key, "size": size, "version_id": version_id,
                     "etag": etag, "sequencer": sequencer, "event_time": event_time,
                     "region": region},
        "--webhook": {"name": webhook, "payload": payload, "headers": header,
                      "received_at": received_at},
        "--schedule": {"route": schedule, "schedule_arn": schedule_arn,
                       "scheduled_time": scheduled_time, "conf": conf},
    }  # fmt: skip
    chosen = _chosen_event(given)
    routes = _load_for_test(file)
    event = _event(chosen, given[chosen])
    try:
        report = dry_run(
            routes,
            event,
            limits=DryRunLimits.defaults(os.environ.get("AWS_REGION")),
            now=utc_now(),
            routes_source=str(file),
        )
    except MalformedRequestError as malformed:
        fail(f"--payload {payload}: {malformed.message}")
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    _print_report(report)


def _chosen_event(given: Mapping[str, Mapping[str, Any]]) -> str:
    """The one event the options describe; a clear refusal of none, several, or a mix."""
    chosen = [option for option, fields in given.items() if _any_set(fields)]
    if not chosen:
        fail(
            "give one event: --bucket and --key (an S3 object), --webhook and --payload "
            "(a webhook delivery) or --schedule (a schedule fire)"
        )
    if len(chosen) > 1:
        events = " and ".join(chosen)
        fail(
            f"give one event only: {events} are different events ({', '.join(_set_options(given))})"
        )
    option = chosen[0]
    leading = next(iter(given[option]))
    if given[option][leading] is None:
        others = _set_options({option: given[option]})
        fail(f"{', '.join(others)} {'needs' if len(others) == 1 else 'need'} {option}")
    if option == "--bucket" and given[option]["key"] is None:
        fail("--bucket needs --key (the object's key)")
    if option == "--webhook" and given[option]["payload"] is None:
        fail("--webhook needs --payload FILE (the delivery's JSON body)")
    return option


def _any_set(fields: Mapping[str, Any]) -> bool:
    return any(value is not None for value in fields.values())


def _set_options(given: Mapping[str, Mapping[str, Any]]) -> list[str]:
    kinds = {"--bucket": "s3", "--webhook": "webhook", "--schedule": "schedule"}
    return [
        _OPTION_OF.get((kinds[option], name), f"--{name.replace('_', '-')}")
        for option, fields in given.items()
        for name, value in fields.items()
        if value is not None
    ]


def _load_for_test(file: Path) -> RoutesFile:
    try:
        return parse_routes(_read_text(file), source=str(file))
    except RoutesConfigError as invalid:
        first = invalid.problems[0] if invalid.problems else str(invalid)
        more = len(invalid.problems) - 1
        others = f" (and {more} more)" if more > 0 else ""
        fail(
            f"{file} is not a valid routes file: {first}{others}; "
            f"see dagtrigger routes check {file}"
        )


def _event(option: str, fields: Mapping[str, Any]) -> DryRunEvent:
    """The dry-run event the options give; an invalid value is named by its option."""
    if option == "--bucket":
        document: dict[str, Any] = {"s3": _without_none(fields)}
    elif option == "--webhook":
        document = {
            "webhook": _without_none(
                {
                    "name": fields["name"],
                    "body": _payload_text(fields["payload"]),
                    "headers": _headers(fields["headers"] or []),
                    "received_at": fields["received_at"],
                }
            )
        }
    else:
        document = {"schedule": _without_none({**fields, "conf": _schedule_conf(fields["conf"])})}
    try:
        return DryRunEvent.model_validate(document)
    except ValidationError as invalid:
        problem = field_problems(invalid)[0]
        field = tuple(str(part) for part in problem.location[:2])
        where = _OPTION_OF.get((field[0], field[-1])) if len(field) == 2 else None
        got = f" (got {short_repr(problem.input)})" if problem.type in _SHOW_VALUE else ""
        fail(f"{where or format_location(problem.location)}: {problem.message}{got}")


def _without_none(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def _payload_text(path: Path) -> str:
    data = _read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        fail(f"--payload {path} is not UTF-8 text, so it cannot be a JSON body")


def _headers(values: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        name, colon, content = value.partition(":")
        if not colon or not name.strip():
            fail(f"--header takes 'Name: value', not {value!r}")
        headers[name.strip().lower()] = content.strip()
    return headers


def _schedule_conf(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        fail(f"--conf is not JSON: {exc}")


def _read_text(path: Path) -> str:
    try:
        return _read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except IsADirectoryError:
        fail(f"{path} is a directory, not a file")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")


def _print_report(report: DryRunReport) -> None:
    console.print(Text(f"Dry run of {report.event}"))
    console.print(Text(f"against {report.routes_source}: {report.summary}", style="bold"))
    if report.matches:
        matches = Table(title="Matching routes", title_justify="left")
        for column in ("route", "environment", "target", "verdict", "run id / why not"):
            matches.add_column(column, overflow="fold")
        for verdict in report.matches:
            matches.add_row(
                Text(str(verdict.route)),
                Text(str(verdict.environment)),
                Text(verdict.target),
                _verdict_text(verdict),
                Text(_run_id_or_reason(verdict)),
            )
        console.print(matches)
        for verdict in report.matches:
            if verdict.conf is not None:
                what = "extra" if verdict.asset is not None else "conf"
                console.print(Text(f"{what} of {verdict.route}:", style="bold"))
                console.print_json(compact_json(verdict.conf))
    if report.non_matches:
        others = Table(title="Routes that do not match", title_justify="left")
        for column in ("route", "source", "target", "verdict", "why"):
            others.add_column(column, overflow="fold")
        for verdict in report.non_matches:
            others.add_row(
                Text(str(verdict.route)),
                Text(verdict.kind),
                Text(verdict.target),
                _verdict_text(verdict),
                Text("\n".join(verdict.reasons)),
            )
        console.print(others)
    for note in report.notes:
        console.print(Text(f"- {note}"))


def _run_id_or_reason(verdict: RouteVerdict) -> str:
    if verdict.verdict is Verdict.TRIGGER:
        return verdict.dag_run_id or ("an asset event" if verdict.asset is not None else "")
    return verdict.reason


def _verdict_text(verdict: RouteVerdict) -> Text:
    return Text(verdict.verdict.value, style=_VERDICT_STYLES[verdict.verdict])
