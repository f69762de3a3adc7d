"""The local stack's Airflow versions: keys, majors and the contract suite's matrix."""

from __future__ import annotations

import re

import pytest

from devstack.airflow_install import (
    AIRFLOW_RELEASES,
    AIRFLOW_VERSIONS,
    DEFAULT_KEY_BY_MAJOR,
    VERSIONS_ENV,
    lock_path,
    release,
    venv_path,
    versions_from_env,
)
from devstack.processes import StackError


def test_a_bare_major_means_the_newest_airflow_3_or_mwaas_airflow_2() -> None:
    assert release(3).version == "3.3.2"
    assert release("2").version == "2.11.0"
    assert AIRFLOW_VERSIONS == {3: "3.3.2", 2: "2.11.0"}


@pytest.mark.parametrize("spec", ["3.0", "3.0.6"])
def test_a_key_or_an_exact_version_names_its_release(spec: str) -> None:
    assert release(spec) == AIRFLOW_RELEASES["3.0"]
    assert release(spec).major == 3


@pytest.mark.parametrize("spec", ["2.10", "2.10.5", "4", 1, "three"])
def test_an_unknown_version_is_refused_with_the_known_ones(spec: str | int) -> None:
    with pytest.raises(StackError, match=re.escape("3.3, 3.0, 2.11")):
        release(spec)


def test_every_release_has_its_lock_and_the_lock_pins_it() -> None:
    for key, known in AIRFLOW_RELEASES.items():
        assert key == ".".join(known.version.split(".")[:2])
        assert venv_path(key).name == f"airflow-{key}"
        assert f"\napache-airflow=={known.version} \\\n" in lock_path(key).read_text()
    assert set(DEFAULT_KEY_BY_MAJOR.values()) <= set(AIRFLOW_RELEASES)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ["3.3", "3.0", "2.11"]),
        ("", ["3.3", "3.0", "2.11"]),
        ("all", ["3.3", "3.0", "2.11"]),
        ("3.0", ["3.0"]),
        (" 2.11, 3 ,3.3.2,", ["2.11", "3.3"]),
        ("3,2", ["3.3", "2.11"]),
    ],
)
def test_the_matrix_comes_from_the_environment(value: str | None, expected: list[str]) -> None:
    environ = {} if value is None else {VERSIONS_ENV: value}
    assert versions_from_env(environ) == expected


def test_a_matrix_naming_an_unknown_version_is_refused() -> None:
    with pytest.raises(StackError, match=re.escape("'2.10'")):
        versions_from_env({VERSIONS_ENV: "3.3,2.10"})
