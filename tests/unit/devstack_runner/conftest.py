"""Fixtures of the Lambda runner's unit tests: the small template beside these tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.runner.template import LocalTemplate, discover

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_TEMPLATE = FIXTURES / "template.yaml"


@pytest.fixture
def fixture_template() -> LocalTemplate:
    return discover(FIXTURE_TEMPLATE)
