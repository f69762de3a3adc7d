"""`dagtrigger history`, `show` and `trigger`: the trigger history read through the API, and a
DAG run started through it."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich import box
from rich.json import JSON
from rich.table import Table
from rich.text import Text

from dagtrigger.clock import iso_utc, utc_now
from dagtrigger.http.request import MAX_PAGE_SIZE
from dagtrigger.ledger.records import TriggerStatus
from dagtrigger_cli import output
from dagtrigger_cli.api import ApiClient
from dagtrigger_cli.output import console, fail, print_json, styled_status
from dagtrigger_cli.target import target_of

DEFAULT_LIMIT = 20
STATUSES = [status.value for status in TriggerStatus]
_RELATIVE_TIME = re.compile(r"(\d+)\s*(s|m|min|h|d|w)")
_TIME_UNITS = {"s": "seconds", "m": "minutes", "min": "minutes", "h": "hours", "d": "days"}
_TIME_FORMATS = "ISO 8601 (2026-11-21, 2026-11-21T02:00Z) or relative (30m, 12h, 2d, 1w)"
_JSON_KINDS = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true or false",
    type(None): "null",
}
#: statuses whose records say why in ``reason`` (with ``reject_code`` for REJECTED)
_REASONED = frozenset({"REJECTED", "IGNORED", "UNKNOWN", "LATE"})


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""
    app.command("history")(history)
    app.command("show")(show)
    app.command("trigger")(trigger)
    app.command("set")(show_set)


# ----------------------------------------------------------------------------------- history


@dataclass(frozen=True)
class HistoryQuery:
    """The API route a history read calls and its filters (query parameters)."""

    path: str
    filters: dict[str, str]


def history(
    context: typer.Context,
    dag: Annotated[str | None, typer.Option(help="only this DAG id")] = None,
    environment: Annotated[
        str | None,
        typer.Option(help="the DAG's environment alias (with --dag; default: the default one)"),
    ] = None,
    status: Annotated[
        str | None, typer.Option(help=f"only this status: {', '.join(STATUSES)}")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            help="only this source: s3://BUCKET/KEY, webhook:NAME, api:CALLER_ARN or a "
            "schedule's ARN"
        ),
    ] = None,
    bucket: Annotated[
        str | None,
        typer.Option(help="the object's bucket, with --key (default: the stack's bucket)"),
    ] = None,
    key: Annotated[str | None, typer.Option(help="an object's key: that object's history")] = None,
    since: Annotated[str | None, typer.Option(help=f"created at or after: {_TIME_FORMATS}")] = None,
    until: Annotated[str | None, typer.Option(help="created at or before (as --since)")] = None,
    limit: Annotated[
        int, typer.Option(min=1, help="rows to show (on a terminal: per page, then 'more?')")
    ] = DEFAULT_LIMIT,
    all_pages: Annotated[bool, typer.Option("--all", help="every matching trigger")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="the records as JSON, for scripts")
    ] = False,
) -> None:
    """Triggers, newest first: time, id, source, DAG, status, run id and why it failed.

    Without a DAG, source, status or object, the last 7 days are listed.
    """
    target = target_of(context)
    query = history_query(
        dag=dag,
        environment=environment,
        status=status,
        source=source,
        bucket=bucket or (target.bucket if key else None),
        key=key,
        since=since,
        until=until,
    )
    client = ApiClient(target)
    wanted = None if all_pages else limit
    items, cursor = read_triggers(client, query, wanted=wanted, cursor=None)
    if as_json:
        print_json(items)
    else:
        print_history(items)
        while cursor is not None and interactive() and typer.confirm("more?", default=True):
            items, cursor = read_triggers(client, query, wanted=limit, cursor=cursor)
            print_history(items)
    if cursor is not None and not (interactive() and not as_json):
        output.errors.print(
            f"[dim]more triggers match: --all lists them, --limit {limit * 2} shows more[/dim]"
        )


def history_query(
    *,
    dag: str | None = None,
    environment: str | None = None,
    status: str | None = None,
    source: str | None = None,
    bucket: str | None = None,
    key: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> HistoryQuery:
    """The route and query of a history read, checked before any call (one-line errors)."""
    now = utc_now()
    filters = {
        "dag_id": dag,
        "environment": environment,
        "status": status and checked_status(status),
        "source": source,
        "since": since and iso_utc(parse_moment(since, "--since", now)),
        "until": until and iso_utc(parse_moment(until, "--until", now)),
    }
    given = {name: value for name, value in filters.items() if value}
    if bucket is None and key is None:
        return HistoryQuery("/v1/triggers", given)
    if bucket is None or key is None:
        fail("an object's history takes both --bucket and --key")
    if source:
        fail("--source and --bucket/--key both name the source: give one of them")
    if not given:
        return HistoryQuery("/v1/objects", {"bucket": bucket, "key": key})
    # With other filters, the list route reads the same history: by the object's source key.
    return HistoryQuery("/v1/triggers", {**given, "source": f"s3://{bucket}/{key}"})


def checked_status(text: str) -> str:
    status = text.strip().upper()
    if status not in STATUSES:
        fail(f"unknown status {text!r}: one of {', '.join(STATUSES)}")
    return status


def parse_moment(text: str, option: str, now: datetime) -> datetime:
    """An aware time from ISO 8601 (a time without a zone is UTC) or ``12h``-style "ago"."""
    relative = _RELATIVE_TIME.fullmatch(text.strip().lower())
    if relative:
        amount, unit = int(relative[1]), relative[2]
        if unit == "w":
            return now - timedelta(weeks=amount)
        return now - timedelta(**{_TIME_UNITS[unit]: amount})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        fail(f"{option} {text!r} is not a time: give {_TIME_FORMATS}")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def read_triggers(
    client: ApiClient, query: HistoryQuery, *, wanted: int | None, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to ``wanted`` triggers (None: all), following ``next_cursor`` from ``cursor`` (a page
    may hold fewer items than asked and still have a next one); and where to go on from."""
    items: list[dict[str, Any]] = []
    while True:
        size = MAX_PAGE_SIZE if wanted is None else min(wanted - len(items), MAX_PAGE_SIZE)
        page = client.get(query.path, {**query.filters, "limit": size, "cursor": cursor})
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if cursor is None or (wanted is not None and len(items) >= wanted):
            return items, cursor


def interactive() -> bool:
    """Whether a person reads the output and can answer 'more?'."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def print_history(items: list[dict[str, Any]]) -> None:
    if not items:
        console.print("no triggers match")
        return
    reasons = [reason_of(record) for record in items]
    # Nothing is cropped on a narrow terminal: long values fold onto more lines instead.
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("trigger", no_wrap=True)
    table.add_column("source", overflow="fold", min_width=16)
    table.add_column("DAG", overflow="fold", min_width=8)
    table.add_column("status", no_wrap=True)
    table.add_column("run id", overflow="fold", min_width=16)
    if any(reasons):
        table.add_column("reason", overflow="fold", min_width=16)
    for record, reason in zip(items, reasons, strict=True):
        cells = [
            readable_time(record.get("created_at")),
            record["trigger_id"],
            Text(short_source(record.get("source_key") or "")),
            Text(target_text(record)),
            styled_status(record["status"]),
            Text(run_or_event_id(record)),
        ]
        table.add_row(*cells, *([Text(reason)] if any(reasons) else []))
    console.print(table)


def short_source(source_key: str) -> str:
    """A source as the table shows it: a schedule by its name, an API caller by its IAM name
    (``show`` and ``--json`` give the whole key, which ``--source`` takes)."""
    if source_key.startswith("arn:aws:scheduler:"):
        return "schedule:" + source_key.rsplit("/", 1)[-1]
    if source_key.startswith("api:arn:"):
        return "api:" + source_key.rsplit(":", 1)[-1]
    return source_key


def target_text(record: dict[str, Any]) -> str:
    """What the trigger starts: its DAG, or ``asset <uri>`` for an asset route's event."""
    if record.get("asset_uri"):
        return f"asset {record['asset_uri']}"
    return str(record.get("dag_id") or "-")


def run_or_event_id(record: dict[str, Any]) -> str:
    """The DAG run id, or ``event <id>`` for the asset event Airflow recorded."""
    if record.get("asset_event_id") is not None:
        return f"event {record['asset_event_id']}"
    return str(record.get("dag_run_id") or "-")


def reason_of(record: dict[str, Any]) -> str:
    """Why a trigger did not (or not yet) end in a successful run, in one phrase."""
    status = record["status"]
    if status == "TRIGGER_FAILED":
        return str(record.get("last_error") or record.get("reason") or "")
    if status in _REASONED:
        code, reason = record.get("reject_code"), record.get("reason") or ""
        return f"{code}: {reason}" if code and status == "REJECTED" else str(reason)
    if status == "FAILED":
        return failed_tasks_text(record)
    if record.get("dag_paused"):
        return "the DAG is paused: the run waits in the queue"
    return ""


def failed_tasks_text(record: dict[str, Any]) -> str:
    if record.get("failed_tasks"):
        tasks = ", ".join(record["failed_tasks"])
        count = record.get("failed_task_count") or 0
        more = count > len(record["failed_tasks"])  # a mapped task fails once per index
        return f"failed tasks: {tasks}" + (f" ({count} failed in all)" if more else "")
    if record.get("failed_tasks_unavailable"):
        return f"failed tasks unknown: {record['failed_tasks_unavailable']}"
    return ""


def readable_time(stamp: str | None, *, precise: bool = False) -> str:
    """``2026-11-21 02:00:00`` in UTC (milliseconds when ``precise``); other text as it is."""
    if not stamp:
        return "-"
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    return text[:-3] if precise else text[:-7]


# -------------------------------------------------------------------------------------- show


def show(
    context: typer.Context,
    trigger_id: Annotated[str, typer.Argument(metavar="ID", help="a trigger id: t-<32 hex>")],
    as_json: Annotated[
        bool, typer.Option("--json", help="the record as JSON, for scripts")
    ] = False,
) -> None:
    """One trigger: its timeline, its conf and its Airflow run.

    The timeline: the source event, each status reached (received, triggered, running, finished).
    Failed attempts show their error; repeated deliveries are counted.
    """
    client = ApiClient(target_of(context))
    record = client.get(f"/v1/triggers/{quote(trigger_id.strip(), safe='')}")
    if as_json:
        print_json(record)
        return
    console.print(summary_table(record))
    asset = bool(record.get("asset_uri"))
    sections = {
        "Timeline (UTC)": timeline_table(record),
        "Extra" if asset else "Conf": conf_view(record),
        "Airflow asset event" if asset else "Airflow run": (
            asset_event_table(record) if asset else airflow_run_table(record)
        ),
    }
    for title, body in sections.items():
        console.print()
        console.print(Text(title, style="bold"))
        console.print(body)


def _fields_table() -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")
    return table


def summary_table(record: dict[str, Any]) -> Table:
    table = _fields_table()
    table.add_row("trigger", Text(record["trigger_id"], style="bold"))
    table.add_row("status", styled_status(record["status"]))
    reason = reason_of(record)
    if reason:
        table.add_row("reason", Text(reason))
    table.add_row("source", Text(f"{record['source_type']}  {record['source_key']}"))
    fields = {
        "route": record.get("route"),
        "DAG": record.get("dag_id") and f"{record['dag_id']} on {record.get('environment')}",
        "asset": record.get("asset_uri")
        and f"{record['asset_uri']} on {record.get('environment')}",
        "file set": record.get("set_id")
        or record.get("set_marker_of")
        or record.get("missed_set_id"),
        "note": record.get("note"),
        "replays": record.get("replays")
        and f"{record['replays']}, the latest by {record.get('replayed_by')}",
    }
    for name, value in fields.items():
        if value:
            table.add_row(name, Text(str(value)))
    table.add_row("deliveries", f"{record.get('deliveries', 1)} (repeats start nothing)")
    table.add_row("attempts", f"{record.get('attempts', 0)} (calls to Airflow)")
    return table


@dataclass(frozen=True)
class Moment:
    """One line of a trigger's timeline."""

    at: str
    what: str
    detail: str = ""


def timeline(record: dict[str, Any]) -> list[Moment]:
    """What happened to a trigger, oldest first: its source event, each status it reached
    (with each failed attempt's error), repeated deliveries and the run's finished event."""
    moments: list[Moment] = []
    if record.get("scheduled_time"):
        moments.append(Moment(record["scheduled_time"], "scheduled", "the schedule's time"))
    if record.get("source_type") == "s3" and record.get("event_time"):
        moments.append(Moment(record["event_time"], "object created", record["source_key"]))
    errors_by_time = {
        error.get("at"): error.get("message", "") for error in record.get("errors") or []
    }
    for index, transition in enumerate(record.get("transitions") or []):
        status, at = transition["status"], transition["at"]
        detail = _transition_detail(record, transition, first=index == 0)
        if status in ("TRIGGER_FAILED", "REJECTED"):  # the error written with the status
            detail = errors_by_time.pop(at, None) or detail
        moments.append(Moment(at, status, detail))
    moments += [Moment(at, "error", message) for at, message in errors_by_time.items() if at]
    # A redelivery that took the trigger over is its RECEIVED line; a later one is a duplicate.
    repeated_at = record.get("last_delivery_at")
    if repeated_at and all(moment.at != repeated_at for moment in moments):
        moments.append(
            Moment(
                repeated_at,
                "delivered again",
                f"a duplicate ({record.get('deliveries')} deliveries in all): it started nothing",
            )
        )
    if record.get("finished_event_delivered_at"):
        moments.append(
            Moment(record["finished_event_delivered_at"], "event", "DAG Run Finished published")
        )
    return sorted(moments, key=lambda moment: readable_time(moment.at, precise=True))


def _transition_detail(record: dict[str, Any], transition: dict[str, Any], *, first: bool) -> str:
    status, run_id = transition["status"], record.get("dag_run_id") or "-"
    if status == "RECEIVED":
        if transition.get("replayed_by"):
            return f"replayed by {transition['replayed_by']}"
        return f"received from {record['source_type']}" if first else "claimed again for a retry"
    if status == "TRIGGERED":
        if record.get("already_existed"):
            return f"{run_id}: Airflow already had this run, so none was started twice"
        return f"{run_id} started in Airflow"
    if status == "EVENT_CREATED":
        event = f"asset event {record.get('asset_event_id', '?')}"
        if record.get("already_existed"):
            return f"{event}: an earlier attempt created it, so none was created twice"
        return f"{event} created: Airflow starts the DAGs that consume the asset"
    if status == "RUNNING":
        return "Airflow runs it"
    if status == "SUCCESS":
        return "the run succeeded"
    if status == "FAILED":
        return "the run failed" + (
            f"; {failed_tasks_text(record)}" if failed_tasks_text(record) else ""
        )
    if status == "TRIGGER_FAILED":
        return str(record.get("last_error") or "gave up after retries")
    return reason_of(record)


def timeline_table(record: dict[str, Any]) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(no_wrap=True, style="dim")
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for moment in timeline(record):
        what = styled_status(moment.what) if moment.what in STATUSES else moment.what
        table.add_row(readable_time(moment.at, precise=True), what, Text(moment.detail))
    return table


def conf_view(record: dict[str, Any]) -> JSON | Text:
    if record.get("conf") is not None:
        return JSON(json.dumps(record["conf"]), indent=2, sort_keys=False)
    if record.get("conf_truncated"):
        return Text("too large to keep: only its size and digest are recorded", style="dim")
    return Text("none", style="dim")


def airflow_run_table(record: dict[str, Any]) -> Table:
    table = _fields_table()
    paused = record.get("dag_paused")
    values = {
        "dag_run_id": record.get("dag_run_id"),
        "environment": record.get("environment"),
        "state": record.get("airflow_state"),
        "logical date": record.get("logical_date"),
        "DAG paused": None if paused is None else ("yes: the run waits" if paused else "no"),
        "started": record.get("start_date") and readable_time(record["start_date"]),
        "ended": record.get("end_date") and readable_time(record["end_date"]),
        "failed tasks": failed_tasks_text(record).removeprefix("failed tasks: "),
    }
    for name, value in values.items():
        table.add_row(name, Text(str(value) if value else "-"))
    return table


def asset_event_table(record: dict[str, Any]) -> Table:
    table = _fields_table()
    runs = record.get("asset_event_run_ids")
    values = {
        "asset": record.get("asset_uri"),
        "environment": record.get("environment"),
        "event id": record.get("asset_event_id"),
        "asset id": record.get("asset_id"),
        "event time": record.get("asset_event_timestamp")
        and readable_time(record["asset_event_timestamp"]),
        "runs": ", ".join(runs) if runs else "started by Airflow's scheduler (not followed here)",
    }
    for name, value in values.items():
        table.add_row(name, Text(str(value) if value is not None else "-"))
    return table


# ------------------------------------------------------------------------------------- set


def show_set(
    context: typer.Context,
    set_id: Annotated[str, typer.Argument(metavar="ID", help="a file set id: s-<32 hex>")],
    as_json: Annotated[bool, typer.Option("--json", help="the set as JSON, for scripts")] = False,
) -> None:
    """One file set: its state, how it completed, its objects and its run."""
    client = ApiClient(target_of(context))
    described = client.get(f"/v1/sets/{quote(set_id.strip(), safe='')}")
    if as_json:
        print_json(described)
        return
    table = _fields_table()
    table.add_row("set", Text(described["set_id"], style="bold"))
    table.add_row("status", styled_status(described["status"]))
    values = {
        "route": described.get("route"),
        "group": described.get("group"),
        "objects": f"{described['member_count']} ({described['total_size']} bytes)",
        "completion": described.get("completion_reason"),
        "first object": readable_time(described.get("first_member_at")),
        "latest object": readable_time(described.get("last_member_at")),
        "completed": readable_time(described.get("completed_at")),
        "run": described.get("run_trigger_id"),
    }
    for name, value in values.items():
        table.add_row(name, Text(str(value) if value else "-"))
    run = described.get("run")
    if run:
        table.add_row("run status", styled_status(run["status"]))
        table.add_row("dag_run_id", Text(str(run.get("dag_run_id") or "-")))
    console.print(table)
    members = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("joined (UTC)", "object", "size", "deliveries"):
        members.add_column(column, overflow="fold")
    for member in described["members"]:
        members.add_row(
            readable_time(member["joined_at"]),
            Text(f"s3://{member['bucket']}/{member['key']}"),
            str(member.get("size") if member.get("size") is not None else "-"),
            str(member["deliveries"]),
        )
    console.print()
    console.print(Text("Objects", style="bold"))
    console.print(members)


# ----------------------------------------------------------------------------------- trigger


def trigger(
    context: typer.Context,
    dag_id: Annotated[str, typer.Argument(metavar="DAG_ID", help="the DAG to run")],
    conf: Annotated[
        str, typer.Option(help="the run's conf: a JSON object, or @FILE holding one")
    ] = "{}",
    environment: Annotated[
        str | None, typer.Option(help="environment alias (default: the routes file's default)")
    ] = None,
    note: Annotated[str | None, typer.Option(help="free text kept in the record")] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="names this request: a retry with the same key starts nothing new"),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="the answer as JSON, for scripts")
    ] = False,
) -> None:
    """Start a DAG run through the API, recorded like every other trigger."""
    body: dict[str, Any] = {"conf": parse_conf(conf)}
    body.update(
        {name: value for name, value in (("environment", environment), ("note", note)) if value}
    )
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    client = ApiClient(target_of(context))
    answer = client.post(f"/v1/dags/{quote(dag_id, safe='')}/runs", body, headers=headers)
    if as_json:
        print_json(answer)
        return
    table = _fields_table()
    table.add_row("trigger", Text(answer["trigger_id"], style="bold"))
    table.add_row("DAG", Text(f"{answer.get('dag_id')} on {answer.get('environment')}"))
    table.add_row("run id", Text(answer.get("dag_run_id") or "-"))
    table.add_row("status", styled_status(answer["status"]))
    console.print(table)
    console.print(f"[dim]follow it: dagtrigger show {answer['trigger_id']}[/dim]")


def parse_conf(text: str) -> dict[str, Any]:
    """``--conf`` as a JSON object (from a file with ``@FILE``), or a one-line error."""
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as error:
            fail(f"--conf {text}: {error.strerror or error}")
    try:
        conf = json.loads(text)
    except json.JSONDecodeError as error:
        fail(f"--conf is not JSON: {error.msg} at line {error.lineno} column {error.colno}")
    if not isinstance(conf, dict):
        fail(f"--conf must be a JSON object ({{...}}), not {_JSON_KINDS.get(type(conf), 'that')}")
    return conf
