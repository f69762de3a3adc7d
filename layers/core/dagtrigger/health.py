"""Cheap checks that the history table and the routes file are usable (GET /v1/health)."""

from __future__ import annotations

from dataclasses import dataclass

from dagtrigger.dependencies import Dependencies
from dagtrigger.observability import logger

#: a key no trigger ever has (trigger ids start with "t-"): reading it costs one GetItem
_PROBE_KEY = "health#probe"


@dataclass(frozen=True)
class Health:
    table_ok: bool
    routes_ok: bool

    @property
    def healthy(self) -> bool:
        return self.table_ok and self.routes_ok


def check_health(deps: Dependencies) -> Health:
    return Health(table_ok=_table_readable(deps), routes_ok=_routes_loadable(deps))


def _table_readable(deps: Dependencies) -> bool:
    try:
        deps.ledger.get(_PROBE_KEY)
    except Exception:
        logger.exception("health: the history table cannot be read")
        return False
    return True


def _routes_loadable(deps: Dependencies) -> bool:
    try:
        deps.routes.get()
    except Exception:
        logger.exception("health: the routes file cannot be loaded")
        return False
    return True
