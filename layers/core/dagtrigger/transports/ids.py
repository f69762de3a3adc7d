"""Strict checks of the ids that reach Airflow, made before any call to it.

Airflow's own dag_id pattern (``^[\\w.-]+$``) admits a leading ``-`` and non-ASCII letters; a
dag id that reads like a CLI option, or that differs from another only in look-alike letters,
has no place in a trigger, so dagtrigger is stricter than Airflow on every transport.
"""

from __future__ import annotations

import re

from dagtrigger.errors import RejectedError
from dagtrigger.ids import DAG_ID_PATTERN, DAG_RUN_ID_PATTERN


def validate_dag_id(dag_id: str) -> str:
    """Return ``dag_id`` unchanged, or raise ``RejectedError('invalid_dag_id')`` saying why."""
    if not isinstance(dag_id, str) or not DAG_ID_PATTERN.fullmatch(dag_id):
        raise RejectedError(
            "invalid_dag_id",
            f"dag_id {dag_id!r} is not allowed: it must be 1-250 ASCII letters, digits, '_', '.' "
            "or '-', and must not start with '.' or '-'",
        )
    return dag_id


def validate_dag_run_id(dag_run_id: str) -> str:
    """Return ``dag_run_id`` unchanged, or raise ``RejectedError('invalid_dag_run_id')``."""
    if not isinstance(dag_run_id, str) or not DAG_RUN_ID_PATTERN.fullmatch(dag_run_id):
        raise RejectedError(
            "invalid_dag_run_id",
            f"dag_run_id {dag_run_id!r} is not allowed: it must be 1-250 ASCII letters, digits "
            "or any of '_.~:+-', and must not start with '-'",
        )
    return dag_run_id


def mentions_run_id(text: str, dag_run_id: str) -> bool:
    """True when ``text`` names ``dag_run_id`` as a whole token (not inside a longer id)."""
    pattern = rf"(?<![A-Za-z0-9_.~:+-]){re.escape(dag_run_id)}(?![A-Za-z0-9_.~:+-])"
    return re.search(pattern, text) is not None
