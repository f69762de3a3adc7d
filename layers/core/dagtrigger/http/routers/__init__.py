"""The API's routes, one Powertools Router per resource; the resolver includes ``ROUTERS``."""

from dagtrigger.http.routers import (
    dag_runs,
    health,
    objects,
    openapi,
    routes,
    schedules,
    sets,
    triggers,
    webhooks,
)

ROUTERS = tuple(
    module.router
    for module in (dag_runs, triggers, objects, sets, schedules, webhooks, routes, health, openapi)
)
