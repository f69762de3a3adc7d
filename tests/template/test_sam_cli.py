"""The SAM CLI's own checks: `sam validate --lint`, cfn-lint (+ serverless rules), `sam build`."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.template

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
LAYER_SOURCE = REPO_ROOT / "layers" / "core"
PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(?P<version>[^\s;#]+)")


def run_tool(
    command: list[str], env: dict[str, str], *, path_prefix: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(env)
    if path_prefix:
        env["PATH"] = f"{path_prefix}:{env.get('PATH', '')}"
    started = time.monotonic()
    completed = subprocess.run(
        command,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=900,
    )
    print(f"{' '.join(command[:2])}: {time.monotonic() - started:.1f}s")  # timing for the report
    return completed


def describe_failure(completed: subprocess.CompletedProcess[str]) -> str:
    return (
        f"`{' '.join(completed.args)}` exited {completed.returncode}\n"
        f"--- stdout ---\n{completed.stdout[-6000:]}\n--- stderr ---\n{completed.stderr[-6000:]}"
    )


def python_312_directory() -> str:
    completed = subprocess.run(
        [str(REPO_ROOT / "scripts" / "find-python"), "3.12"],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(f"sam build needs Python 3.12 (the Lambda runtime): {completed.stderr.strip()}")
    return str(Path(completed.stdout.strip()).parent)


def pinned_requirements(requirements: Path) -> dict[str, str]:
    pins = {}
    for line in requirements.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line.strip())
        if match:
            pins[match["name"]] = match["version"]
    return pins


def normalized_distribution(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def test_sam_validate_with_lint_accepts_the_template(
    sam_tool: Callable[[str], Path], sam_environment: dict[str, str]
) -> None:
    # Given the template, When sam validate lints it
    completed = run_tool(
        [str(sam_tool("sam")), "validate", "--lint", "--template-file", str(TEMPLATE_PATH)],
        sam_environment,
    )

    # Then it is valid
    assert completed.returncode == 0, describe_failure(completed)
    assert "is a valid SAM Template" in completed.stdout + completed.stderr


@pytest.mark.parametrize(
    "extra_rules",
    [
        pytest.param([], id="cfn-lint"),
        pytest.param(["--append-rules", "cfn_lint_serverless.rules"], id="cfn-lint-serverless"),
    ],
)
def test_cfn_lint_reports_nothing(
    sam_tool: Callable[[str], Path], sam_environment: dict[str, str], extra_rules: list[str]
) -> None:
    # Given the template, When cfn-lint checks it (errors, warnings and informational findings)
    completed = run_tool(
        [str(sam_tool("cfn-lint")), *extra_rules, "--", str(TEMPLATE_PATH)], sam_environment
    )

    # Then it has nothing to say
    assert completed.returncode == 0, describe_failure(completed)
    assert completed.stdout.strip() == "", describe_failure(completed)


#: parameter values for the deployment shapes the tools check beyond the template's defaults:
#: several environments, in a VPC (the template given these as its parameters' defaults)
VPC_SHAPE = {
    "MwaaEnvironmentNames": "sales,finance,ops",
    "VpcSubnetIds": "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
    "VpcSecurityGroupIds": "sg-0123456789abcdef0",
}


def template_with_defaults(values: dict[str, str], directory: Path) -> Path:
    """template.yaml with these list parameters' defaults, written to ``directory``: cfn-lint
    and sam validate take no parameter values, so a default is how they see a shape."""
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    for name, value in values.items():
        header = f"\n  {name}:\n    Type: CommaDelimitedList\n"
        assert text.count(header) == 1, name
        start = text.index(header) + len(header)
        end = re.compile(r"\n  \S").search(text, start - 1)
        assert end is not None, name
        block = re.sub(r"    Default: .*\n", "", text[start : end.start() + 1])
        text = f'{text[:start]}    Default: "{value}"\n{block}{text[end.start() + 1 :]}'
    variant = directory / "template.yaml"
    variant.write_text(text, encoding="utf-8")
    return variant


@pytest.mark.parametrize("extra_rules", [[], ["--append-rules", "cfn_lint_serverless.rules"]])
def test_the_vpc_and_several_environments_shape_passes_sam_validate_and_cfn_lint(
    sam_tool: Callable[[str], Path],
    sam_environment: dict[str, str],
    cloudformation_yaml: Callable[[Path], dict[str, Any]],
    tmp_path: Path,
    extra_rules: list[str],
) -> None:
    # Given the template whose defaults are three environments, two subnets and a security group
    variant = template_with_defaults(VPC_SHAPE, tmp_path)
    parameters = cloudformation_yaml(variant)["Parameters"]
    assert {name: parameters[name]["Default"] for name in VPC_SHAPE} == VPC_SHAPE

    # When cfn-lint (and sam validate --lint, once) check it, Then neither has anything to say
    linted = run_tool(
        [str(sam_tool("cfn-lint")), *extra_rules, "--", str(variant)], sam_environment
    )
    assert linted.returncode == 0, describe_failure(linted)
    assert linted.stdout.strip() == "", describe_failure(linted)
    if not extra_rules:
        validated = run_tool(
            [str(sam_tool("sam")), "validate", "--lint", "--template-file", str(variant)],
            sam_environment,
        )
        assert validated.returncode == 0, describe_failure(validated)
        assert "is a valid SAM Template" in validated.stdout + validated.stderr


def test_the_vpc_and_several_environments_shape_builds(
    sam_tool: Callable[[str], Path],
    sam_environment: dict[str, str],
    cloudformation_yaml: Callable[[Path], dict[str, Any]],
    tmp_path: Path,
) -> None:
    # Given the shape's parameter values, When sam build builds the template with them
    overrides = [f'{name}="{value}"' for name, value in VPC_SHAPE.items()]
    completed = run_tool(
        [
            str(sam_tool("sam")),
            "build",
            "--template-file",
            str(TEMPLATE_PATH),
            "--build-dir",
            str(tmp_path / "build"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-cached",
            "--parameter-overrides",
            " ".join(overrides),
        ],
        sam_environment,
        path_prefix=python_312_directory(),
    )

    # Then it builds, and the built template keeps the conditional VPC attachment and its rule
    assert completed.returncode == 0, describe_failure(completed)
    built = cloudformation_yaml(tmp_path / "build" / "template.yaml")
    source = cloudformation_yaml(TEMPLATE_PATH)
    assert built["Globals"]["Function"]["VpcConfig"] == source["Globals"]["Function"]["VpcConfig"]
    assert built["Rules"] == source["Rules"]


def layer_source_files() -> list[Path]:
    """What the layer ships: every file of layers/core but its build recipe (the Makefile)."""
    return sorted(
        path.relative_to(LAYER_SOURCE)
        for path in LAYER_SOURCE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.name != "Makefile"
    )


@dataclass(frozen=True)
class Build:
    directory: Path
    #: the layer's source files when the build started (the checkout may change meanwhile)
    layer_sources: list[Path]


@pytest.fixture(scope="module")
def build(
    sam_tool: Callable[[str], Path],
    sam_environment: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Build:
    """Run `sam build` once into a temporary directory (never .aws-sam in the checkout)."""
    work = tmp_path_factory.mktemp("sam-build")
    layer_sources = layer_source_files()
    completed = run_tool(
        [
            str(sam_tool("sam")),
            "build",
            "--template-file",
            str(TEMPLATE_PATH),
            "--build-dir",
            str(work / "build"),
            "--cache-dir",
            str(work / "cache"),
            # samconfig.toml asks for cached builds; their dependency folder is .aws-sam/deps in
            # the working directory, so the test opts out to leave the checkout untouched.
            "--no-cached",
        ],
        sam_environment,
        path_prefix=python_312_directory(),
    )
    assert completed.returncode == 0, describe_failure(completed)
    return Build(work / "build", layer_sources)


@pytest.fixture(scope="module")
def build_dir(build: Build) -> Path:
    return build.directory


def test_build_puts_the_whole_core_package_in_the_layer(build: Build) -> None:
    # Given the built layer
    layer = build.directory / "CoreLayer" / "python"

    # Then every source file of layers/core is there, under python/ where Lambda looks for it
    assert Path("dagtrigger/__init__.py") in build.layer_sources
    missing = [str(source) for source in build.layer_sources if not (layer / source).is_file()]
    assert missing == []


def test_build_installs_every_pinned_dependency_at_its_version(build_dir: Path) -> None:
    # Given the pins of layers/core/requirements.txt and the built layer
    pins = pinned_requirements(LAYER_SOURCE / "requirements.txt")
    layer = build_dir / "CoreLayer" / "python"
    installed = {
        normalized_distribution(path.name.removesuffix(".dist-info").rsplit("-", 1)[0]): (
            path.name.removesuffix(".dist-info").rsplit("-", 1)[1]
        )
        for path in layer.glob("*.dist-info")
    }

    # Then each pinned distribution is installed at the pinned version
    assert "pydantic" in pins
    for name, version in pins.items():
        assert installed.get(normalized_distribution(name)) == version, f"{name}=={version}"


def test_build_fetches_compiled_dependencies_for_the_lambda_platform(build_dir: Path) -> None:
    # Given the built layer, When we look at pydantic_core's compiled extension
    extensions = list(
        (build_dir / "CoreLayer" / "python" / "pydantic_core").glob("_pydantic_core*.so")
    )

    # Then it was built for CPython 3.12 on Linux x86_64, as the function runs
    assert [path.name for path in extensions] == ["_pydantic_core.cpython-312-x86_64-linux-gnu.so"]


def test_build_ships_bytecode_lambda_can_use_for_every_module_of_the_layer(build_dir: Path) -> None:
    # Given the built layer (Lambda's /opt is read-only: a module without a usable .pyc is
    # compiled again on every cold start)
    layer = build_dir / "CoreLayer" / "python"
    sources = [path for path in layer.rglob("*.py") if "__pycache__" not in path.parts]

    # Then every module has its CPython 3.12 .pyc, hash-based and unchecked (bit 0 of the
    # header's flags word: hash-based; bit 1: check the source), so the zip's file times do not
    # make it stale
    assert len(sources) > 1000  # the package and its dependencies
    missing, checked = [], []
    for source in sources:
        compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-312.pyc"
        if not compiled.is_file():
            missing.append(str(source.relative_to(layer)))
            continue
        flags = int.from_bytes(compiled.read_bytes()[4:8], "little")
        if flags != 0b01:
            checked.append(str(source.relative_to(layer)))
    assert missing == []
    assert checked == []


#: every function of the template; the handler's folder under functions/ and its source
BUILT_FUNCTIONS = {
    "S3EventsFunction": "s3_events",
    "SchedulesFunction": "schedules",
    "ApiFunction": "api",
    "ReconcilerFunction": "reconciler",
}


def test_build_packages_every_handler(
    build_dir: Path, cloudformation_yaml: Callable[[Path], dict[str, Any]]
) -> None:
    # Given the built template
    built_template = cloudformation_yaml(build_dir / "template.yaml")
    resources = built_template["Resources"]
    functions = {
        logical_id
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }

    # Then every function's handler module is there, and the template points at the built folders
    assert functions == set(BUILT_FUNCTIONS)
    for logical_id, folder in BUILT_FUNCTIONS.items():
        source = REPO_ROOT / "functions" / folder / "app.py"
        built = build_dir / logical_id / "app.py"
        assert built.read_text(encoding="utf-8") == source.read_text(encoding="utf-8")
        assert resources[logical_id]["Properties"]["CodeUri"] == logical_id
    assert resources["CoreLayer"]["Properties"]["ContentUri"] == "CoreLayer"


@pytest.mark.parametrize(
    "function_id",
    [
        "S3EventsFunction",
        "SchedulesFunction",
        "ReconcilerFunction",
        "ApiFunction",
    ],
)
def test_built_handler_imports_as_lambda_loads_it(build_dir: Path, function_id: str) -> None:
    # Given Lambda's layout: the function's folder and the layer's python/ on the path, and no
    # site-packages (-S) or checkout (the working directory is elsewhere) to fall back on
    python = Path(python_312_directory()) / "python3.12"
    environment = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{build_dir / function_id}:{build_dir / 'CoreLayer' / 'python'}",
        "TABLE_NAME": "dagtrigger-history",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }

    # When the runtime imports the handler module (the cold start)
    completed = subprocess.run(
        [str(python), "-S", "-c", "import app; assert callable(app.lambda_handler)"],
        cwd=build_dir.parent,
        capture_output=True,
        text=True,
        check=False,
        env=environment,
        timeout=120,
    )

    # Then it imports
    assert completed.returncode == 0, describe_failure(completed)
