"""`make bench`: dagtrigger against the usual public sample, on the local stack.

    .venv/bin/python -m bench.run                 # full sizes (make bench)
    .venv/bin/python -m bench.run --quick         # small sizes (make bench QUICK=1)
    .venv/bin/python -m bench.run --skip demo,cold --files 50

Stands up the local stack (DynamoDB Local, moto, real Airflow, the MWAA emulator, the Lambda
runner) once with the InvokeRestApi transport and once with the CLI transport, runs each
scenario with dagtrigger and with the baseline (bench/baseline/sample_handler.py) one after the
other, alternating which goes first each round, then the cold start, package and demo checks.
Prints the table and writes it to bench/results.md. Every process it starts is stopped.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import os
import platform
import shutil
import signal
import subprocess
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import footprint
from bench.baseline_side import SampleLambda, describe_errors
from bench.cold import ColdStart, run_cold_start
from bench.emulator_calls import EmulatorTally
from bench.events import set_dag_paused
from bench.file_sets import FUNCTION_TIMEOUT_SECONDS as FILE_SET_FUNCTION_TIMEOUT
from bench.file_sets import FileSetResult, Invocation
from bench.file_sets import measure as measure_file_sets
from bench.overhead import DYNAMODB_READS, DYNAMODB_WRITES, OverheadResult
from bench.overhead import measure as measure_overhead
from bench.scenarios import SideResult, baseline_side, dagtrigger_side, reconciler_held
from bench.stats import Target, format_ratio, markdown_table, median, mib, percentile, ratio
from devstack.mwaa_emulator import MwaaEmulator
from devstack.paths import REPO_ROOT, STACK_DIR
from devstack.stack import LocalStack, StackConfig

RESULTS = Path(__file__).resolve().parent / "results.md"
WORK = STACK_DIR / "bench"
PARTS = ("rest", "overhead", "file_sets", "cli", "cold", "package", "demo")
MWAA_RATE = 10.0  # MWAA's documented InvokeRestApi rate, requests a second per environment


@dataclass
class Sizes:
    files: int = 1000  # paced single-object events, InvokeRestApi
    burst: int = 1000  # burst, InvokeRestApi
    cli_files: int = 50  # paced single-object events, CLI transport
    cli_burst: int = 100  # burst, CLI transport
    baseline_paced: int = 10  # the sample, one event at a time (calls per trigger)
    overhead: int = 300  # in-process triggers for the overhead percentiles
    set_parts: int = 10_000  # a file set as large as a route allows, its marker first
    set_parts_by_event: int = 1000  # a file set whose parts' events come before its marker
    cold_rounds: int = 20
    rounds: int = 1
    pace: float = 8.0  # objects a second for the paced scenarios (under MWAA's 10)
    redeliver: float = 0.05
    concurrency: int = 50  # the baseline's Lambda concurrency


QUICK = Sizes(
    files=50,
    burst=50,
    cli_files=5,
    cli_burst=10,
    baseline_paced=3,
    overhead=60,
    set_parts=1000,
    set_parts_by_event=100,
    cold_rounds=3,
)


@dataclass
class Results:
    sizes: Sizes
    paced: list[tuple[SideResult, SideResult]] = field(default_factory=list)
    bursts: list[tuple[SideResult, SideResult]] = field(default_factory=list)
    cli_paced: list[tuple[SideResult, SideResult]] = field(default_factory=list)
    cli_bursts: list[tuple[SideResult, SideResult]] = field(default_factory=list)
    cli_command_ms: list[float] = field(default_factory=list)
    overhead: OverheadResult | None = None
    file_sets: FileSetResult | None = None
    cold: list[ColdStart] = field(default_factory=list)
    cold_table: str = ""
    artifacts: list[footprint.Artifact] = field(default_factory=list)
    layer_test_only: list[str] = field(default_factory=list)
    memory: footprint.StackMemory | None = None
    demo_cold: tuple[float, int] | None = None
    demo_warm: tuple[float, int] | None = None
    airflow_version: str = ""
    problems: list[str] = field(default_factory=list)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--skip", default="", help=f"comma-separated parts to skip: {PARTS}")
    for name, value in vars(Sizes()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    sizes = QUICK if args.quick else Sizes()
    for name in vars(sizes):
        if getattr(args, name) is not None:
            setattr(sizes, name, getattr(args, name))
    skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    if skip - set(PARTS):
        parser.error(f"unknown parts to skip: {sorted(skip - set(PARTS))}")
    results = Results(sizes)
    started = time.monotonic()
    # the revision measured is the one the run starts from (commits during it are not in it)
    os.environ.setdefault("BENCH_GIT_REVISION", _head_revision())
    # A SIGTERM (CI's timeout, `kill`) unwinds like Ctrl-C, so every stack started is stopped.
    signal.signal(signal.SIGTERM, _interrupted)
    _guarded(results, "package", skip, lambda: _package(results))
    _guarded(results, "rest", skip, lambda: _rest_stack(results, skip))
    _guarded(results, "cli", skip, lambda: _cli_stack(results))
    _guarded(results, "cold", skip, lambda: _cold(results))
    _guarded(results, "demo", skip, lambda: _demo(results))
    text = report(results, skip, time.monotonic() - started, quick=args.quick)
    args.out.write_text(text)
    print(text)
    print(f"\nwritten to {args.out}")


def _head_revision() -> str:
    """HEAD's short hash, marked when tracked files differ from it."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{head} (with uncommitted changes)" if dirty else head


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _guarded(results: Results, part: str, skip: set[str], run: Callable[[], None]) -> None:
    if part in skip:
        return
    _say(f"== {part}")
    try:
        run()
    except KeyboardInterrupt:
        raise
    except Exception as error:  # one part failing still reports the others
        traceback.print_exc()
        results.problems.append(f"{part}: {type(error).__name__}: {error}")


def _say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -------------------------------------------------------------------------------- parts


def _package(results: Results) -> None:
    footprint.ensure_build(_say)
    results.artifacts = footprint.artifacts()
    results.layer_test_only = sorted(
        footprint.layer_distributions() & footprint.dev_only_distributions()
    )


def _start_stack(transport: str) -> LocalStack:
    state = WORK / f"state-{transport}"
    if state.exists():  # a fresh Airflow, ledger and queue: no runs of an earlier bench
        shutil.rmtree(state)
    state.mkdir(parents=True)
    config = StackConfig(
        transport=transport,
        state_dir=state,
        function_log=state / "functions.log",
    )
    stack = LocalStack(config, progress=lambda message: _say(f"   {message}"))
    stack.start()
    return stack


def _rest_stack(results: Results, skip: set[str]) -> None:
    sizes = results.sizes
    stack = _start_stack("invoke_rest_api")
    try:
        assert stack.emulator is not None
        assert stack.airflow is not None
        results.airflow_version = stack.airflow.version
        set_dag_paused(stack, True)
        tally = EmulatorTally(stack.emulator.requests)
        tally.start()
        try:
            with reconciler_held(stack.runner):  # type: ignore[arg-type]
                time.sleep(5)
                results.memory = footprint.stack_memory(stack)
            sample = _sample(stack, sizes)
            run = uuid.uuid4().hex[:6]
            for round_ in range(sizes.rounds):
                _say(f"round {round_ + 1}/{sizes.rounds}: {sizes.files} paced events")
                results.paced.append(
                    _pair(
                        round_,
                        functools.partial(
                            dagtrigger_side,
                            stack,
                            tally,
                            prefix=f"sales/paced-{run}-{round_}-d-",
                            objects=sizes.files,
                            pace_per_second=sizes.pace,
                            redeliver_fraction=0,
                            timeout=_timeout(sizes.files, 1 / MWAA_RATE),
                        ),
                        functools.partial(
                            baseline_side,
                            stack,
                            tally,
                            _sample(stack, sizes, concurrency=1),
                            prefix=f"sales/paced-{run}-{round_}-b-",
                            objects=sizes.baseline_paced,
                            redeliver_fraction=0,
                        ),
                    )
                )
                _say(f"round {round_ + 1}/{sizes.rounds}: burst of {sizes.burst}")
                results.bursts.append(
                    _burst(
                        stack,
                        tally,
                        sample,
                        f"sales/burst-{run}-{round_}",
                        sizes.burst,
                        sizes.redeliver,
                        seconds_per_call=1 / MWAA_RATE,
                        round_=round_,
                    )
                )
            if "overhead" not in skip:
                _say(f"overhead: {sizes.overhead} triggers in this process")
                with reconciler_held(stack.runner):  # type: ignore[arg-type]
                    results.overhead = measure_overhead(stack, triggers=sizes.overhead)
            if "file_sets" not in skip:
                _say(
                    f"file sets: {sizes.set_parts} parts, marker first; "
                    f"{sizes.set_parts_by_event} parts, marker last"
                )
                with reconciler_held(stack.runner):  # type: ignore[arg-type]
                    results.file_sets = measure_file_sets(
                        stack, parts=sizes.set_parts, parts_by_event=sizes.set_parts_by_event
                    )
        finally:
            tally.stop()
    finally:
        stack.stop()


def _cli_stack(results: Results) -> None:
    sizes = results.sizes
    stack = _start_stack("cli")
    try:
        assert stack.emulator is not None
        set_dag_paused(stack, True)
        tally = EmulatorTally(stack.emulator.requests)
        tally.start()
        try:
            run = uuid.uuid4().hex[:6]
            # One command in isolation: the sample, one event at a time.
            single = baseline_side(
                stack,
                tally,
                _sample(stack, sizes, concurrency=1),
                prefix=f"sales/single-{run}-b-",
                objects=max(3, sizes.baseline_paced),
                redeliver_fraction=0,
            )
            mark = 0
            results.cli_command_ms = [
                entry.duration_ms
                for entry in tally.since(mark)
                if entry.operation == "cli" and entry.status == 200
            ]
            command = median(results.cli_command_ms) / 1000
            sample = _sample(stack, sizes)
            for round_ in range(sizes.rounds):
                _say(f"round {round_ + 1}/{sizes.rounds}: {sizes.cli_files} paced events (CLI)")
                dagtrigger_paced = dagtrigger_side(
                    stack,
                    tally,
                    prefix=f"sales/clipaced-{run}-{round_}-d-",
                    objects=sizes.cli_files,
                    pace_per_second=sizes.pace,
                    redeliver_fraction=0,
                    timeout=_timeout(sizes.cli_files, command),
                )
                results.cli_paced.append((dagtrigger_paced, single))
                _say(f"round {round_ + 1}/{sizes.rounds}: CLI burst of {sizes.cli_burst}")
                results.cli_bursts.append(
                    _burst(
                        stack,
                        tally,
                        sample,
                        f"sales/cliburst-{run}-{round_}",
                        sizes.cli_burst,
                        sizes.redeliver,
                        seconds_per_call=command,
                        round_=round_,
                    )
                )
        finally:
            tally.stop()
    finally:
        stack.stop()


def _burst(
    stack: LocalStack,
    tally: EmulatorTally,
    sample: SampleLambda,
    prefix: str,
    objects: int,
    redeliver_fraction: float,
    *,
    seconds_per_call: float,
    round_: int,
) -> tuple[SideResult, SideResult]:
    """Both sides given the same burst of objects at once, some delivered twice."""
    return _pair(
        round_,
        functools.partial(
            dagtrigger_side,
            stack,
            tally,
            prefix=f"{prefix}-d-",
            objects=objects,
            pace_per_second=0,
            redeliver_fraction=redeliver_fraction,
            timeout=_timeout(objects, seconds_per_call),
        ),
        functools.partial(
            baseline_side,
            stack,
            tally,
            sample,
            prefix=f"{prefix}-b-",
            objects=objects,
            redeliver_fraction=redeliver_fraction,
        ),
    )


def _cold(results: Results) -> None:
    footprint.ensure_build(_say)
    results.cold, results.cold_table = run_cold_start(results.sizes.cold_rounds)


def _demo(results: Results) -> None:
    log = WORK / "demo.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    _say("demo, cold (fresh state folder)")
    results.demo_cold = footprint.demo_seconds(fresh=True, log=log)
    _say("demo, warm (the same state folder again)")
    results.demo_warm = footprint.demo_seconds(fresh=False, log=log)


def _sample(stack: LocalStack, sizes: Sizes, concurrency: int | None = None) -> SampleLambda:
    emulator = stack.emulator
    assert emulator is not None
    return SampleLambda(
        mwaa_endpoint=emulator.control_plane_url,
        environment_name=stack.mwaa_environment,
        ca_bundle=emulator.ca_bundle_path,
        concurrency=concurrency or sizes.concurrency,
    )


def _pair(
    round_: int, dagtrigger: Callable[[], SideResult], baseline: Callable[[], SideResult]
) -> tuple[SideResult, SideResult]:
    """Both sides, dagtrigger first on even rounds and the baseline first on odd ones."""
    if round_ % 2 == 0:
        ours = dagtrigger()
        theirs = baseline()
    else:
        theirs = baseline()
        ours = dagtrigger()
    return ours, theirs


def _timeout(objects: int, seconds_each: float) -> float:
    return max(300.0, 5 * objects * seconds_each)


# -------------------------------------------------------------------------------- report


def _med(values: list[float]) -> float:
    return median(values) if values else float("nan")


def report(results: Results, skip: set[str], seconds: float, *, quick: bool) -> str:
    sizes = results.sizes
    rows: list[list[object]] = []
    details: list[str] = []
    floor_note = ""

    if results.paced:
        rows += _paced_rows(
            f"{sizes.files} single-object events, InvokeRestApi ({sizes.pace:g}/s)",
            "MWAA calls per trigger (trigger path)",
            results.paced,
            Target(1.02),
        )
        details.append(_calls_detail("paced events, InvokeRestApi", results.paced))
    if results.cli_paced:
        rows += _paced_rows(
            f"{sizes.cli_files} single-object events, CLI ({sizes.pace:g}/s)",
            "MWAA calls per trigger (token reuse; trigger path)",
            results.cli_paced,
            Target(1.1),
        )
        details.append(_calls_detail("paced events, CLI", results.cli_paced))
    if results.bursts:
        floor = sizes.burst / MWAA_RATE
        rows += _burst_rows(
            f"burst of {sizes.burst}, InvokeRestApi, emulator at {MWAA_RATE:g}/s",
            results.bursts,
            floor,
            Target(1.2),
        )
        details.append(_calls_detail("burst, InvokeRestApi", results.bursts))
    if results.cli_bursts:
        command = _med(results.cli_command_ms) / 1000
        each = max(1 / MWAA_RATE, command)
        floor = sizes.cli_burst * each
        floor_note = (
            f"CLI floor: N x max(1/rate, one command) = {sizes.cli_burst} x "
            f"max({1 / MWAA_RATE:.2f} s, {command:.2f} s) = {floor:.1f} s; one command measured "
            f"alone (the sample, one event at a time): median {command:.2f} s of "
            f"{len(results.cli_command_ms)} (the emulator runs each as a real `airflow` process)."
        )
        rows += _burst_rows(
            f"CLI burst of {sizes.cli_burst}, one command at a time",
            results.cli_bursts,
            floor,
            Target(1.5),
        )
        details.append(_calls_detail("burst, CLI", results.cli_bursts))
    rows += _cold_rows(results.cold)
    if results.overhead is not None:
        overhead = results.overhead
        target = Target(25)
        rows.append(
            [
                f"per-trigger overhead ({len(overhead.overhead_ms)} triggers, "
                f"{overhead.pace_per_second:g}/s)",
                "handler time minus MWAA calls (DynamoDB Local's latency in it): p50 / p99",
                f"{overhead.p(50):.1f} ms / {overhead.p(99):.1f} ms",
                "",
                "",
                "p99 " + target.describe(" ms"),
                target.verdict(overhead.p(99), " ms"),
            ]
        )
        rows.append(
            [
                "",
                "CPU time of the handler's thread (no waits): p50 / p99",
                f"{_p(overhead.cpu_ms, 50)} ms / {_p(overhead.cpu_ms, 99)} ms",
                "",
                "",
                "p99 " + target.describe(" ms"),
                target.verdict(percentile(overhead.cpu_ms, 99), " ms"),
            ]
        )
        writes, reads = overhead.writes_per_trigger, overhead.reads_per_trigger
        target = Target(3)
        by_op = ", ".join(
            f"{op} {count / max(1, len(overhead.overhead_ms)):.2f}"
            for op, count in sorted(overhead.dynamodb.items())
        )
        rows.append(
            [
                "DynamoDB requests per new trigger",
                "writes / reads",
                f"{writes:.2f} / {reads:.2f} ({by_op})",
                "0 (no history)",
                "",
                "writes " + target.describe(),
                target.verdict(writes),
            ]
        )
    if results.file_sets is not None:
        rows += _file_set_rows(results.file_sets)
    rows += _package_rows(results)
    if results.memory is not None:
        target = Target(2048)
        rss = results.memory.rss_bytes / 2**20
        rows.append(
            [
                "local stack, idle",
                f"RSS of all {results.memory.processes} processes (PSS beside)",
                f"{rss:.0f} MiB (PSS {results.memory.pss_bytes / 2**20:.0f} MiB)",
                "",
                "",
                target.describe(" MiB"),
                target.verdict(rss, " MiB"),
            ]
        )
    if results.demo_cold or results.demo_warm:
        cold = results.demo_cold or (float("nan"), -1)
        warm = results.demo_warm or (float("nan"), -1)
        rows.append(
            [
                "demo (`python -m devstack demo`)",
                "wall time, cold / warm",
                f"{cold[0]:.0f} s / {warm[0]:.0f} s (exit {cold[1]} / {warm[1]})",
                "",
                "",
                "reported",
                "",
            ]
        )

    header = [
        "scenario",
        "measure",
        "dagtrigger",
        "baseline (sample)",
        "ratio",
        "target",
        "verdict",
    ]
    parts = [
        "# `make bench` results",
        "",
        _environment(results, quick, seconds),
        "",
        markdown_table(header, rows),
        "",
        "## How it was measured",
        "",
        *_notes(results, floor_note),
    ]
    if details:
        parts += ["", "## MWAA calls by kind (counted at the emulator)", "", *details]
    if results.memory is not None:
        parts += ["", "## Idle memory by process name (RSS)", ""]
        parts.append(
            markdown_table(
                ["process", "RSS"],
                [
                    [name, mib(size)]
                    for name, size in sorted(results.memory.by_name.items(), key=lambda i: -i[1])
                ],
            )
        )
    if results.cold_table:
        parts += ["", "## Cold start (bench/cold_start.py)", "", results.cold_table]
    if results.overhead is not None:
        o = results.overhead
        parts += [
            "",
            "## Per-trigger overhead detail",
            "",
            f"handler p50 {_p(o.handler_ms, 50)} ms, p99 {_p(o.handler_ms, 99)} ms; inside MWAA "
            f"calls p50 {_p(o.mwaa_ms, 50)} ms, p99 {_p(o.mwaa_ms, 99)} ms; of the overhead, "
            f"inside DynamoDB (Local) calls p50 {_p(o.dynamodb_ms, 50)} ms, "
            f"p99 {_p(o.dynamodb_ms, 99)} ms; overhead max "
            f"{max(o.overhead_ms, default=float('nan')):.1f} ms; MWAA calls "
            f"{dict(o.mwaa_calls)}; failed batches {o.failures}; {o.warmup} warm-up triggers "
            "left out.",
        ]
    skipped = sorted(skip)
    if skipped or results.problems:
        parts += ["", "## Not measured in this run", ""]
        parts += [f"- skipped: {part}" for part in skipped]
        parts += [f"- failed: {' '.join(problem.split())}" for problem in results.problems]
    return "\n".join(parts) + "\n"


def _paced_rows(
    scenario: str, measure: str, pairs: list[tuple[SideResult, SideResult]], target: Target
) -> list[list[object]]:
    """MWAA calls per trigger of paced events, ours beside the sample's, and the reconciler's."""
    ours = [pair[0] for pair in pairs]
    theirs = [pair[1] for pair in pairs]
    value = _med([side.calls_per_trigger for side in ours])
    base = _med([side.calls_per_trigger for side in theirs])
    return [
        [
            scenario,
            measure,
            f"{value:.3f} ({ours[0].calls.total} calls)",
            f"{base:.2f} ({theirs[0].calls.total} calls / {theirs[0].objects} events)",
            format_ratio(ratio(value, base)),
            target.describe(),
            target.verdict(value),
        ],
        _reconciler_row(ours),
    ]


def _p(values: list[float], q: float) -> str:
    return f"{percentile(values, q):.1f}" if values else "n/a"


def _reconciler_row(ours: list[SideResult]) -> list[object]:
    side = ours[0]
    calls = side.reconciler_calls
    if calls is None:
        return ["", "reconciler", "", "", "", "", ""]
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(calls.by_kind.items()))
    return [
        "  reconciler (apart from the above)",
        f"MWAA calls in {side.reconciler_passes} passes over {side.objects} open records",
        f"{calls.total} ({kinds or 'none'})",
        "none (no status tracking)",
        "",
        "reported",
        "",
    ]


def _burst_rows(
    title: str, pairs: list[tuple[SideResult, SideResult]], floor: float, target: Target
) -> list[list[object]]:
    ours = [pair[0] for pair in pairs]
    theirs = [pair[1] for pair in pairs]
    wall = _med([side.seconds for side in ours])
    base_wall = _med([side.seconds for side in theirs])
    value = wall / floor
    lost = max(side.runs.lost for side in ours)
    duplicates = max(side.runs.duplicates for side in ours)
    base = theirs[0]
    outcome = base.baseline
    failures = (
        f"{outcome.failed} events failed all 3 attempts ({describe_errors(outcome.errors)})"
        if outcome
        else ""
    )
    timed_out = " (TIMED OUT)" if any(side.timed_out for side in ours) else ""
    lost_verdict = (
        "met" if lost == 0 and duplicates == 0 else f"MISSED: {lost} lost, {duplicates} dup"
    )
    return [
        [
            title,
            "wall time / floor",
            f"{value:.2f}x ({wall:.1f} s; floor {floor:.1f} s){timed_out}",
            f"{base_wall / floor:.2f}x ({base_wall:.1f} s, {base.runs.distinct} of "
            f"{base.objects} objects ran)",
            format_ratio(ratio(wall, base_wall)),
            target.describe("x"),
            target.verdict(value, "x"),
        ],
        [
            "",
            f"lost; duplicate runs ({ours[0].redelivered} events delivered twice)",
            f"{lost} lost; {duplicates} duplicates",
            f"{base.runs.lost} lost, {base.runs.duplicates} duplicates; {failures}",
            "",
            "0 lost, 0 duplicates",
            lost_verdict,
        ],
    ]


def _cold_rows(cold: list[ColdStart]) -> list[list[object]]:
    if not cold:
        return []
    powertools = next((row for row in cold if "powertools" in row.name.lower()), None)
    sample = next((row for row in cold if "sample" in row.name.lower()), None)
    rows: list[list[object]] = []
    target = Target(1.25)
    for row in cold:
        if not row.name.startswith("dagtrigger"):
            continue
        value = ratio(row.median_ms, powertools.median_ms) if powertools else None
        rows.append(
            [
                f"cold start, {row.name}",
                "import, median (vs Powertools Logger + boto3)",
                f"{format_ratio(value)} ({row.median_ms:.0f} ms; Powertools "
                f"{powertools.median_ms if powertools else float('nan'):.0f} ms)",
                f"{sample.median_ms:.0f} ms" if sample else "",
                format_ratio(ratio(row.median_ms, sample.median_ms)) if sample else "",
                target.describe("x"),
                target.verdict(value, "x"),
            ]
        )
    memory_target = Target(1.3)
    for row in cold:
        if not row.name.startswith("dagtrigger") or sample is None:
            continue
        value = ratio(row.rss_mib, sample.rss_mib)
        rows.append(
            [
                f"memory, {row.name}",
                "peak RSS after the import, vs the sample",
                f"{format_ratio(value)} ({row.rss_mib:.0f} MiB)",
                f"{sample.rss_mib:.0f} MiB",
                format_ratio(value),
                memory_target.describe("x"),
                memory_target.verdict(value, "x"),
            ]
        )
    return rows


def _file_set_rows(result: FileSetResult) -> list[list[object]]:
    """The marker's invocation, first and last, and what the parts' own events cost."""
    limit = Target(FILE_SET_FUNCTION_TIMEOUT / 2)

    def calls(invocation: Invocation, per: int = 1) -> str:
        dynamodb = ", ".join(
            f"{op} {count / per:.{0 if per == 1 else 2}f}"
            for op, count in sorted(invocation.dynamodb.items())
        )
        mwaa = sum(invocation.mwaa.values()) / per
        return f"DynamoDB: {dynamodb or 'none'}; MWAA calls {mwaa:.{0 if per == 1 else 2}f}"

    rows: list[list[object]] = []
    for title, invocation, parts in (
        ("marker first (its listing joins every part)", result.marker_first, result.parts),
        ("marker last (every part joined already)", result.marker_last, result.parts_by_event),
    ):
        rows.append(
            [
                f"file set of {parts} parts, {title}",
                "the marker's invocation: time (function timeout "
                f"{FILE_SET_FUNCTION_TIMEOUT:.0f} s); calls",
                f"{invocation.seconds:.1f} s; {calls(invocation)}"
                + (f"; {invocation.failures} failed" if invocation.failures else ""),
                "",
                "",
                limit.describe(" s"),
                limit.verdict(invocation.seconds, " s") if not invocation.failures else "FAILED",
            ]
        )
    events = result.part_events
    per_part = max(1, result.parts_by_event)
    rows.append(
        [
            f"  its {result.parts_by_event} parts' own events, batches of 10",
            "per part: handler time; calls",
            f"{events.seconds / per_part * 1000:.1f} ms; {calls(events, per_part)}"
            + (f"; {events.failures} failed" if events.failures else ""),
            "",
            "",
            "reported",
            "",
        ]
    )
    expected = {
        "marker first": ("marker", result.parts, True),
        "marker last": ("marker", result.parts_by_event, True),
    }
    rows.append(
        [
            "  both sets",
            "(completion, members, run recorded); manifest of the large one",
            "; ".join(f"{name}: {outcome}" for name, outcome in result.outcomes.items())
            + f"; manifest {'written' if result.manifest_written else 'MISSING'}",
            "",
            "",
            "one run each, every part a member",
            "met" if result.outcomes == expected and result.manifest_written else "MISSED",
        ]
    )
    return rows


def _package_rows(results: Results) -> list[list[object]]:
    rows: list[list[object]] = []
    for artifact in results.artifacts:
        rows.append(
            [
                f"package: {artifact.name}",
                "`sam build` output: files, size, zipped",
                f"{artifact.files} files, {mib(artifact.bytes)}, {mib(artifact.zipped_bytes)} zip",
                "",
                "",
                "reported",
                "",
            ]
        )
    if results.artifacts:
        found = results.layer_test_only
        rows.append(
            [
                "package: CoreLayer",
                "test-only distributions (pyproject's dev extra) in the layer",
                ", ".join(found) if found else "none",
                "",
                "",
                "none",
                "met" if not found else f"MISSED: {len(found)}",
            ]
        )
    return rows


def _calls_detail(title: str, pairs: list[tuple[SideResult, SideResult]]) -> str:
    rows = []
    for round_, (ours, theirs) in enumerate(pairs, start=1):
        for side in (ours, theirs):
            kinds = ", ".join(
                f"{kind} {count}" for kind, count in sorted(side.calls.by_kind.items())
            )
            rows.append(
                [
                    round_,
                    side.side,
                    side.objects,
                    side.redelivered,
                    side.calls.total,
                    f"{side.calls_per_trigger:.3f}",
                    side.calls.throttled,
                    side.calls.failed,
                    kinds,
                    f"{side.seconds:.1f}",
                    f"{side.runs.runs} runs, {side.runs.distinct} objects",
                ]
            )
    header = [
        "round",
        "side",
        "objects",
        "delivered twice",
        "MWAA calls",
        "per trigger",
        "throttled",
        "4xx/5xx",
        "by kind",
        "seconds",
        "Airflow runs",
    ]
    return f"### {title}\n\n" + markdown_table(header, rows) + "\n"


def _environment(results: Results, quick: bool, seconds: float) -> str:
    cpu_model = "unknown"
    with _suppressed():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with _suppressed():
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    revision = os.environ.get("BENCH_GIT_REVISION") or _head_revision()
    sizes = results.sizes
    return "\n".join(
        [
            f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; "
            f"run took {seconds / 60:.1f} min; "
            f"{'QUICK (small sizes)' if quick else 'full sizes'}, "
            f"{sizes.rounds} round(s) a scenario",
            f"- machine: {os.cpu_count()} CPUs ({cpu_model}), {memory} memory, "
            f"{platform.platform()}",
            f"- versions: Python {platform.python_version()}, "
            f"Airflow {results.airflow_version or '?'}, "
            f"boto3 {_version('boto3')}, Powertools {_version('aws-lambda-powertools')}",
            f"- git revision: {revision}",
            f"- sizes: {vars(sizes)}",
        ]
    )


def _notes(results: Results, floor_note: str) -> list[str]:
    rate_default = inspect.signature(MwaaEmulator).parameters["rate_limit_per_second"].default
    notes = [
        "- Ratios: dagtrigger against the baseline (the sample handler) where both do the same "
        "work, else against the floor; absolute medians beside each. With several rounds the "
        "figure is the median of the rounds, the sides alternating which runs first.",
        "- MWAA calls are counted at the MWAA emulator (its request log, per environment and "
        "operation: InvokeRestApi, CreateCliToken, CLI posts), every attempt included (throttled "
        "ones too), divided by the objects. While dagtrigger triggers, the reconciler's "
        "scheduled passes are held; it then runs 2 passes of its own, counted on their own row.",
        f"- The emulator's InvokeRestApi cap is MwaaEmulator's `rate_limit_per_second` "
        f"(default {rate_default:g}, a token bucket of one second's burst, "
        "devstack/mwaa_emulator/throttle.py; StackConfig has no option for it): MWAA's "
        f"documented ~{MWAA_RATE:g} TPS. Burst floor: objects / {MWAA_RATE:g} per second.",
        "- Burst wall time: from the first put until every object's record left RECEIVED "
        "(dagtrigger), or until every invocation and retry returned (baseline). Lost: objects "
        "with no run in Airflow at the end; duplicates: runs beyond one per object (counted "
        "from the runs' conf). Redelivery: a share of the events is delivered twice to both "
        "sides (dagtrigger: the same EventBridge event sent to its queue again; baseline: a "
        "second invocation).",
        "- The baseline runs the sample unchanged, in this process, as Lambda runs it for S3: "
        f"one asynchronous invocation per event, {results.sizes.concurrency} at a time, each "
        "failure retried twice (after 1 s and 2 s here, 1 and 2 minutes on AWS); the paced "
        "scenarios run it one event at a time. It uses CreateCliToken + the CLI endpoint, which "
        "allows one command at a time: in a burst the others get 503 and the sample's "
        "`ast.literal_eval` of the error page raises.",
        "- ingest_sales is paused during the stack scenarios: runs are created and counted but "
        "wait queued, so Airflow's task processes do not compete for this machine's CPUs.",
        "- Per-trigger overhead: the s3 function's handler invoked in this process (no runner), "
        "against DynamoDB Local and the emulator, one record per batch, paced under the rate; "
        "handler time minus the time inside MWAA calls (botocore before-send to after-call, "
        "this thread only). DynamoDB requests counted the same way (before-send, by operation; "
        f"writes: {', '.join(sorted(DYNAMODB_WRITES))}; "
        f"reads: {', '.join(sorted(DYNAMODB_READS))}).",
        "- File sets: the same in-process handler on a set route added to the stack's routes "
        "(marker _SUCCESS, max_objects 10,000, manifests under SetManifestLocation), S3's "
        "notifications off while the parts are written (only the events sent here are "
        "handled); the marker's invocation is timed whole (listing, joins, completion, "
        "manifest, trigger) against half the function's timeout; calls counted as above.",
        "- Idle memory: RSS summed over this launcher (which hosts the emulator and the runner) "
        "and every process it started (Airflow's, DynamoDB Local's, moto's), 5 s after start; "
        "RSS counts shared pages in each process, PSS does not.",
    ]
    if floor_note:
        notes.append(f"- {floor_note}")
    return notes


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "?"


class _suppressed:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> bool:
        return exc[0] is not None and issubclass(exc[0], OSError)


if __name__ == "__main__":
    main()
