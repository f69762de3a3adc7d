"""GET /v1/health: cheap checks that the history table and the routes file are usable."""

from __future__ import annotations

from typing import Literal

import dagtrigger
from dagtrigger.api.context import ApiDependencies
from dagtrigger.api.models import HealthChecks, HealthReport
from dagtrigger.observability import logger

#: a key no trigger ever has (trigger ids start with "t-"): reading it costs one GetItem
_PROBE_KEY = "health#probe"

Check = Literal["ok", "error"]


def check_health(deps: ApiDependencies) -> HealthReport:
    checks = HealthChecks(table=_table_check(deps), routes=_routes_check(deps))
    healthy = checks.table == "ok" and checks.routes == "ok"
    return HealthReport(
        status="ok" if healthy else "degraded", version=dagtrigger.__version__, checks=checks
    )


def _table_check(deps: ApiDependencies) -> Check:
    try:
        deps.core.ledger.get(_PROBE_KEY)
    except Exception:
        logger.exception("health: the history table cannot be read")
        return "error"
    return "ok"


def _routes_check(deps: ApiDependencies) -> Check:
    try:
        deps.core.routes.get()
    except Exception:
        logger.exception("health: the routes file cannot be loaded")
        return "error"
    return "ok"
