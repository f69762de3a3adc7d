"""checkov on template.yaml (as `make lint` runs it): no finding left, each skip justified on its
resource, and no skip kept once the finding it answers is gone."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.template

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
#: a reason is a sentence or two, not a word
MIN_REASON_WORDS = 12


def declared_skips(template: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(resource logical id, check id) -> the reason written beside it."""
    skips = {}
    for logical_id, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            skips[(logical_id, skip["id"])] = str(skip.get("comment", ""))
    return skips


def checkov_findings(template_path: Path) -> dict[str, set[tuple[str, str]]]:
    """checkov's verdicts on a template: "failed" and "skipped" (logical id, check id) pairs."""
    if not CHECKOV.exists():
        pytest.fail("checkov's environment .venv-checkov is missing: `make test` installs it")
    completed = subprocess.run(
        [
            str(CHECKOV),
            "--file",
            str(template_path),
            "--framework",
            "cloudformation",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert completed.returncode in (0, 1), completed.stderr[-4000:]
    report = json.loads(completed.stdout)
    assert report["summary"]["parsing_errors"] == 0, report["results"]["parsing_errors"]
    return {
        verdict: {
            (check["resource"].rpartition(".")[2], check["check_id"])
            for check in report["results"][f"{verdict}_checks"]
        }
        for verdict in ("failed", "skipped")
    }


def test_every_checkov_skip_names_a_check_and_says_why(raw_template: dict[str, Any]) -> None:
    skips = declared_skips(raw_template)
    assert skips
    for (logical_id, check_id), reason in skips.items():
        assert re.fullmatch(r"CKV2?_AWS_\d+", check_id), (logical_id, check_id)
        assert len(reason.split()) >= MIN_REASON_WORDS, (logical_id, check_id, reason)


def test_checkov_reports_nothing_but_the_justified_skips(raw_template: dict[str, Any]) -> None:
    # Given the template, When checkov checks it as `make lint` does
    findings = checkov_findings(TEMPLATE_PATH)

    # Then nothing fails, and what it skipped is exactly what the template skips with a reason
    assert findings["failed"] == set()
    assert findings["skipped"] == set(declared_skips(raw_template))


def test_every_skip_answers_a_finding_checkov_would_report(
    raw_template: dict[str, Any], tmp_path: Path
) -> None:
    # Given the template without its checkov skips (as JSON, which CloudFormation also reads)
    stripped = json.loads(json.dumps(raw_template))
    for resource in stripped["Resources"].values():
        resource.get("Metadata", {}).pop("checkov", None)
    template_path = tmp_path / "template.json"
    template_path.write_text(json.dumps(stripped), encoding="utf-8")

    # When checkov checks it
    findings = checkov_findings(template_path)

    # Then it reports exactly the skipped findings: no skip outlives the finding it answers
    assert findings["skipped"] == set()
    assert findings["failed"] == set(declared_skips(raw_template))
