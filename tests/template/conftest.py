"""Fixtures for the template checks: the SAM CLI's virtual environment and the parsed template."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
SAM_VENV_BIN = REPO_ROOT / ".venv-sam" / "bin"

# SAM's own translator, run in the SAM CLI's environment (it is not installed in .venv). Local
# code paths become placeholder S3 URIs, as `sam package` would make them, and the empty managed
# policy map keeps it offline: the template names no managed policy by name.
_TRANSLATE_SCRIPT = """
import json, sys
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

with open(sys.argv[1], encoding="utf-8") as handle:
    sam_template = yaml_parse(handle.read())
code_properties = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}
for resource in sam_template["Resources"].values():
    code_property = code_properties.get(resource["Type"])
    if code_property:
        resource["Properties"][code_property] = "s3://placeholder-bucket/placeholder-key"
translator = Translator(managed_policy_map={}, sam_parser=Parser())
print(json.dumps(translator.translate(sam_template, parameter_values={})))
"""


class CloudFormationLoader(yaml.SafeLoader):
    """A YAML loader that reads CloudFormation short tags (``!Ref``, ``!Sub``...) as long forms."""


def _construct_short_tag(loader: CloudFormationLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{tag_suffix}": value}


CloudFormationLoader.add_multi_constructor("!", _construct_short_tag)


def load_cloudformation_yaml(path: Path) -> dict[str, Any]:
    loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=CloudFormationLoader)
    assert isinstance(loaded, dict), f"{path} is not a YAML mapping"
    return loaded


def sam_cli_environment() -> dict[str, str]:
    """The environment the SAM CLI runs in: a region (sam validate wants one), no telemetry."""
    return {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}


@pytest.fixture(scope="session")
def raw_template() -> dict[str, Any]:
    return load_cloudformation_yaml(TEMPLATE_PATH)


@pytest.fixture(scope="session")
def cloudformation_yaml() -> Callable[[Path], dict[str, Any]]:
    """Load any CloudFormation YAML file (short tags included)."""
    return load_cloudformation_yaml


@pytest.fixture(scope="session")
def sam_environment() -> dict[str, str]:
    return sam_cli_environment()


@pytest.fixture(scope="session")
def sam_tool() -> Callable[[str], Path]:
    """Return a tool from .venv-sam; skip, saying how to fix it, if that environment is missing."""
    if not (SAM_VENV_BIN / "sam").exists():
        pytest.skip("the SAM CLI environment .venv-sam is missing: run `make sam-venv`")

    def tool(name: str) -> Path:
        path = SAM_VENV_BIN / name
        if not path.exists():
            pytest.fail(f"{path} is missing: rebuild the SAM environment with `make sam-venv`")
        return path

    return tool


@pytest.fixture(scope="session")
def translated_template(sam_tool: Callable[[str], Path]) -> dict[str, Any]:
    """The template after the SAM transform: the IAM roles and event source mappings SAM makes."""
    completed = subprocess.run(
        [str(sam_tool("python")), "-c", _TRANSLATE_SCRIPT, str(TEMPLATE_PATH)],
        capture_output=True,
        text=True,
        check=False,
        env=sam_cli_environment(),
        timeout=120,
    )
    if completed.returncode != 0:
        pytest.fail(f"the SAM transform of template.yaml failed:\n{completed.stderr}")
    translated: dict[str, Any] = json.loads(completed.stdout)
    return translated
