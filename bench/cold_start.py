"""Cold start: how long importing each function's handler takes in a fresh interpreter laid out
as Lambda lays it out, beside the usual sample and a Powertools Logger + boto3 handler.

    .venv/bin/python -m bench.cold_start --rounds 20          # after `make build`

Lambda's layout: the function's code on the path first, then the layer's ``python/`` folder,
then the runtime's own boto3 (shipped by AWS with its bytecode compiled). Both code folders are
read-only on Lambda, so a module without a ``.pyc`` beside it is compiled on every cold start:
the interpreters here run with ``-B`` (no bytecode written), and nothing outside those folders
(``-S``: no site-packages) is importable. The variants run interleaved, in a shuffled order
each round, because a shared machine is noisy. Numbers only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devstack.paths import REPO_ROOT, STACK_DIR, UV_BIN

BUILD_DIR = REPO_ROOT / ".aws-sam" / "build"
BASELINE_DIR = Path(__file__).resolve().parent / "baseline"
WORK_DIR = STACK_DIR / "bench"
FUNCTIONS = {
    "s3_events": "S3EventsFunction",
    "schedules": "SchedulesFunction",
    "api": "ApiFunction",
    "reconciler": "ReconcilerFunction",
}
_PROBE = """
import importlib, json, resource, sys, time
started = time.perf_counter()
importlib.import_module(sys.argv[1])
elapsed = time.perf_counter() - started
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"ms": elapsed * 1000, "rss_kib": peak_kib}))
"""


@dataclass(frozen=True)
class Variant:
    name: str
    module: str
    path: list[Path]
    env: dict[str, str]


@dataclass(frozen=True)
class Summary:
    name: str
    median_ms: float
    p90_ms: float
    median_rss_mib: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--build-dir", type=Path, default=BUILD_DIR)
    parser.add_argument("--python", default=None, help="the interpreter (default: Python 3.12)")
    args = parser.parse_args()
    summaries = measure(args.build_dir, rounds=args.rounds, python=args.python)
    print(markdown_table(summaries))


def measure(build_dir: Path, *, rounds: int, python: str | None = None) -> list[Summary]:
    """Import each variant ``rounds`` times, interleaved; their medians."""
    if not (build_dir / "CoreLayer" / "python").is_dir():
        raise SystemExit(f"no build in {build_dir}: run `make build` first")
    interpreter = python or _python_312()
    layer = build_dir / "CoreLayer" / "python"
    compiled = _has_bytecode(layer / "dagtrigger")
    runtime = _runtime_boto3(_pinned(layer, "boto3"))
    powertools_layer = _powertools_layer(_pinned(layer, "aws_lambda_powertools"), compiled)
    variants = [
        Variant("sample (CreateCliToken + CLI)", "sample_handler", [BASELINE_DIR, runtime], {}),
        Variant(
            "Powertools Logger + boto3",
            "powertools_handler",
            [BASELINE_DIR, powertools_layer, runtime],
            {"POWERTOOLS_SERVICE_NAME": "bench"},
        ),
    ]
    for service, logical_id in FUNCTIONS.items():
        variants.append(
            Variant(
                f"dagtrigger {service}",
                "app",
                [build_dir / logical_id, layer, runtime],
                _function_env(service),
            )
        )
    samples: dict[str, list[tuple[float, float]]] = {variant.name: [] for variant in variants}
    for _ in range(rounds):
        order = variants[:]
        random.shuffle(order)
        for variant in order:
            samples[variant.name].append(_import_once(interpreter, variant))
    return [
        Summary(
            name,
            statistics.median(ms for ms, _ in values),
            statistics.quantiles([ms for ms, _ in values], n=10)[-1] if len(values) > 1 else 0,
            statistics.median(rss for _, rss in values) / 1024,
        )
        for name, values in samples.items()
    ]


def markdown_table(summaries: list[Summary]) -> str:
    sample = summaries[0].median_ms
    powertools = summaries[1].median_ms
    lines = [
        "| handler | import, median ms | p90 ms | vs sample | vs Powertools | peak RSS MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for summary in summaries:
        lines.append(
            f"| {summary.name} | {summary.median_ms:.0f} | {summary.p90_ms:.0f} | "
            f"{summary.median_ms / sample:.2f}x | {summary.median_ms / powertools:.2f}x | "
            f"{summary.median_rss_mib:.0f} |"
        )
    return "\n".join(lines)


def _import_once(python: str, variant: Variant) -> tuple[float, float]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join(str(path) for path in variant.path),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "LAMBDA_TASK_ROOT": str(variant.path[0]),
        **variant.env,
    }
    result = subprocess.run(
        [python, "-S", "-B", "-c", _PROBE, variant.module],
        capture_output=True,
        text=True,
        env=env,
        cwd=variant.path[0],
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{variant.name} failed to import:\n{result.stderr[-2000:]}")
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    return float(answer["ms"]), float(answer["rss_kib"])


def _function_env(service: str) -> dict[str, str]:
    return {
        "AWS_LAMBDA_FUNCTION_NAME": f"bench-{service}",
        "POWERTOOLS_SERVICE_NAME": service.replace("_", "-"),
        "POWERTOOLS_METRICS_NAMESPACE": "dagtrigger",
        "TABLE_NAME": "bench-trigger-history",
        "MWAA_ENVIRONMENT_NAME": "bench",
    }


def _has_bytecode(package: Path) -> bool:
    return any(package.rglob("*.pyc"))


def _pinned(layer: Path, distribution: str) -> str:
    """``name==version`` of a distribution installed in the layer."""
    for info in layer.glob("*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        if name.lower() == distribution.lower():
            return f"{distribution.replace('_', '-')}=={version}"
    raise SystemExit(f"{distribution} is not in the layer {layer}")


def _runtime_boto3(requirement: str) -> Path:
    """boto3 as Lambda's Python runtime ships it: its own folder, bytecode compiled."""
    return _install(WORK_DIR / f"runtime-{requirement}", requirement, compile_bytecode=True)


def _powertools_layer(requirement: str, compile_bytecode: bool) -> Path:
    """A Powertools layer built the way this build builds the core layer (with or without
    bytecode), so that the comparison is of the code, not of the packaging."""
    suffix = "compiled" if compile_bytecode else "source"
    return _install(WORK_DIR / f"layer-{requirement}-{suffix}", requirement, compile_bytecode)


def _install(target: Path, requirement: str, compile_bytecode: bool) -> Path:
    if (target / ".installed").exists():
        return target
    command = [str(UV_BIN), "pip", "install", "--quiet", "--python", _python_312()]
    command += ["--target", str(target), requirement]
    if compile_bytecode:
        command.append("--compile-bytecode")
    subprocess.run(command, check=True)
    (target / ".installed").touch()
    return target


def _python_312() -> str:
    finder = REPO_ROOT / "scripts" / "find-python"
    return subprocess.run(
        [str(finder), "3.12"], capture_output=True, text=True, check=True
    ).stdout.strip()


if __name__ == "__main__":
    main()
